import ArgumentParser
import Engine
import Evaluation
import Foundation
import HDF5IO

/// `replica evaluate …`: the shared protocol on features stored in HDF5 (`/features`
/// float32 [N, D], `/labels` int64 [N]), from `replica embed` or anywhere else.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Evaluate stored features; prints JSON with every number and the settings used.",
                                                    subcommands: [KNNCommand.self, LinearCommand.self, KMeansCommand.self, RetrievalCommand.self])
}

/// Reads and validates a feature file.
func readFeatures(_ path: String) throws -> Features {
    let f: HDF5File
    do { f = try HDF5File(reading: path) } catch { throw InputError("\(error)") }
    do {
        let (values, shape) = try f.readFloats("/features", rank: 2)
        let (labels, lshape) = try f.readInt64s("/labels", rank: 1)
        guard lshape[0] == shape[0] else { throw InputError("\(path): /features has \(shape[0]) rows but /labels has \(lshape[0]) entries") }
        guard shape[0] >= 1, shape[1] >= 1 else { throw InputError("\(path): /features is \(shape[0]) × \(shape[1]); expected at least one row of at least one value") }
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw InputError("\(path): /features row \(bad / max(shape[1], 1)) holds a non-finite value (NaN or Inf)")
        }
        if let neg = labels.first(where: { $0 < 0 }) { throw InputError("\(path): /labels holds \(neg); labels must be ≥ 0") }
        return Features(values: values, count: shape[0], dimension: shape[1], labels: labels.map(Int.init))
    } catch let e as HDF5Error { throw InputError(e.description) }
}

func printJSON(_ object: [String: Any]) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

func encodeJSON<T: Encodable>(_ value: T) throws -> Any {
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    // Float fields print as their shortest decimal (0.01, not 0.009999999776).
    let object = try JSONSerialization.jsonObject(with: encoder.encode(value))
    guard var dict = object as? [String: Any] else { return object }
    for (k, v) in dict { if let n = v as? Double { dict[k] = Double(String(Float(n)))! } }
    return dict
}

struct KNNCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "knn", abstract: "kNN top-1/top-5 (cosine on l2-normalized features; InstDisc weights by default).")
    @Option(help: "Bank features (training split).") var train: String
    @Option(help: "Query features (test split).") var test: String
    @Option var k: Int = 200
    @Option var temperature: Float = 0.1
    @Option(help: "exponential (InstDisc) or majority.") var weighting: String = "exponential"

    func run() throws {
        guard let w = KNNWeighting(rawValue: weighting) else { throw ValidationError("--weighting must be exponential or majority, got '\(weighting)'") }
        guard temperature > 0 else { throw ValidationError("--temperature must be positive") }
        let bank = try readFeatures(train), queries = try readFeatures(test)
        guard bank.dimension == queries.dimension else { throw InputError("\(train) has \(bank.dimension)-d features, \(test) has \(queries.dimension)-d") }
        guard k >= 1 && k <= bank.count else { throw ValidationError("--k \(k) is larger than the bank of \(bank.count) features in \(train)") }
        let r = try knnClassify(bank: bank, queries: queries, k: k, temperature: temperature, weighting: w)
        try printJSON(["metric": "knn", "top1": r.top1, "top5": r.top5,
                       "protocol": ["k": k, "temperature": Double(String(temperature))!, "weighting": w.rawValue, "similarity": "cosine on l2-normalized features",
                                    "bank": train, "bank_size": bank.count, "queries": test, "query_count": queries.count]])
    }
}

struct LinearCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "linear", abstract: "Linear probe: standardized features, multinomial logistic regression (Adam, cosine).")
    @Option var train: String
    @Option var test: String
    @Option var epochs: Int = LinearProbeConfig().epochs
    @Option var batchSize: Int = LinearProbeConfig().batchSize
    @Option var learningRate: Float = LinearProbeConfig().learningRate
    @Option var weightDecay: Float = LinearProbeConfig().weightDecay
    @Option var seed: UInt64 = 0

    func run() throws {
        guard epochs >= 1, batchSize >= 1, learningRate > 0, weightDecay >= 0 else { throw ValidationError("epochs and batch size must be ≥ 1, learning rate > 0, weight decay ≥ 0") }
        let tr = try readFeatures(train), te = try readFeatures(test)
        guard tr.dimension == te.dimension else { throw InputError("\(train) has \(tr.dimension)-d features, \(test) has \(te.dimension)-d") }
        var config = LinearProbeConfig()
        (config.epochs, config.batchSize, config.learningRate, config.weightDecay, config.seed) = (epochs, batchSize, learningRate, weightDecay, seed)
        let r = try linearProbe(train: tr, test: te, config: config)
        try printJSON(["metric": "linear", "top1": r.top1, "top5": r.top5, "train_top1": r.trainTop1,
                       "protocol": ["standardize": "train mean/std", "optimizer": "Adam, cosine schedule", "config": try encodeJSON(config),
                                    "train": train, "test": test]])
    }
}

struct KMeansCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kmeans", abstract: "k-means on l2-normalized features: NMI, AMI, ARI and clustering accuracy.")
    @Option var features: String
    @Option(help: "Clusters (default: the number of classes).") var k: Int?
    @Option var restarts: Int = 10
    @Option var seed: UInt64 = 0
    @Option(help: "arithmetic (scikit-learn's default) or geometric.") var nmi: String = "arithmetic"

    func run() throws {
        guard let norm = NMINormalization(rawValue: nmi) else { throw ValidationError("--nmi must be arithmetic, geometric, min or max") }
        let f = try readFeatures(features).l2Normalized()
        let clusters = k ?? Set(f.labels).count
        guard clusters >= 1 && clusters <= f.count else { throw ValidationError("--k \(clusters) for \(f.count) features") }
        guard restarts >= 1 else { throw ValidationError("--restarts must be ≥ 1") }
        let r = try kMeans(f.values, count: f.count, dimension: f.dimension, k: clusters, restarts: restarts, rng: RNG(seed: seed))
        try printJSON(["metric": "kmeans", "nmi": normalizedMutualInformation(f.labels, r.assignments, normalization: norm),
                       "ami": adjustedMutualInformation(f.labels, r.assignments), "ari": adjustedRandIndex(f.labels, r.assignments),
                       "accuracy": clusteringAccuracy(f.labels, r.assignments), "inertia": r.inertia,
                       "protocol": ["k": clusters, "restarts": restarts, "init": "k-means++", "seed": seed, "features": "l2-normalized",
                                    "nmi_normalization": norm.rawValue, "file": features]])
    }
}

struct RetrievalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "retrieval", abstract: "Recall@1/2/4/8, MAP@R, R-precision and k-means NMI (query excluded from its gallery).")
    @Option var features: String
    @Option var seed: UInt64 = 0

    func run() throws {
        let f = try readFeatures(features)
        let r = try retrievalMetrics(f, seed: seed)
        try printJSON(["metric": "retrieval", "recall_at": r.recallAt, "map_at_r": r.mapAtR, "r_precision": r.rPrecision, "nmi": r.nmi,
                       "protocol": ["similarity": "cosine", "gallery": "all other items", "kmeans_k": Set(f.labels).count, "file": features]])
    }
}
