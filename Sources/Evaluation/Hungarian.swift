import Foundation

/// Minimum-cost assignment for a rectangular cost matrix [rows][columns] (Kuhn–Munkres with
/// potentials, O(n²m)). Returns for each row its column, or nil for rows left unassigned
/// when there are more rows than columns.
public func hungarian(_ cost: [[Double]]) -> [Int?] {
    let rows = cost.count, cols = cost.first?.count ?? 0
    if rows == 0 || cols == 0 { return [Int?](repeating: nil, count: rows) }
    if rows > cols {   // solve the transpose, then invert
        let t = (0..<cols).map { c in (0..<rows).map { cost[$0][c] } }
        var out = [Int?](repeating: nil, count: rows)
        for (c, r) in hungarian(t).enumerated() { if let r { out[r] = c } }
        return out
    }
    let n = rows, m = cols, inf = Double.infinity
    var u = [Double](repeating: 0, count: n + 1), v = [Double](repeating: 0, count: m + 1)
    var p = [Int](repeating: 0, count: m + 1), way = [Int](repeating: 0, count: m + 1)
    for i in 1...n {
        p[0] = i
        var j0 = 0
        var minv = [Double](repeating: inf, count: m + 1), used = [Bool](repeating: false, count: m + 1)
        repeat {
            used[j0] = true
            let i0 = p[j0]
            var delta = inf, j1 = 0
            for j in 1...m where !used[j] {
                let cur = cost[i0 - 1][j - 1] - u[i0] - v[j]
                if cur < minv[j] { minv[j] = cur; way[j] = j0 }
                if minv[j] < delta { delta = minv[j]; j1 = j }
            }
            for j in 0...m {
                if used[j] { u[p[j]] += delta; v[j] -= delta } else { minv[j] -= delta }
            }
            j0 = j1
        } while p[j0] != 0
        repeat { let j1 = way[j0]; p[j0] = p[j1]; j0 = j1 } while j0 != 0
    }
    var out = [Int?](repeating: nil, count: n)
    for j in 1...m where p[j] != 0 { out[p[j] - 1] = j - 1 }
    return out
}
