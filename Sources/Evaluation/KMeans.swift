import CBLAS
import Engine
import Foundation

public struct KMeansResult {
    public let assignments: [Int]
    public let centroids: [Float]   // [k, dimension]
    public let inertia: Double
    public let iterations: Int
}

/// k-means with k-means++ seeding and `restarts` runs (the lowest inertia wins). An empty
/// cluster takes the point farthest from its centroid in the most populated cluster.
/// Stops after `maxIterations` or when no centroid moves more than `tolerance` (relative to
/// the data's mean variance, as scikit-learn). `initial` centroids [k, d], when given,
/// replace the seeding (one run).
public func kMeans(_ x: [Float], count n: Int, dimension d: Int, k: Int, restarts: Int = 10, maxIterations: Int = 300,
                   tolerance: Double = 1e-4, initial: [Float]? = nil, rng: RNG) throws -> KMeansResult {
    guard k >= 1 && k <= n else { throw EvaluationError("k-means with k = \(k) on \(n) points") }
    if let initial, initial.count != k * d { throw EvaluationError("\(initial.count) initial centroid values for k = \(k), d = \(d)") }
    var mean = [Double](repeating: 0, count: d), variance = 0.0
    for i in 0..<n { for j in 0..<d { mean[j] += Double(x[i * d + j]) } }
    for j in 0..<d { mean[j] /= Double(n) }
    for i in 0..<n { for j in 0..<d { let t = Double(x[i * d + j]) - mean[j]; variance += t * t } }
    let tol = tolerance * variance / Double(n * d)
    var norms = [Float](repeating: 0, count: n)
    for i in 0..<n { var s: Float = 0; for j in 0..<d { s += x[i * d + j] * x[i * d + j] }; norms[i] = s }
    var best: KMeansResult?
    for r in 0..<(initial == nil ? restarts : 1) {
        var g = rng.derive(UInt64(r))
        let seed = initial ?? plusPlus(x, norms, n, d, k, &g)
        let result = lloyd(x, norms, n, d, k, seed: seed, maxIterations: maxIterations, tolerance: tol)
        if best == nil || result.inertia < best!.inertia { best = result }
    }
    return best!
}

/// Squared distances [n, k] from every point to every centroid: ‖x‖² − 2x·c + ‖c‖².
func squaredDistances(_ x: [Float], _ norms: [Float], _ n: Int, _ d: Int, _ c: [Float], _ k: Int) -> [Float] {
    var dist = [Float](repeating: 0, count: n * k)
    x.withUnsafeBufferPointer { xp in c.withUnsafeBufferPointer { cp in dist.withUnsafeMutableBufferPointer { dp in
        gemm(transB: true, m: n, n: k, k: d, alpha: -2, a: xp.baseAddress!, lda: d, b: cp.baseAddress!, ldb: d, c: dp.baseAddress!, ldc: k)
    } } }
    var cn = [Float](repeating: 0, count: k)
    for j in 0..<k { for t in 0..<d { cn[j] += c[j * d + t] * c[j * d + t] } }
    for i in 0..<n { for j in 0..<k { dist[i * k + j] = Swift.max(dist[i * k + j] + norms[i] + cn[j], 0) } }
    return dist
}

/// k-means++: each next centre drawn with probability ∝ squared distance to the nearest one.
func plusPlus(_ x: [Float], _ norms: [Float], _ n: Int, _ d: Int, _ k: Int, _ rng: inout RNG) -> [Float] {
    let first = rng.int(below: n)
    var centroids = Array(x[(first * d)..<((first + 1) * d)])
    var nearest = squaredDistances(x, norms, n, d, centroids, 1)
    for _ in 1..<k {
        let total = nearest.reduce(0.0) { $0 + Double($1) }
        var pick = n - 1
        if total > 0 {
            var target = rng.uniformDouble() * total
            for i in 0..<n { target -= Double(nearest[i]); if target < 0 { pick = i; break } }
        } else {
            pick = rng.int(below: n)
        }
        let c = Array(x[(pick * d)..<((pick + 1) * d)])
        centroids += c
        let dn = squaredDistances(x, norms, n, d, c, 1)
        for i in 0..<n { nearest[i] = Swift.min(nearest[i], dn[i]) }
    }
    return centroids
}

