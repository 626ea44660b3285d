import Foundation

/// The SimSiam collapse monitor: per-dimension std over the batch of the l2-normalized
/// outputs, averaged over dimensions, times √d (≈ 1 when healthy, → 0 at collapse).
public func normalizedStd(_ z: Features) -> Double {
    let x = z.l2Normalized()
    let v = columnVariances((0..<x.count).map { Array(x.row($0)) }, ddof: 1)
    return v.reduce(0.0) { $0 + $1.squareRoot() } / Double(z.dimension) * Double(z.dimension).squareRoot()
}

/// Effective rank (Roy & Vetterli 2007; RankMe): exp of the entropy of the normalized
/// singular values of the [N, d] embedding matrix.
public func effectiveRank(_ z: Features) -> Double {
    let d = z.dimension
    var gram = [Double](repeating: 0, count: d * d)
    for i in 0..<z.count { for a in 0..<d { let za = Double(z.values[i * d + a]); if za == 0 { continue }
        for b in a..<d { gram[a * d + b] += za * Double(z.values[i * d + b]) } } }
    for a in 0..<d { for b in a..<d { gram[b * d + a] = gram[a * d + b] } }
    let sigma = symmetricEigen(gram, d).values.map { Swift.max($0, 0).squareRoot() }
    let total = sigma.reduce(0, +)
    guard total > 0 else { return 0 }
    let h = sigma.reduce(0.0) { s, x in let p = x / total; return p > 0 ? s - p * Foundation.log(p) : s }
    return Foundation.exp(h)
}
