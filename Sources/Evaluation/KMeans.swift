import CBLAS
import CKernels
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

/// The nearest centroid (squared L2) of every point [n, d] among c [k, d]: argmax_j x·c_j −
/// ‖c_j‖²/2, the products from `replica_dots` (each value depends on its point and centroid
/// only, so equal centroids tie exactly and the lower index wins), in blocks of 1,024 points
/// run in parallel; the result does not depend on the thread count.
public func nearestCentroids(_ x: [Float], count n: Int, dimension d: Int, centroids c: [Float], k: Int) -> [Int] {
    let columns = (k + Int(REPLICA_DOTS_COLUMNS) - 1) / Int(REPLICA_DOTS_COLUMNS) * Int(REPLICA_DOTS_COLUMNS)
    var half = [Float](repeating: .infinity, count: columns)   // padding columns never win
    for j in 0..<k { half[j] = 0; for t in 0..<d { half[j] += c[j * d + t] * c[j * d + t] / 2 } }
    var ct = [Float](repeating: 0, count: d * columns)
    c.withUnsafeBufferPointer { replica_dots_pack($0.baseAddress!, Int32(k), Int32(d), Int32(columns), &ct) }
    var out = [Int](repeating: 0, count: n)
    let block = 1024, tile = Int(REPLICA_DOTS_ROWS)
    x.withUnsafeBufferPointer { xp in ct.withUnsafeBufferPointer { cp in out.withUnsafeMutableBufferPointer { op in half.withUnsafeBufferPointer { hp in
        let (xp, cp, op, hp) = (xp.baseAddress!, cp.baseAddress!, op.baseAddress!, hp.baseAddress!)
        Threads.parallelFor((n + block - 1) / block) { _, blocks in
            var scores = [Float](repeating: 0, count: block * columns)
            var tail = [Float](repeating: 0, count: tile * d)   // the last rows, padded to a row tile
            for b in blocks {
                let (start, m) = (b * block, Swift.min(block, n - b * block))
                let whole = m / tile * tile
                scores.withUnsafeMutableBufferPointer { sp in
                    let sp = sp.baseAddress!
                    replica_dots(xp + start * d, Int32(whole), cp, Int32(columns), Int32(d), sp, Int32(columns))
                    if whole < m {
                        for i in 0..<((m - whole) * d) { tail[i] = xp[(start + whole) * d + i] }
                        tail.withUnsafeBufferPointer { replica_dots($0.baseAddress!, Int32(tile), cp, Int32(columns), Int32(d), sp + whole * columns, Int32(columns)) }
                    }
                    replica_argmax_rows(sp, hp, m, columns, op + start)
                }
            }
        }
    } } } }
    return out
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
/// (divided by √eigenvalue); `transform` projects rows.
public struct PCA {
    public let mean: [Double], components: [Double], scales: [Double], dimension: Int, count: Int
    public let explainedVariance: [Double]

    public init(_ x: [Float], count n: Int, dimension d: Int, components k: Int, whiten: Bool, eps: Double = 1e-8) {
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mean[j] += Double(x[i * d + j]) } }
        for j in 0..<d { mean[j] /= Double(n) }
        // The covariance in double precision: one dsyrk per block of centred rows, the
        // blocks' sums added in block order (so the result does not depend on the threads).
        let blocks = (n + PCA.block - 1) / PCA.block
        var partial = [Double](repeating: 0, count: blocks * d * d)
        partial.withUnsafeMutableBufferPointer { pp in
            let pp = pp.baseAddress!
            PCA.centredBlocks(x, n, d, mean) { _, b, rows, xc in
                cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(d), Int32(rows), 1, xc, Int32(d), 0, pp + b * d * d, Int32(d))
            }
        }
        var cov = [Double](repeating: 0, count: d * d)
        for b in 0..<blocks { for a in 0..<d { for c in a..<d { cov[a * d + c] += partial[b * d * d + a * d + c] } } }
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

    /// Rows projected on the components (and scaled), in double precision: one dgemm per
    /// block of centred rows.
    public func transform(_ x: [Float], count n: Int) -> [Float] {
        let (d, k) = (dimension, count)
        var w = components   // [k, d], each row times its scale
        for c in 0..<k { for j in 0..<d { w[c * d + j] *= scales[c] } }
        var out = [Float](repeating: 0, count: n * k)
        let chunks = Threads.chunkCount((n + PCA.block - 1) / PCA.block)
        var scratch = [Double](repeating: 0, count: chunks * PCA.block * k)   // one block's products per worker
        out.withUnsafeMutableBufferPointer { op in w.withUnsafeBufferPointer { wp in scratch.withUnsafeMutableBufferPointer { yp in
            let (op, wp, yp) = (op.baseAddress!, wp.baseAddress!, yp.baseAddress!)
            PCA.centredBlocks(x, n, d, mean) { chunk, b, rows, xc in
                let y = yp + chunk * PCA.block * k
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(k), Int32(d), 1, xc, Int32(d), wp, Int32(d), 0, y, Int32(k))
                for t in 0..<(rows * k) { op[b * PCA.block * k + t] = Float(y[t]) }
            }
        } } }
        return out
    }

    static let block = 2048

    /// Calls `body(chunk, b, rows, xc)` for every block b of `block` rows, in parallel
    /// (`chunk` the worker, below `Threads.chunkCount(blocks)`), with xc the block's rows
    /// minus the mean, as doubles [rows, d].
    static func centredBlocks(_ x: [Float], _ n: Int, _ d: Int, _ mean: [Double], _ body: (Int, Int, Int, UnsafePointer<Double>) -> Void) {
        Threads.prepare()   // OpenBLAS single-threaded: the blocks are the parallelism
        let blocks = (n + block - 1) / block
        x.withUnsafeBufferPointer { xp in
            Threads.parallelFor(blocks) { chunk, range in
                var xc = [Double](repeating: 0, count: block * d)
                for b in range {
                    let rows = Swift.min(block, n - b * block)
                    for i in 0..<rows { for j in 0..<d { xc[i * d + j] = Double(xp[(b * block + i) * d + j]) - mean[j] } }
                    xc.withUnsafeBufferPointer { body(chunk, b, rows, $0.baseAddress!) }
                }
            }
        }
    }
}