func lloyd(_ x: [Float], _ norms: [Float], _ n: Int, _ d: Int, _ k: Int, seed: [Float], maxIterations: Int, tolerance: Double) -> KMeansResult {
    var c = seed
    var assign = [Int](repeating: 0, count: n)
    var iterations = 0
    for it in 0..<maxIterations {
        iterations = it + 1
        let dist = squaredDistances(x, norms, n, d, c, k)
        for i in 0..<n {
            var b = 0
            for j in 1..<k where dist[i * k + j] < dist[i * k + b] { b = j }
            assign[i] = b
        }
        var sums = [Double](repeating: 0, count: k * d), counts = [Int](repeating: 0, count: k)
        for i in 0..<n { counts[assign[i]] += 1; for t in 0..<d { sums[assign[i] * d + t] += Double(x[i * d + t]) } }
        // Empty clusters: take the farthest point of the largest cluster.
        for j in 0..<k where counts[j] == 0 {
            let big = counts.indices.max { counts[$0] < counts[$1] }!
            var far = -1, farDist: Float = -1
            for i in 0..<n where assign[i] == big && dist[i * k + big] > farDist { far = i; farDist = dist[i * k + big] }
            counts[big] -= 1
            for t in 0..<d { sums[big * d + t] -= Double(x[far * d + t]); sums[j * d + t] = Double(x[far * d + t]) }
            counts[j] = 1
            assign[far] = j
        }
        var shift = 0.0
        var next = c
        for j in 0..<k { for t in 0..<d {
            next[j * d + t] = Float(sums[j * d + t] / Double(counts[j]))
            let m = Double(next[j * d + t] - c[j * d + t]); shift += m * m
        } }
        c = next
        if shift <= tolerance { break }
    }
    let dist = squaredDistances(x, norms, n, d, c, k)
    var inertia = 0.0
    for i in 0..<n {
        var b = 0
        for j in 1..<k where dist[i * k + j] < dist[i * k + b] { b = j }
        assign[i] = b
        inertia += Double(dist[i * k + b])
    }
    return KMeansResult(assignments: assign, centroids: c, inertia: inertia, iterations: iterations)
}

/// Eigen-decomposition of a symmetric matrix (LAPACK dsyev): eigenvalues ascending and
/// eigenvectors as rows.
public func symmetricEigen(_ a: [Double], _ n: Int) -> (values: [Double], vectors: [Double]) {
    var m = a   // column-major = row-major for a symmetric matrix
    var w = [Double](repeating: 0, count: n)
    var jobz: CChar = 86 /* V */, uplo: CChar = 85 /* U */
    var nn = Int32(n), lda = Int32(n), info: Int32 = 0, lwork: Int32 = -1
    var query = 0.0
    Threads.prepare()
    dsyev_(&jobz, &uplo, &nn, &m, &lda, &w, &query, &lwork, &info)
    lwork = Int32(query)
    var work = [Double](repeating: 0, count: Int(lwork))
    dsyev_(&jobz, &uplo, &nn, &m, &lda, &w, &work, &lwork, &info)
    precondition(info == 0, "dsyev failed with info \(info)")
    return (w, m)   // column j of the column-major result = row j here
}

/// PCA fitted on `x` [n, d]: the top `components` directions, optionally whitened
/// (divided by √eigenvalue). Returns a function projecting rows.
public struct PCA {
    public let mean: [Double], components: [Double], scales: [Double], dimension: Int, count: Int
    public let explainedVariance: [Double]

    public init(_ x: [Float], count n: Int, dimension d: Int, components k: Int, whiten: Bool, eps: Double = 1e-8) {
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mean[j] += Double(x[i * d + j]) } }
        for j in 0..<d { mean[j] /= Double(n) }
        var cov = [Double](repeating: 0, count: d * d)
        for i in 0..<n { for a in 0..<d { let xa = Double(x[i * d + a]) - mean[a]; for b in a..<d { cov[a * d + b] += xa * (Double(x[i * d + b]) - mean[b]) } } }
        for a in 0..<d { for b in a..<d { cov[a * d + b] /= Double(max(n - 1, 1)); cov[b * d + a] = cov[a * d + b] } }
        let (values, vectors) = symmetricEigen(cov, d)
        let order = (0..<d).reversed().prefix(k)
        self.mean = mean
        self.components = order.flatMap { Array(vectors[($0 * d)..<(($0 + 1) * d)]) }
        self.explainedVariance = order.map { Swift.max(values[$0], 0) }
        self.scales = order.map { whiten ? 1 / (Swift.max(values[$0], 0) + eps).squareRoot() : 1 }
        self.dimension = d
        self.count = k
    }

    public func transform(_ x: [Float], count n: Int) -> [Float] {
        var out = [Float](repeating: 0, count: n * count)
        for i in 0..<n { for c in 0..<count {
            var s = 0.0
            for j in 0..<dimension { s += (Double(x[i * dimension + j]) - mean[j]) * components[c * dimension + j] }
            out[i * count + c] = Float(s * scales[c])
        } }
        return out
    }
}
