import Datasets
import Engine
import Evaluation
import Foundation
import Harness
import NN
import Representation

/// Ranked List Loss (Wang et al., CVPR 2019) against contrastive, triplet (semi-hard and
/// batch-hard) and Multi-Similarity losses under one deep-metric-learning protocol
/// (docs/papers/ranked-list-loss.md): every loss trains the same MLP embedding from scratch
/// on the training images of some classes, in class-balanced P × K batches, for the same
/// steps with the same optimizer; retrieval is measured on the test images of the other
/// classes (never seen in training), each image querying all others.
public final class RankedListLossExperiment: Experiment {
    public enum Loss: String, Codable { case rankedList = "ranked_list", contrastive, triplet, multiSimilarity = "multi_similarity" }

    public struct RankedListSettings: Codable {
        /// The negative boundary; null: 1 + margin/2 (RLL-Simpler, boundaries 1 ± margin/2).
        public var alpha: Float?
        public var margin: Float, tn: Float, tp: Float, lambda: Float
        public var gradient: RankedListGradient
        var resolvedAlpha: Float { alpha ?? 1 + margin / 2 }
    }
    public struct ContrastiveSettings: Codable { public var positiveMargin: Float, negativeMargin: Float }
    public struct TripletSettings: Codable { public var margin: Float, mining: TripletMining }
    public struct MultiSimilaritySettings: Codable { public var alpha: Float, beta: Float, base: Float, epsilon: Float? }

    public struct Config: Codable {
        /// Hidden widths of the MLP (ReLU) between the flattened image and the embedding.
        public var hidden: [Int]
        public var embedding: Int
        public var trainClasses: [Int], testClasses: [Int]
        /// P classes × K images per batch.
        public var classesPerBatch: Int, imagesPerClass: Int
        public var epochs: Int
        /// Adam, cosine decay to 0 over the run.
        public var learningRate: Float
        public var loss: Loss
        public var rankedList: RankedListSettings
        public var contrastive: ContrastiveSettings
        public var triplet: TripletSettings
        public var multiSimilarity: MultiSimilaritySettings
        public var perClass: Int?
    }

    public static let recallKs = [1, 2, 4, 8]
    public static let recall = recallKs.map { Metric("recall_at_\($0)", "Recall@\($0) on the held-out classes: a same-class image among the \($0) nearest", unit: "fraction") }
    public static let mapAtR = Metric("map_at_r", "MAP@R on the held-out classes (R = same-class images of the query)", unit: "0–1")
    public static let rPrecision = Metric("r_precision", "R-precision on the held-out classes", unit: "0–1")
    public static let metrics: [Metric] = [.loss] + recall + [mapAtR, rPrecision, .kmeansNMI]
    public static let untrained = "untrained network", rawPixels = "raw pixels"
    public static let referenceNames = [rawPixels, untrained]

    let config: Config
    let data: MetricLearningData
    let network: Sequential
    let adam: Adam
    let sampler: ClassBalancedSampler
    let run: RNG
    let kmeansRestarts: Int, seed: UInt64

