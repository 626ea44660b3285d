import Baselines
import Datasets
import Engine
import Evaluation
import Foundation
import Harness
import NN

/// SimSiam (Chen & He, CVPR 2021) at small scale (ssl-methods.md §8.2): convnet4, two
/// views, the symmetric negative-cosine loss with stop-gradient, SGD with lr = base·B/256,
/// cosine for backbone and projector, the predictor's rate held constant. Arms switch the
/// stop-gradient and the predictor (trained, frozen at its random init, removed).
public final class SimSiamExperiment: Experiment {
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
        public var linearProbeEpochs: Int
        public var kmeansRestarts: Int
        /// Clean batches that re-estimate the random-init control's BN statistics.
        public var bnStatisticsBatches: Int
        /// Train the supervised reference row (same backbone, augmentation and steps).
        public var supervisedReference: Bool
        /// Images per class kept (smoke profiles); nil keeps everything.
        public var perClass: Int?

        public struct EarlyStop: Codable { public var lossAtMost: Double; public var stdSqrtDBelow: Double }

        var runEpochs: Int { failureArm ? failureArmEpochs : epochs }
        var learningRate: Float { baseLearningRate * Float(batchSize) / 256 }
    }

    let config: Config
    let train: ImageSet, test: ImageSet
    let mean: Float, std: Float
    let network: SimSiamNetwork
    let sgd: SGD
    let views: Augmentation
    let run: RNG
    let evaluation: SharedProtocol
    var cache: (step: Int, train: Features, test: Features)?

    public init(config: Config, context: RunContext) throws {
        try Self.validate(config)
        self.config = config
        (train, test) = try Self.load(context.dataset, perClass: config.perClass)
        guard train.count >= config.batchSize else {
            throw RunError("\(context.dataset): \(train.count) training images, fewer than one batch of \(config.batchSize)")
        }
        (mean, std) = pixelStatistics(train)
        views = try config.augmentation.augmentation(size: train.height, mean: mean, std: std)
        run = RNG(seed: context.seed)
        var initRNG = run.derive("init")
        network = SimSiamNetwork(width: config.width, inputChannels: train.channels, dimension: config.dimension,
                                 predictorHidden: config.predictorHidden, withPredictor: config.predictor != .none, rng: &initRNG)
        if config.predictor == .frozen { network.freeze(["predictor"]) }
        let lr = config.learningRate, wd = config.weightDecay
        var groups = network.backbone.parameterGroups(learningRate: lr, weightDecay: wd, prefix: "backbone.")
            + network.projector.parameterGroups(learningRate: lr, weightDecay: wd, prefix: "projector.")
        if let p = network.predictor, config.predictor == .trained {
            groups += p.parameterGroups(learningRate: lr, weightDecay: wd, prefix: "predictor.")
                .map { var g = $0; g.fixedLearningRate = config.fixPredictorLearningRate; return g }
        }
        let steps = train.count / config.batchSize
        sgd = SGD(groups: groups, momentum: config.momentum, schedule: .cosine(totalSteps: steps * config.runEpochs))
        evaluation = Self.protocolSettings(config, context)
    }

    static func validate(_ c: Config) throws {
        for (k, v) in [("epochs", c.epochs), ("failure_arm_epochs", c.failureArmEpochs), ("batch_size", c.batchSize), ("dimension", c.dimension),
                       ("predictor_hidden", c.predictorHidden), ("rank_batches", c.rankBatches), ("linear_probe_epochs", c.linearProbeEpochs),
                       ("kmeans_restarts", c.kmeansRestarts), ("bn_statistics_batches", c.bnStatisticsBatches)] where v < 1 {
            throw RunError("config.\(k): expected an integer ≥ 1, got \(v)")
        }
        if c.batchSize < 2 { throw RunError("config.batch_size: BatchNorm needs at least 2 images per batch, got \(c.batchSize)") }
        for (k, v) in [("base_learning_rate", c.baseLearningRate), ("momentum", c.momentum), ("weight_decay", c.weightDecay)] where !(v >= 0 && v.isFinite) {
            throw RunError("config.\(k): expected a finite value ≥ 0, got \(v)")
        }
        if let n = c.perClass, n < 1 { throw RunError("config.per_class: expected ≥ 1 or null, got \(n)") }
        _ = try c.augmentation.augmentation(size: 1, mean: 0, std: 1)   // its ranges
    }

    static func load(_ path: String, perClass: Int?) throws -> (ImageSet, ImageSet) {
        var tr = try DatasetFile.read(path, split: "train").set, te = try DatasetFile.read(path, split: "test").set
        if let n = perClass { tr = tr.perClassSubset(n); te = te.perClassSubset(n) }
        return (tr, te)
    }

    static func protocolSettings(_ c: Config, _ context: RunContext) -> SharedProtocol {
        var p = SharedProtocol()
        if let m = context.knn { (p.k, p.temperature) = (m.k, m.temperature) }
        p.linear.epochs = c.linearProbeEpochs
        p.kmeansRestarts = c.kmeansRestarts
        return p
    }

    public var epochs: Int { config.runEpochs }
    public var stepsPerEpoch: Int { train.count / config.batchSize }
    public var model: Module { network }
    public var optimizer: Optimizer { sgd }
    public var checkpointInfo: [String: Any] {
        ["backbone": ["name": "convnet4", "width": config.width.rawValue, "input_channels": train.channels],
         "normalize": ["mean": Double(mean), "std": Double(std)]]
    }

    /// Two augmented views of a batch; the draws depend only on (epoch, step).
    func viewBatch(epoch: Int, step: Int, _ indices: [Int]) -> [Tensor] {
        views.viewBatches(train, indices, count: 2, rng: run.derive("augment").derive(UInt64(epoch)).derive(UInt64(step)))
    }

    public func trainEpoch(_ epoch: Int, step: (Double) throws -> Void) throws -> [String: Double] {
        network.train()
        let batches = ShuffledSampler(count: train.count, batchSize: config.batchSize, rng: run.derive("order")).batches(epoch: epoch)
        let loader = PrefetchLoader(batches: batches) { [self] s, idx in viewBatch(epoch: epoch, step: s, idx) }
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
        return ["loss": lossSum / n, "std_sqrt_d": stdSum / n,
                "effective_rank": effectiveRank(Features(values: rankRows, count: rankRows.count / d, dimension: d,
                                                         labels: [Int](repeating: 0, count: rankRows.count / d)))]
    }

    public func evaluate(epoch: Int, final: Bool) throws -> [String: Double] {
        guard final else { return [:] }
        let (tr, te) = features()
        return try evaluation.metrics(train: tr, test: te, knn: false)   // kNN: the runner's monitor
    }

    /// Backbone features of both splits at the current step (computed once per step).
    func features() -> (Features, Features) {
        if let c = cache, c.step == sgd.stepCount { return (c.train, c.test) }
        let tr = backboneFeatures(network.backbone, train, mean: mean, std: std), te = backboneFeatures(network.backbone, test, mean: mean, std: std)
        cache = (sgd.stepCount, tr, te)
        return (tr, te)
    }

    public func features(split: String) throws -> Features? { split == "train" ? features().0 : features().1 }

    public func summary(of history: [[String: Double]]) -> [String: Double] {
        guard let last = history.last else { return [:] }
        var out: [String: Double] = [:]
        for k in ["loss", "std_sqrt_d", "effective_rank"] { out[k] = last[k] }
        out["std_sqrt_d_min"] = history.compactMap { $0["std_sqrt_d"] }.min()
        if history.count >= 2, let a = history[history.count - 2]["std_sqrt_d"], let b = last["std_sqrt_d"] { out["std_sqrt_d_trend"] = b - a }
        return out
    }

    public func earlyStop(history: [[String: Double]]) -> String? {
        guard config.failureArm, let last = history.last, let loss = last["loss"], let s = last["std_sqrt_d"],
              loss <= config.earlyStop.lossAtMost, s < config.earlyStop.stdSqrtDBelow else { return nil }
        return String(format: "full collapse signature reached (loss %.4f ≤ %.2f, std·√d %.4f < %.2f)",
                      loss, config.earlyStop.lossAtMost, s, config.earlyStop.stdSqrtDBelow)
    }

    /// Raw pixels, the random-init network (same initial weights, BN statistics re-estimated
    /// over clean batches) and supervised cross-entropy with the same backbone, augmentation
    /// and steps, all under the shared protocol; also writes augmented-pairs.png.
    public static func references(config: Config, context: RunContext) throws -> [(name: String, metrics: [String: Double])] {
        let (train, test) = try load(context.dataset, perClass: config.perClass)
        let (mean, std) = pixelStatistics(train)
        let evaluation = protocolSettings(config, context)
        let run = RNG(seed: context.seed)
        try writePairs(train, config: config, mean: mean, std: std, run: run, to: context.output + "/augmented-pairs.png")
        var out: [(name: String, metrics: [String: Double])] = []

        context.log("reference: raw pixels")
        func pixels(_ s: ImageSet) -> Features {
            Features(values: s.pixels.map { Float($0) / 255 }, count: s.count, dimension: s.imageSize, labels: s.labels)
        }
        out.append(("raw pixels", try evaluation.metrics(train: pixels(train), test: pixels(test))))

        context.log("reference: random init (BN statistics over \(config.bnStatisticsBatches) clean batches)")
        var initRNG = run.derive("init")   // the arms' initial backbone
        let random = SimSiamNetwork(width: config.width, inputChannels: train.channels, dimension: config.dimension,
                                    predictorHidden: config.predictorHidden, withPredictor: false, rng: &initRNG).backbone
        let clean = ShuffledSampler(count: train.count, batchSize: config.batchSize, rng: run.derive("bn-statistics")).batches(epoch: 0)
            .prefix(config.bnStatisticsBatches).map { train.batch($0, mean: mean, std: std) }
        random.recomputeBatchNormStatistics(clean) { random($0) }
        out.append(("random init", try evaluation.metrics(train: backboneFeatures(random, train, mean: mean, std: std),
                                                          test: backboneFeatures(random, test, mean: mean, std: std))))

        if config.supervisedReference {
            context.log("reference: supervised cross-entropy, \(config.epochs) epochs")
            let classifier = try supervised(train, config: config, mean: mean, std: std, run: run, log: context.log)
            var m = try evaluation.metrics(train: backboneFeatures(classifier.backbone, train, mean: mean, std: std),
                                           test: backboneFeatures(classifier.backbone, test, mean: mean, std: std))
            m["test_top1"] = accuracy(classifier, test, mean: mean, std: std)
            out.append(("supervised", m))
        }
        return out
    }

    /// Cross-entropy on one augmented view per image: the baseline's backbone, optimizer,
    /// learning rate, batch size and number of steps.
    static func supervised(_ train: ImageSet, config: Config, mean: Float, std: Float, run: RNG, log: (String) -> Void) throws -> Classifier {
        var initRNG = run.derive("supervised-init")
        let classifier = Classifier(width: config.width, inputChannels: train.channels, classes: (train.labels.max() ?? 0) + 1, rng: &initRNG)
        let steps = train.count / config.batchSize
        let sgd = SGD(groups: classifier.parameterGroups(learningRate: config.learningRate, weightDecay: config.weightDecay),
                      momentum: config.momentum, schedule: .cosine(totalSteps: steps * config.epochs))
        let views = try config.augmentation.augmentation(size: train.height, mean: mean, std: std)
        classifier.train()
        for epoch in 0..<config.epochs {
            let batches = ShuffledSampler(count: train.count, batchSize: config.batchSize, rng: run.derive("supervised-order")).batches(epoch: epoch)
            let loader = PrefetchLoader(batches: batches) { s, idx in
                (views.viewBatches(train, idx, count: 1, rng: run.derive("supervised-augment").derive(UInt64(epoch)).derive(UInt64(s)))[0], idx)
            }
            var total = 0.0
            for (x, idx) in loader {
                classifier.zeroGrad()
                let loss = crossEntropy(classifier(x), labels: idx.map { train.labels[$0] })
                loss.backward()
                sgd.step()
                guard loss.item.isFinite else { throw RunError("supervised reference, epoch \(epoch + 1): the loss is \(loss.item); stopped") }
                total += Double(loss.item)
            }
            log(String(format: "supervised epoch %d/%d  loss %.4f", epoch + 1, config.epochs, total / Double(max(batches.count, 1))))
        }
        classifier.eval()
        return classifier
    }

    /// Eight rows of (image, view 1, view 2) × 2: the pairs the first training batch sees.
    static func writePairs(_ train: ImageSet, config: Config, mean: Float, std: Float, run: RNG, to path: String) throws {
        let views = try config.augmentation.augmentation(size: train.height, mean: mean, std: std)
        let idx = Array(ShuffledSampler(count: train.count, batchSize: config.batchSize, rng: run.derive("order")).batches(epoch: 0)[0].prefix(16))
        let pair = views.viewBatches(train, idx, count: 2, rng: run.derive("augment").derive(0).derive(0))
        let (c, h, w) = (train.channels, train.height, train.width)
        func hwc(_ chw: UnsafePointer<Float>, denormalize: Bool) -> [UInt8] {
            var cell = [UInt8](repeating: 0, count: h * w * c)
            for ch in 0..<c { for p in 0..<(h * w) {
                let v = denormalize ? chw[ch * h * w + p] * std + mean : chw[ch * h * w + p]
                cell[p * c + ch] = UInt8((Swift.min(Swift.max(v, 0), 1) * 255).rounded())
            } }
            return cell
        }
        var cells: [[UInt8]] = []
        for (b, i) in idx.enumerated() {
            cells.append(Image(train, i).data.withUnsafeBufferPointer { hwc($0.baseAddress!, denormalize: false) })
            for v in pair { cells.append(hwc(v.pointer + b * train.imageSize, denormalize: true)) }
        }
        try writePNGGrid(cells, rows: (idx.count + 1) / 2, columns: 6, height: h, width: w, channels: c, scale: 3, to: path)
    }
}
