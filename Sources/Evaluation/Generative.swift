import Foundation

/// The importance-weighted bound log (1/S) Σ_s exp(w_s) from S log-weights
/// w_s = log p(x, z_s) − log q(z_s | x), computed stably (shift by the maximum).
public func iwaeBound(logWeights w: [Double]) -> Double {
    precondition(!w.isEmpty, "IWAE bound of no samples")
    let m = w.max()!
    if !m.isFinite { return m }
    return m + Foundation.log(w.reduce(0.0) { $0 + Foundation.exp($1 - m) }) - Foundation.log(Double(w.count))
}

/// The single-sample bound averaged over samples: the ELBO estimate.
public func elbo(logWeights w: [Double]) -> Double { w.reduce(0, +) / Double(w.count) }

/// Active units (Burda et al. 2015): unit u is active if Cov_x(E_q[u | x]) > threshold.
/// `posteriorMeans` is [N][units]; returns the count and every unit's variance.
public func activeUnits(posteriorMeans: [[Double]], threshold: Double = 0.01) -> (count: Int, variances: [Double]) {
    let n = posteriorMeans.count, d = posteriorMeans.first?.count ?? 0
    var mean = [Double](repeating: 0, count: d), v = [Double](repeating: 0, count: d)
    for m in posteriorMeans { for j in 0..<d { mean[j] += m[j] } }
    for j in 0..<d { mean[j] /= Double(n) }
    for m in posteriorMeans { for j in 0..<d { v[j] += (m[j] - mean[j]) * (m[j] - mean[j]) } }
    let variances = v.map { $0 / Double(Swift.max(n, 1)) }
    return (variances.filter { $0 > threshold }.count, variances)
}

/// KL(N(μq, e^{lq}) ‖ N(μp, e^{lp})) per unit for diagonal Gaussians (log-variances l).
public func gaussianKL(muQ: [Double], logVarQ: [Double], muP: [Double], logVarP: [Double]) -> [Double] {
    (0..<muQ.count).map { i -> Double in
        let d = muQ[i] - muP[i]
        let ratio: Double = (Foundation.exp(logVarQ[i]) + d * d) / Foundation.exp(logVarP[i])
        return 0.5 * (logVarP[i] - logVarQ[i] + ratio - 1)
    }
}