    public init(config c: Config, context: RunContext) throws {
        for (k, v) in [("embedding", c.embedding), ("epochs", c.epochs), ("images_per_class", c.imagesPerClass), ("per_class", c.perClass ?? 2)] {
            try require("config.\(k)", v, atLeast: k == "per_class" ? 2 : 1)
        }
        for (i, w) in c.hidden.enumerated() { try require("config.hidden[\(i)]", w, atLeast: 1) }
        try require("config.classes_per_batch", c.classesPerBatch, atLeast: 2)
        try require("config.classes_per_batch", c.classesPerBatch <= c.trainClasses.count, "at most the \(c.trainClasses.count) training classes, got \(c.classesPerBatch)")
        try require("config.test_classes", c.testClasses.count >= 2, "at least two held-out classes")
        try require("config.test_classes", Set(c.trainClasses).isDisjoint(with: c.testClasses), "classes disjoint from train_classes")
        try require("config.learning_rate", c.learningRate, above: 0)
        let r = c.rankedList
        try require("config.ranked_list.margin", r.margin, atLeast: 0)
        try require("config.ranked_list.alpha", r.resolvedAlpha, above: r.margin)
        try require("config.ranked_list.lambda", r.lambda, atLeast: 0)
        for (k, v) in [("ranked_list.tn", r.tn), ("ranked_list.tp", r.tp)] { try require("config.\(k)", v, in: -20...20) }
        try require("config.triplet.margin", c.triplet.margin, atLeast: 0)
        try require("config.multi_similarity.alpha", c.multiSimilarity.alpha, above: 0)
        try require("config.multi_similarity.beta", c.multiSimilarity.beta, above: 0)
        if let e = c.multiSimilarity.epsilon { try require("config.multi_similarity.epsilon", e, atLeast: 0) }
        config = c
        data = try MetricLearningData.load(context, train: c.trainClasses, test: c.testClasses, perClass: c.perClass)
        run = RNG(seed: context.seed)
        var initRNG = run.derive("init")   // the untrained-network reference row is this network
        network = embeddingNetwork(c, inputs: data.train.imageSize, rng: &initRNG)
        sampler = ClassBalancedSampler(labels: data.train.labels, p: c.classesPerBatch, k: c.imagesPerClass, rng: run.derive("order"))
        adam = Adam(groups: network.parameterGroups(learningRate: c.learningRate, weightDecay: 0),
                    schedule: .cosine(totalSteps: sampler.batchesPerEpoch * c.epochs))
        (kmeansRestarts, seed) = (context.evaluation.kmeans?.restarts ?? 10, context.seed)
    }

    public var epochs: Int { config.epochs }
    public var stepsPerEpoch: Int { sampler.batchesPerEpoch }
    public var imagesPerStep: Int { config.classesPerBatch * config.imagesPerClass }
    public var model: Module { network }
    public var optimizer: Optimizer { adam }

    /// The configured loss of a batch of embeddings.
    func loss(_ z: Tensor, labels: [Int]) -> Tensor {
        switch config.loss {
        case .rankedList:
            let r = config.rankedList
            return rankedListLoss(z, labels: labels, alpha: r.resolvedAlpha, margin: r.margin, tn: r.tn, tp: r.tp, lambda: r.lambda, gradient: r.gradient)
        case .contrastive:
            return contrastiveLoss(z, labels: labels, positiveMargin: config.contrastive.positiveMargin, negativeMargin: config.contrastive.negativeMargin)
        case .triplet:
            return tripletLoss(z, labels: labels, margin: config.triplet.margin, mining: config.triplet.mining)
        case .multiSimilarity:
            let m = config.multiSimilarity
            return multiSimilarityLoss(z, labels: labels, alpha: m.alpha, beta: m.beta, base: m.base, epsilon: m.epsilon)
        }
    }

    public func trainEpoch(_ epoch: Int, step: (Double) throws -> Void) throws -> [String: Double] {
        network.train()
        let batches = sampler.batches(epoch: epoch), train = data.train
        let loader = PrefetchLoader(batches: batches) { _, idx in (train.batch(idx, mean: self.data.mean, std: self.data.std).flattened(), idx) }
        var total = 0.0
        for (x, shard) in loader {
            network.zeroGrad()
            // Over MPI ranks, the loss of the global batch (every rank's embeddings).
            let idx = Distributed.allGather(shard)
            let l = loss(allGather(network(x)), labels: idx.map { train.labels[$0] })
            l.backward()
            adam.step()
            total += Double(l.item)
            try step(Double(l.item))
        }
        return [Metric.loss.key: total / Double(max(batches.count, 1))]
    }

    /// The last epoch's mean training loss.
    public func summary(of history: [[String: Double]]) -> [String: Double] {
        history.last?[Metric.loss.key].map { [Metric.loss.key: $0] } ?? [:]
    }

    /// Retrieval on the held-out classes after the last epoch.
    public func evaluate(epoch: Int, final: Bool) throws -> [String: Double] {
        guard final else { return [:] }
        return try retrieval(data.embed(network, data.test), restarts: kmeansRestarts, seed: seed)
    }

