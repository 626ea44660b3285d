import Engine
import Foundation

public struct RetrievalResult: Codable, Equatable {
    /// Recall@K ("hit@K") for K = 1, 2, 4, 8.
    public let recallAt: [String: Double]
    public let mapAtR: Double, rPrecision: Double
    /// NMI of k-means (k = number of classes) on the same embeddings.
    public let nmi: Double
}

/// Retrieval metrics on held-out classes (the metric-learning protocol): every item queries
/// all others (itself excluded) by cosine similarity.
public func retrievalMetrics(_ f: Features, ks: [Int] = [1, 2, 4, 8], kMeansRestarts: Int = 5, seed: UInt64 = 0) throws -> RetrievalResult {
    guard f.count >= 2 else { throw EvaluationError("retrieval needs at least two items") }
    let x = f.l2Normalized(), n = f.count, d = f.dimension
    var classSize: [Int: Int] = [:]
    for y in f.labels { classSize[y, default: 0] += 1 }
    var hits = [Int](repeating: 0, count: ks.count)
    var mapSum = 0.0, rpSum = 0.0, mapCount = 0
    let chunk = SimilarityBlocks.queryBlock, blocks = SimilarityBlocks(bank: x.values, count: n, dimension: d)
    var sims = [Float](repeating: 0, count: chunk * n)
    for start in stride(from: 0, to: n, by: chunk) {
        let m = Swift.min(chunk, n - start)
        x.values.withUnsafeBufferPointer { xp in sims.withUnsafeMutableBufferPointer { sp in
            blocks.compute(queries: xp.baseAddress! + start * d, count: m, into: sp.baseAddress!)
        } }
        for i in 0..<m {
            let q = start + i, y = f.labels[q]
            let ranked = (0..<n).filter { $0 != q }.sorted { sims[i * n + $0] != sims[i * n + $1] ? sims[i * n + $0] > sims[i * n + $1] : $0 < $1 }
            for (t, k) in ks.enumerated() where ranked.prefix(k).contains(where: { f.labels[$0] == y }) { hits[t] += 1 }
            let r = classSize[y]! - 1
            guard r > 0 else { continue }
            var relevant = 0, ap = 0.0
            for (pos, j) in ranked.prefix(r).enumerated() where f.labels[j] == y {
                relevant += 1
                ap += Double(relevant) / Double(pos + 1)
            }
            mapSum += ap / Double(r)
            rpSum += Double(relevant) / Double(r)
            mapCount += 1
        }
    }
    let k = classSize.count
    let clusters = try kMeans(x.values, count: n, dimension: d, k: k, restarts: kMeansRestarts, rng: RNG(seed: seed))
    return RetrievalResult(recallAt: Dictionary(uniqueKeysWithValues: zip(ks.map(String.init), hits.map { Double($0) / Double(n) })),
                           mapAtR: mapSum / Double(max(mapCount, 1)), rPrecision: rpSum / Double(max(mapCount, 1)),
                           nmi: normalizedMutualInformation(f.labels, clusters.assignments))
}
