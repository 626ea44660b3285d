import Datasets
import Engine
import Evaluation
import Foundation
import Harness
import NN
import Representation

/// Supervised Contrastive Learning (Khosla et al., NeurIPS 2020) at small scale
/// (docs/papers/supcon.md). Stage 1: a labelled batch of N images, two views each; every
/// view is an anchor whose positives are all other views of its class; L_out (the paper's
/// loss) or L_in (the ablation) over z = l2(g(f(x̃))). Stage 2: the shared linear probe on
/// frozen h. The cross-entropy arm trains the same backbone with a linear classifier on
/// single views, 2N of them per step ("twice the batch") for as many steps: the same images
/// per step, steps, schedule, optimizer and augmentation as the contrastive arms.
public final class SupConExperiment: RepresentationExperiment {
    public enum Loss: String, Codable { case out, `in`, crossEntropy = "cross_entropy" }

    public struct Config: Codable, ContrastiveConfig {
        public var width: ConvNet4.Width
        public var epochs: Int
        /// Images per step; each contributes `views` views (the cross-entropy arm takes
        /// views × batch_size single-view images instead).
        public var batchSize: Int
        public var views: Int
        public var loss: Loss
        public var baseLearningRate: Float
        public var warmupEpochs: Int
        public var momentum: Float
        public var weightDecay: Float
        public var temperature: Float
        public var head: ProjectionHead
        public var headHidden: Int
        public var headDimension: Int
        public var augmentation: ViewRecipe
        public var rankBatches: Int
        public var perClass: Int?

        /// Cross-entropy steps take views × batch_size images, so an epoch has 1/views the
        /// steps: it runs views × the epochs (warm-up included) for the same number of steps.
        var runEpochs: Int { loss == .crossEntropy ? views * epochs : epochs }
        var runWarmupEpochs: Int { loss == .crossEntropy ? views * warmupEpochs : warmupEpochs }
        var imagesPerBatch: Int { loss == .crossEntropy ? views * batchSize : batchSize }
    }

    public static let metrics: [Metric] = ContrastiveMonitor.metrics + [ContrastiveMonitor.withoutPositives, .testTop1] + Metric.sharedProtocol

    let config: Config
    let data: ImageData
    let network: ContrastiveNetwork?, classifier: Classifier?
    let sgd: SGD
    let views: Augmentation
    let run: RNG
    let evaluation: SharedProtocol
    let cache = FeatureCache()

    public init(config c: Config, context: RunContext) throws {
        try c.validate()
        (config, evaluation) = (c, context.evaluation.sharedProtocol)
        (data, views, run) = try loadViews(context, recipe: c.augmentation, perClass: c.perClass, batchSize: c.imagesPerBatch)
        var initRNG = run.derive("init")   // the backbone first: every arm and the random-init row start from it
        if c.loss == .crossEntropy {
            (network, classifier) = (nil, Classifier(width: c.width, inputChannels: data.channels, classes: data.classes, rng: &initRNG))
        } else {
            (network, classifier) = (ContrastiveNetwork(width: c.width, inputChannels: data.channels, head: c.head, hidden: c.headHidden,
                                                        output: c.headDimension, rng: &initRNG), nil)
        }
        sgd = c.sgd(network ?? classifier!, stepsPerEpoch: data.train.count / c.imagesPerBatch, epochs: c.runEpochs, warmupEpochs: c.runWarmupEpochs)
    }

    var backbone: ConvNet4 { network?.backbone ?? classifier!.backbone }
    public var epochs: Int { config.runEpochs }
    public var stepsPerEpoch: Int { data.train.count / config.imagesPerBatch }
    public var imagesPerStep: Int { config.views * config.batchSize }
    public var model: Module { network ?? classifier! }
    public var optimizer: Optimizer { sgd }
    public var checkpointInfo: [String: Any] { data.checkpointInfo(backbone) }

    public func trainEpoch(_ epoch: Int, step: (Double) throws -> Void) throws -> [String: Double] {
        guard let network else { return try crossEntropyEpoch(epoch, step: step) }
        let (views, τ, labels) = (config.views, config.temperature, data.train.labels)
        let variant: SupConVariant = config.loss == .in ? .inside : .outside
        return try trainContrastiveEpoch(network, data, views: self.views, count: views, run: run, batchSize: config.batchSize, epoch: epoch,
                                         optimizer: sgd, rankBatches: config.rankBatches, step: step) { z, idx in
            let classes = [[Int]](repeating: idx.map { labels[$0] }, count: views).flatMap { $0 }   // view v of image k is row v·N + k
            let (loss, without) = supervisedContrastiveLoss(z, labels: classes, temperature: τ, variant: variant)
            return (loss, classes, without)
        }
    }

    /// The cross-entropy arm: one view of each of views × batch_size images per step.
    func crossEntropyEpoch(_ epoch: Int, step: (Double) throws -> Void) throws -> [String: Double] {
        [Metric.loss.key: try Representation.crossEntropyEpoch(classifier!, data.train, views: views, batchSize: imagesPerStep, epoch: epoch,
                                                               order: run.derive("order"), augment: run.derive("augment"), optimizer: sgd, step: step)]
    }

    public func evaluate(epoch: Int, final: Bool) throws -> [String: Double] {
        guard final else { return [:] }
        var out = try evaluation.metrics(train: features(split: "train")!, test: features(split: "test")!, knn: false)   // kNN: the runner's monitor
        if let classifier { out[Metric.testTop1] = accuracy(classifier, data.test, mean: data.mean, std: data.std) }
        return out
    }

    public func features(split: String) -> Features? { cache.features(backbone, data, split: split, step: sgd.stepCount) }

    /// The last epoch's monitors, and the anchors without a positive summed over training.
    public func summary(of history: [[String: Double]]) -> [String: Double] {
        var out = history.last?.filter { key, _ in ContrastiveMonitor.metrics.contains { $0.key == key } } ?? [:]
        if network != nil { out[ContrastiveMonitor.withoutPositives] = history.compactMap { $0[ContrastiveMonitor.withoutPositives] }.reduce(0, +) }
        return out
    }

    public static func recipe(_ c: Config, _ context: RunContext) -> ReferenceRecipe { c.referenceRecipe(context) }
}
