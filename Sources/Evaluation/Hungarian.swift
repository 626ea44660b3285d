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
    let flat = cost.flatMap { $0 }
    return flat.withUnsafeBufferPointer { assign($0.baseAddress!, rows, cols) }
}

/// The e-maxx formulation on a row-major [n, m] cost (n ≤ m): potentials u (rows) and v
/// (columns), 1-based, p[j] the row matched to column j, way[j] the previous column on the
/// augmenting path. The columns not yet on the path are kept as an ascending list, so each
/// step scans only them, in the textbook's order (ties go to the lower column).
private func assign(_ cost: UnsafePointer<Double>, _ n: Int, _ m: Int) -> [Int?] {
    let inf = Double.infinity
    var u = [Double](repeating: 0, count: n + 1), v = [Double](repeating: 0, count: m + 1)
    var p = [Int](repeating: 0, count: m + 1), way = [Int](repeating: 0, count: m + 1)
    var minv = [Double](repeating: inf, count: m + 1)
    var path = [Int](repeating: 0, count: m + 1), free = [Int](repeating: 0, count: m)
    u.withUnsafeMutableBufferPointer { u in v.withUnsafeMutableBufferPointer { v in p.withUnsafeMutableBufferPointer { p in
    way.withUnsafeMutableBufferPointer { way in minv.withUnsafeMutableBufferPointer { minv in
    path.withUnsafeMutableBufferPointer { path in free.withUnsafeMutableBufferPointer { free in
        for i in 1...n {
            p[0] = i
            var j0 = 0, used = 0, left = m
            for j in 1...m { minv[j] = inf; free[j - 1] = j }
            repeat {
                path[used] = j0
                used += 1
                let i0 = p[j0], row = cost + (i0 - 1) * m - 1, ui0 = u[i0]
                var delta = inf, j1 = 0, at = 0
                for t in 0..<left {
                    let j = free[t], cur = row[j] - ui0 - v[j]
                    if cur < minv[j] { minv[j] = cur; way[j] = j0 }
                    if minv[j] < delta { delta = minv[j]; j1 = j; at = t }
                }
                for t in 0..<used { let j = path[t]; u[p[j]] += delta; v[j] -= delta }
                for t in 0..<left { minv[free[t]] -= delta }
                left -= 1
                for t in at..<left { free[t] = free[t + 1] }
                j0 = j1
            } while p[j0] != 0
            repeat { let j1 = way[j0]; p[j0] = p[j1]; j0 = j1 } while j0 != 0
        }
    } } } } } } }
    var out = [Int?](repeating: nil, count: n)
    for j in 1...m where p[j] != 0 { out[p[j] - 1] = j - 1 }
    return out
}