    /// Raw pixels and the arms' initial network, under the same retrieval protocol.
    public static func references(config c: Config, context: RunContext) throws -> [(name: String, metrics: [String: Double])] {
        let data = try MetricLearningData.load(context, train: c.trainClasses, test: c.testClasses, perClass: c.perClass)
        let run = RNG(seed: context.seed), restarts = context.evaluation.kmeans?.restarts ?? 10
        var initRNG = run.derive("init")
        let random = embeddingNetwork(c, inputs: data.train.imageSize, rng: &initRNG)
        return [(rawPixels, try retrieval(ImageData.pixels(data.test), restarts: restarts, seed: context.seed)),
                (untrained, try retrieval(data.embed(random, data.test), restarts: restarts, seed: context.seed))]
    }

    struct ReferenceInputs: Encodable { let hidden: [Int], embedding: Int, trainClasses: [Int], testClasses: [Int], perClass: Int? }
    public static func referenceInputs(config c: Config, context: RunContext) -> (any Encodable)? {
        ReferenceInputs(hidden: c.hidden, embedding: c.embedding, trainClasses: c.trainClasses, testClasses: c.testClasses, perClass: c.perClass)
    }
}

/// Flattened image → Linear/ReLU blocks → linear embedding (l2-normalized by the losses and
/// by retrieval).
func embeddingNetwork(_ c: RankedListLossExperiment.Config, inputs: Int, rng: inout RNG) -> Sequential {
    MLP([inputs] + c.hidden + [c.embedding], rng: &rng)
}

/// Recall@K, MAP@R, R-precision and k-means NMI, keyed as the experiment's metrics.
func retrieval(_ f: Features, restarts: Int, seed: UInt64) throws -> [String: Double] {
    let r = try retrievalMetrics(f, ks: RankedListLossExperiment.recallKs, kMeansRestarts: restarts, seed: seed)
    var out: [String: Double] = [RankedListLossExperiment.mapAtR.key: r.mapAtR, RankedListLossExperiment.rPrecision.key: r.rPrecision, Metric.kmeansNMI.key: r.nmi]
    for (k, m) in zip(RankedListLossExperiment.recallKs, RankedListLossExperiment.recall) { out[m.key] = r.recallAt[String(k)] }
    return out
}

/// The class-disjoint split: training images of the training classes, test images of the
/// held-out classes, pixels standardized with the training images' mean and std.
final class MetricLearningData {
    let train: ImageSet, test: ImageSet
    let mean: Float, std: Float

    init(train: ImageSet, test: ImageSet) {
        (self.train, self.test) = (train, test)
        (mean, std) = pixelStatistics(train)
    }

    /// Read once per run; a class missing from its split is refused with the file.
    static func load(_ context: RunContext, train: [Int], test: [Int], perClass: Int?) throws -> MetricLearningData {
        try context.cache.value("metric-learning|\(context.dataset)|\(train)|\(test)|\(perClass.map(String.init) ?? "all")") {
            func split(_ name: String, _ classes: [Int]) throws -> ImageSet {
                let set = try DatasetFile.read(context.dataset, split: name).set
                let present = Set(set.labels)
                if let missing = classes.first(where: { !present.contains($0) }) {
                    throw RunError("\(context.dataset): the \(name) split has no images of class \(missing) (classes present: \(present.sorted()))")
                }
                let wanted = Set(classes), picked = set.subset(set.labels.indices.filter { wanted.contains(set.labels[$0]) })
                return perClass.map { picked.perClassSubset($0) } ?? picked
            }
            return MetricLearningData(train: try split("train", train), test: try split("test", test))
        }
    }

    /// Embeddings of every image of `set` (evaluation mode, no gradients).
    func embed(_ network: Sequential, _ set: ImageSet, batchSize: Int = 1000) -> Features {
        network.eval()
        var values: [Float] = []
        for start in stride(from: 0, to: set.count, by: batchSize) {
            values += withoutGradients { network(set.batch(Array(start..<min(start + batchSize, set.count)), mean: mean, std: std).flattened()) }.array
        }
        return Features(values: values, count: set.count, dimension: values.count / Swift.max(set.count, 1), labels: set.labels)
    }
}
