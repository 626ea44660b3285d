import Foundation

/// How NMI normalizes I(U;V): scikit-learn's `average_method`.
public enum NMINormalization: String, Codable, Sendable { case arithmetic, geometric, min, max }

/// The contingency table of two labelings (rows: distinct values of `a` in sorted order,
/// columns: of `b`).
public func contingency(_ a: [Int], _ b: [Int]) -> [[Int]] {
    precondition(a.count == b.count, "labelings of \(a.count) and \(b.count) items")
    let ua = Array(Set(a)).sorted(), ub = Array(Set(b)).sorted()
    let ia = Dictionary(uniqueKeysWithValues: ua.enumerated().map { ($1, $0) }), ib = Dictionary(uniqueKeysWithValues: ub.enumerated().map { ($1, $0) })
    var t = [[Int]](repeating: [Int](repeating: 0, count: ub.count), count: ua.count)
    for (x, y) in zip(a, b) { t[ia[x]!][ib[y]!] += 1 }
    return t
}

func entropy(_ counts: [Int], _ n: Int) -> Double {
    counts.reduce(0.0) { $1 == 0 ? $0 : $0 - Double($1) / Double(n) * Foundation.log(Double($1) / Double(n)) }
}

func mutualInformation(_ t: [[Int]], _ n: Int) -> Double {
    let rows = t.map { $0.reduce(0, +) }, cols = (0..<(t.first?.count ?? 0)).map { j in t.reduce(0) { $0 + $1[j] } }
    var mi = 0.0
    for i in t.indices { for j in t[i].indices where t[i][j] > 0 {
        let nij = Double(t[i][j])
        mi += nij / Double(n) * Foundation.log(Double(n) * nij / (Double(rows[i]) * Double(cols[j])))
    } }
    return Swift.max(mi, 0)
}

func generalizedMean(_ a: Double, _ b: Double, _ m: NMINormalization) -> Double {
    switch m {
    case .arithmetic: return (a + b) / 2
    case .geometric: return (a * b).squareRoot()
    case .min: return Swift.min(a, b)
    case .max: return Swift.max(a, b)
    }
}

/// Normalized mutual information (scikit-learn's definition; 1 when both labelings are a
/// single cluster).
public func normalizedMutualInformation(_ truth: [Int], _ predicted: [Int], normalization: NMINormalization = .arithmetic) -> Double {
    let t = contingency(truth, predicted), n = truth.count
    if t.count == 1 && t[0].count == 1 || t.isEmpty { return 1 }
    let hu = entropy(t.map { $0.reduce(0, +) }, n), hv = entropy((0..<t[0].count).map { j in t.reduce(0) { $0 + $1[j] } }, n)
    let mi = mutualInformation(t, n)
    let denom = generalizedMean(hu, hv, normalization)
    return denom <= 0 ? 0 : mi / denom
}

/// Expected mutual information under the permutation (hypergeometric) model, Vinh et al.
/// 2010, as scikit-learn's `expected_mutual_information`.
func expectedMutualInformation(rows a: [Int], cols b: [Int], n: Int) -> Double {
    let N = Double(n)
    let lgN: Double = Foundation.lgamma(N + 1)
    var emi = 0.0
    for ai in a { for bj in b {
        let lo = Swift.max(1, ai + bj - n), hi = Swift.min(ai, bj)
        if lo > hi { continue }
        let (a, b) = (Double(ai), Double(bj))
        let fixed: Double = Foundation.lgamma(a + 1) + Foundation.lgamma(b + 1) + Foundation.lgamma(N - a + 1) + Foundation.lgamma(N - b + 1) - lgN
        for nij in lo...hi {
            let x = Double(nij)
            let term1: Double = x / N * Foundation.log(N * x / (a * b))
            let varying: Double = Foundation.lgamma(x + 1) + Foundation.lgamma(a - x + 1) + Foundation.lgamma(b - x + 1) + Foundation.lgamma(N - a - b + x + 1)
            emi += term1 * Foundation.exp(fixed - varying)
        }
    } }
    return emi
}

/// Adjusted mutual information (AMI), arithmetic normalization by default, as scikit-learn.
public func adjustedMutualInformation(_ truth: [Int], _ predicted: [Int], normalization: NMINormalization = .arithmetic) -> Double {
    let t = contingency(truth, predicted), n = truth.count
    if t.count == t.first?.count && t.count <= 1 || t.isEmpty { return 1 }
    let rows = t.map { $0.reduce(0, +) }, cols = (0..<t[0].count).map { j in t.reduce(0) { $0 + $1[j] } }
    if rows.count == 1 && cols.count == 1 { return 1 }
    let mi = mutualInformation(t, n), emi = expectedMutualInformation(rows: rows, cols: cols, n: n)
    let hu = entropy(rows, n), hv = entropy(cols, n)
    var denom = generalizedMean(hu, hv, normalization) - emi
    // scikit-learn keeps the sign and avoids division by ~0.
    let eps = Double.ulpOfOne
    if denom < 0 { denom = Swift.min(denom, -eps) } else { denom = Swift.max(denom, eps) }
    return (mi - emi) / denom
}

/// Adjusted Rand index (Hubert & Arabie).
public func adjustedRandIndex(_ truth: [Int], _ predicted: [Int]) -> Double {
    let t = contingency(truth, predicted), n = truth.count
    func c2(_ x: Int) -> Double { Double(x) * Double(x - 1) / 2 }
    let sumCells = t.flatMap { $0 }.reduce(0.0) { $0 + c2($1) }
    let sumRows = t.map { $0.reduce(0, +) }.reduce(0.0) { $0 + c2($1) }
    let sumCols = (0..<(t.first?.count ?? 0)).map { j in t.reduce(0) { $0 + $1[j] } }.reduce(0.0) { $0 + c2($1) }
    let expected = sumRows * sumCols / c2(n), maxIndex = (sumRows + sumCols) / 2
    if maxIndex == expected { return 1 }   // both trivial partitions
    return (sumCells - expected) / (maxIndex - expected)
}

/// Clustering accuracy: the best one-to-one mapping of clusters to classes (Hungarian on
/// the contingency table), as a fraction of items.
public func clusteringAccuracy(_ truth: [Int], _ predicted: [Int]) -> Double {
    let t = contingency(predicted, truth)
    let cost = t.map { row in row.map { -Double($0) } }
    let match = hungarian(cost)
    var correct = 0
    for (i, j) in match.enumerated() { if let j { correct += t[i][j] } }
    return Double(correct) / Double(max(truth.count, 1))
}
