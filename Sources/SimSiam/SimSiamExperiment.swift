import Datasets
import Engine
import Evaluation
import Foundation
import Harness
import NN
import Representation

/// SimSiam (Chen & He, CVPR 2021) at small scale (docs/papers/simsiam.md): convnet4, two
/// views, the symmetric negative-cosine loss with stop-gradient, SGD with lr = base·B/256,
/// cosine for backbone and projector, the predictor's rate held constant. Arms switch the
/// stop-gradient and the predictor (trained, frozen at its random init, removed).
public final class SimSiamExperiment: RepresentationExperiment {
    public struct Config: Codable {
        public enum Predictor: String, Codable { case trained, frozen, none }
        public var width: ConvNet4.Width
        public var epochs: Int
        /// Failure arms (collapse ablations) run `failureArmEpochs` epochs and stop early once
        /// the full collapse signature of `earlyStop` is reached.
        public var failureArm: Bool
        public var failureArmEpochs: Int
        public var batchSize: Int
        /// lr = base_learning_rate · batch_size / 256.
        public var baseLearningRate: Float
        public var momentum: Float
        public var weightDecay: Float
        public var fixPredictorLearningRate: Bool
        public var dimension: Int
        public var predictorHidden: Int
        public var stopGradient: Bool
        public var predictor: Predictor
        public var augmentation: ViewRecipe
        public var earlyStop: EarlyStop
        /// Effective rank of l2(z) over the last this many batches of each epoch.
        public var rankBatches: Int
        /// Images per class kept (smoke profiles); nil keeps everything.
        public var perClass: Int?

        public struct EarlyStop: Codable { public var lossAtMost: Double; public var stdSqrtDBelow: Double }

        var runEpochs: Int { failureArm ? failureArmEpochs : epochs }
        var learningRate: Float { baseLearningRate * Float(batchSize) / 256 }
    }

    public static let stdSqrtDMin = Metric("std_sqrt_d_min", "lowest epoch value of std·√d", unit: "1 = spread")
    public static let stdSqrtDTrend = Metric("std_sqrt_d_trend", "change of std·√d over the last epoch", unit: "")
    public static let metrics: [Metric] = [.loss, .stdSqrtD, .effectiveRank, stdSqrtDMin, stdSqrtDTrend, .testTop1] + Metric.sharedProtocol

    let config: Config
    let data: ImageData
    let network: SimSiamNetwork
    let sgd: SGD
    let views: Augmentation
    let run: RNG
    let evaluation: SharedProtocol
    let cache = FeatureCache()

    public init(config c: Config, context: RunContext) throws {
        for (k, v) in [("epochs", c.epochs), ("failure_arm_epochs", c.failureArmEpochs), ("dimension", c.dimension),
                       ("predictor_hidden", c.predictorHidden), ("rank_batches", c.rankBatches), ("per_class", c.perClass ?? 1)] {
            try require("config.\(k)", v, atLeast: 1)
        }
        try require("config.batch_size", c.batchSize, atLeast: 2)   // BatchNorm needs two images
        for (k, v) in [("base_learning_rate", c.baseLearningRate), ("momentum", c.momentum), ("weight_decay", c.weightDecay)] {
            try require("config.\(k)", v, atLeast: 0)
        }
        try c.augmentation.validate()
        config = c
        (data, views, run) = try loadViews(context, recipe: c.augmentation, perClass: c.perClass, batchSize: c.batchSize)
        var initRNG = run.derive("init")   // the backbone first: the random-init reference row is the same network
        network = SimSiamNetwork(width: c.width, inputChannels: data.channels, dimension: c.dimension,
                                 predictorHidden: c.predictorHidden, withPredictor: c.predictor != .none, rng: &initRNG)
        if c.predictor == .frozen { network.freeze(["predictor"]) }
        let (lr, wd) = (c.learningRate, c.weightDecay)
        var groups = network.backbone.parameterGroups(learningRate: lr, weightDecay: wd, prefix: "backbone.")
            + network.projector.parameterGroups(learningRate: lr, weightDecay: wd, prefix: "projector.")
        if let p = network.predictor, c.predictor == .trained {
            groups += p.parameterGroups(learningRate: lr, weightDecay: wd, prefix: "predictor.")
                .map { var g = $0; g.fixedLearningRate = c.fixPredictorLearningRate; return g }
        }
        sgd = SGD(groups: groups, momentum: c.momentum, schedule: .cosine(totalSteps: data.train.count / c.batchSize * c.runEpochs))
        evaluation = context.evaluation.sharedProtocol
    }

