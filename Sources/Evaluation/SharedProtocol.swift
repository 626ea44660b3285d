import Engine
import Foundation

/// The shared evaluation of frozen features (docs/architecture.md, "The shared protocol"),
/// the same for every method's arms and reference rows.
public struct SharedProtocol: Codable, Equatable, Sendable {
    /// kNN on l2-normalized features, InstDisc weights (k capped at the bank size).
    public var k = 200
    public var temperature: Float = 0.1
    public var linear = LinearProbeConfig()
    /// k-means with k = the number of classes on the l2-normalized test features.
    public var kmeansRestarts = 10
    public var seed: UInt64 = 0
    public init() {}

    /// `knn_top1` (unless `knn` is false), `linear_top1`, `kmeans_nmi` and `kmeans_ami`
    /// (arithmetic normalization).
    public func metrics(train: Features, test: Features, knn: Bool = true) throws -> [String: Double] {
        var out: [String: Double] = [:]
        if knn { out[Metric.knnTop1] = try knnClassify(bank: train, queries: test, k: Swift.min(k, train.count), temperature: temperature).top1 }
        out[Metric.linearTop1] = try linearProbe(train: train, test: test, config: linear).top1
        let classes = Set(train.labels + test.labels).count
        let x = test.l2Normalized()
        let clusters = try kMeans(x.values, count: x.count, dimension: x.dimension, k: Swift.min(classes, x.count), restarts: kmeansRestarts, rng: RNG(seed: seed))
        out[Metric.kmeansNMI] = normalizedMutualInformation(test.labels, clusters.assignments)
        out[Metric.kmeansAMI] = adjustedMutualInformation(test.labels, clusters.assignments)
        return out
    }
}
