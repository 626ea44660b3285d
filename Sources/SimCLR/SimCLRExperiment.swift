import Datasets
import Engine
import Evaluation
import Foundation
import Harness
import NN
import Representation

/// SimCLR (Chen, Kornblith, Norouzi & Hinton, ICML 2020) at small scale
/// (docs/papers/simclr.md). Per batch: N images, two augmented views each (2N views);
/// h = f(x̃), z = g(h); NT-Xent over the 2N views (each anchor's positive is its other view,
/// the 2N−2 views of the other images are its negatives), both views back-propagated, no
/// stop-gradient, no memory bank. SGD with momentum, linear warm-up then cosine. After
/// training g is thrown away and h is evaluated; arms also evaluate z to show why.
public final class SimCLRExperiment: RepresentationExperiment {
    public struct Config: Codable, ContrastiveConfig {
        public var width: ConvNet4.Width
        public var epochs: Int
        public var batchSize: Int
        public var views: Int
        public var baseLearningRate: Float
        public var warmupEpochs: Int
        public var momentum: Float
        public var weightDecay: Float
        /// τ of NT-Xent.
        public var temperature: Float
        public var head: ProjectionHead
        public var headHidden: Int
        public var headDimension: Int
        /// Also evaluate z = g(h) (kNN and linear probe) to compare it with h.
        public var evaluateZ: Bool
        public var augmentation: ViewRecipe
        public var rankBatches: Int
        public var perClass: Int?
    }

    public static let knnZ = Metric("knn_top1_z", "weighted kNN top-1 on z = g(h) (after the head)", unit: "fraction")
    public static let linearZ = Metric("linear_top1_z", "linear probe top-1 on z = g(h) (after the head)", unit: "fraction")
    public static let knnGap = Metric("knn_gap_h_z", "kNN top-1 on h minus on z", unit: "fraction")
    public static let linearGap = Metric("linear_gap_h_z", "linear probe top-1 on h minus on z", unit: "fraction")
    public static let metrics: [Metric] = ContrastiveMonitor.metrics + [knnZ, linearZ, knnGap, linearGap, .testTop1] + Metric.sharedProtocol

    let config: Config
    let data: ImageData
    let network: ContrastiveNetwork
    let sgd: SGD
    let views: Augmentation
    let run: RNG
    let evaluation: SharedProtocol
    let cache = FeatureCache()

    public init(config c: Config, context: RunContext) throws {
        try c.validate()
        (config, evaluation) = (c, context.evaluation.sharedProtocol)
        (data, views, run) = try loadViews(context, recipe: c.augmentation, perClass: c.perClass, batchSize: c.batchSize)
        var initRNG = run.derive("init")   // the backbone first: the random-init reference row is the same network
        network = ContrastiveNetwork(width: c.width, inputChannels: data.channels, head: c.head, hidden: c.headHidden, output: c.headDimension, rng: &initRNG)
        sgd = c.sgd(network, stepsPerEpoch: data.train.count / c.batchSize, epochs: c.epochs, warmupEpochs: c.warmupEpochs)
    }

    public var epochs: Int { config.epochs }
    public var stepsPerEpoch: Int { data.train.count / config.batchSize }
    public var imagesPerStep: Int { config.views * config.batchSize }
    public var model: Module { network }
    public var optimizer: Optimizer { sgd }
    public var checkpointInfo: [String: Any] { data.checkpointInfo(network.backbone) }

    public func trainEpoch(_ epoch: Int, step: (Double) throws -> Void) throws -> [String: Double] {
        let (views, τ) = (config.views, config.temperature)
        return try trainContrastiveEpoch(network, data, views: self.views, count: views, run: run, batchSize: config.batchSize, epoch: epoch,
                                         optimizer: sgd, rankBatches: config.rankBatches, step: step) { z, idx in
            let image = [[Int]](repeating: Array(0..<idx.count), count: views).flatMap { $0 }   // view v of image k is row v·N + k
            return (supervisedContrastiveLoss(z, labels: image, temperature: τ).loss, image, 0)   // NT-Xent for two views
        }.filter { $0.key != ContrastiveMonitor.withoutPositives.key }
    }

    public func evaluate(epoch: Int, final: Bool) throws -> [String: Double] {
        guard final else { return [:] }
        let (train, test) = (features(split: "train")!, features(split: "test")!)
        var out = try evaluation.metrics(train: train, test: test, knn: false)   // kNN on h: the runner's monitor
        if config.evaluateZ {
            let (zTrain, zTest) = (network.embeddings(data, split: "train"), network.embeddings(data, split: "test"))
            let knnH = try knnClassify(bank: train, queries: test, k: min(evaluation.k, train.count), temperature: evaluation.temperature).top1
            out[Self.knnZ] = try knnClassify(bank: zTrain, queries: zTest, k: min(evaluation.k, zTrain.count), temperature: evaluation.temperature).top1
            out[Self.linearZ] = try linearProbe(train: zTrain, test: zTest, config: evaluation.linear).top1
            out[Self.knnGap] = knnH - out[Self.knnZ]!
            out[Self.linearGap] = out[Metric.linearTop1]! - out[Self.linearZ]!
        }
        return out
    }

    public func features(split: String) -> Features? { cache.features(network.backbone, data, split: split, step: sgd.stepCount) }

    public func summary(of history: [[String: Double]]) -> [String: Double] {
        history.last?.filter { key, _ in ContrastiveMonitor.metrics.contains { $0.key == key } } ?? [:]
    }

    public static func recipe(_ c: Config, _ context: RunContext) -> ReferenceRecipe { c.referenceRecipe(context) }
}