    public var epochs: Int { config.runEpochs }
    public var stepsPerEpoch: Int { data.train.count / config.batchSize }
    public var imagesPerStep: Int { 2 * config.batchSize }
    public var model: Module { network }
    public var optimizer: Optimizer { sgd }
    public var checkpointInfo: [String: Any] { data.checkpointInfo(network.backbone) }

    public func trainEpoch(_ epoch: Int, step: (Double) throws -> Void) throws -> [String: Double] {
        network.train()
        let batches = ShuffledSampler(count: data.train.count, batchSize: config.batchSize, rng: run.derive("order")).batches(epoch: epoch)
        let loader = PrefetchLoader(batches: batches) { [self] s, idx in viewBatches(views, data, idx, count: 2, run: run, epoch: epoch, step: s) }
        var lossSum = 0.0, stdSum = 0.0, rankRows: [Float] = []
        for (s, x) in loader.enumerated() {
            network.zeroGrad()
            let (z1, p1) = network(x[0]), (z2, p2) = network(x[1])
            let loss = simsiamLoss(p1: p1, p2: p2, z1: z1, z2: z2, stopGradient: config.stopGradient)
            loss.backward()
            sgd.step()
            let z = Features(values: z1.array, count: z1.shape[0], dimension: z1.shape[1], labels: [Int](repeating: 0, count: z1.shape[0]))
            stdSum += normalizedStd(z)
            if s >= batches.count - config.rankBatches { rankRows += z.l2Normalized().values }
            lossSum += Double(loss.item)
            try step(Double(loss.item))
        }
        let d = config.dimension, n = Double(batches.count)
        let last = Features(values: rankRows, count: rankRows.count / d, dimension: d, labels: [Int](repeating: 0, count: rankRows.count / d))
        return [Metric.loss.key: lossSum / n, Metric.stdSqrtD.key: stdSum / n, Metric.effectiveRank.key: effectiveRank(last)]
    }

    public func evaluate(epoch: Int, final: Bool) throws -> [String: Double] {
        guard final else { return [:] }
        return try evaluation.metrics(train: features(split: "train")!, test: features(split: "test")!, knn: false)   // kNN: the runner's monitor
    }

    public func features(split: String) -> Features? { cache.features(network.backbone, data, split: split, step: sgd.stepCount) }

    public func summary(of history: [[String: Double]]) -> [String: Double] {
        guard let last = history.last else { return [:] }
        var out: [String: Double] = [:]
        for m in [Metric.loss, .stdSqrtD, .effectiveRank] { out[m] = last[m] }
        out[Self.stdSqrtDMin] = history.compactMap { $0[Metric.stdSqrtD] }.min()
        if history.count >= 2, let a = history[history.count - 2][Metric.stdSqrtD], let b = last[Metric.stdSqrtD] { out[Self.stdSqrtDTrend] = b - a }
        return out
    }

    public func earlyStop(history: [[String: Double]]) -> String? {
        guard config.failureArm, let last = history.last, let loss = last[Metric.loss], let s = last[Metric.stdSqrtD],
              loss <= config.earlyStop.lossAtMost, s < config.earlyStop.stdSqrtDBelow else { return nil }
        return String(format: "full collapse signature reached (loss %.4f ≤ %.2f, std·√d %.4f < %.2f)",
                      loss, config.earlyStop.lossAtMost, s, config.earlyStop.stdSqrtDBelow)
    }

    /// The shared rows with the baseline's backbone, optimizer, batch, views and epochs.
    public static func recipe(_ c: Config, _ context: RunContext) -> ReferenceRecipe {
        ReferenceRecipe(width: c.width, batchSize: c.batchSize, epochs: c.epochs, learningRate: c.learningRate, momentum: c.momentum,
                        weightDecay: c.weightDecay, augmentation: c.augmentation, perClass: c.perClass, context: context)
    }
}
