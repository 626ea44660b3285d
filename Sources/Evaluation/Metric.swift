/// A metric as it is named in summaries, metrics.csv and experiment files, declared once
/// with its meaning and unit (tables and plots show them). A method declares the metrics it
/// reports; a claim or leaderboard that names any other is refused with the file and key.
public struct Metric: Hashable, Sendable, CustomStringConvertible {
    public let key: String, meaning: String, unit: String
    public init(_ key: String, _ meaning: String, unit: String) { (self.key, self.meaning, self.unit) = (key, meaning, unit) }
    public var description: String { key }
    /// "kNN top-1 on the test split (fraction)".
    public var label: String { unit.isEmpty ? meaning : "\(meaning) (\(unit))" }
}

extension Metric {
    public static let epoch = Metric("epoch", "epochs completed", unit: "")
    public static let loss = Metric("loss", "training loss, mean over the epoch's steps", unit: "")
    public static let testTop1 = Metric("test_top1", "classifier top-1 on the test split", unit: "fraction")
    public static let knnTop1 = Metric("knn_top1", "weighted kNN top-1 on the test split", unit: "fraction")
    public static let linearTop1 = Metric("linear_top1", "linear probe top-1 on the test split", unit: "fraction")
    public static let kmeansNMI = Metric("kmeans_nmi", "k-means NMI with the test labels", unit: "0–1")
    public static let kmeansAMI = Metric("kmeans_ami", "k-means AMI with the test labels", unit: "0–1")
    public static let stdSqrtD = Metric("std_sqrt_d", "std of l2-normalized outputs × √d", unit: "1 = spread, 0 = collapsed")
    public static let effectiveRank = Metric("effective_rank", "effective rank of l2-normalized outputs", unit: "dimensions")

    /// What the shared protocol reports on frozen features.
    public static let sharedProtocol: [Metric] = [.knnTop1, .linearTop1, .kmeansNMI, .kmeansAMI]
}

extension Dictionary where Key == String, Value == Double {
    public subscript(metric: Metric) -> Double? {
        get { self[metric.key] }
        set { self[metric.key] = newValue }
    }
}
