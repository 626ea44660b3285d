import Datasets
import Engine
import Evaluation
import Foundation
import Harness
import NN
import Representation

/// convnet4 → FC + BN + ReLU → FC → l2 (NAT's head at small scale). `owner` (a buffer, so
/// checkpoints and resume keep it) holds the target index of every training image.
public final class NATNetwork: Module {
    public let backbone: ConvNet4
    public let head: Sequential
    public let owner: Tensor

    public init(width: ConvNet4.Width, inputChannels: Int, hidden: Int, dimension: Int, images: Int, rng: inout RNG) {
        backbone = ConvNet4(width: width, inputChannels: inputChannels, rng: &rng)
        head = Sequential([Linear(backbone.featureCount, hidden, rng: &rng), BatchNorm(hidden), ReLU(), Linear(hidden, dimension, rng: &rng)])
        owner = Tensor.zeros([images])
    }

    public override var bufferNames: Set<String> { ["owner"] }
    public func callAsFunction(_ x: Tensor) -> Tensor { head(backbone(x)).l2Normalized(axis: 1) }
}

/// The targets of NAT: `count` points drawn uniformly on the unit sphere S^(d−1) (normal
/// draws, normalized), or one-hot vectors e_(j mod d) (each used count/d times), [count, d].
public func natTargets(count n: Int, dimension d: Int, oneHot: Bool, rng: RNG) -> [Float] {
    var out = [Float](repeating: 0, count: n * d)
    if oneHot { for j in 0..<n { out[j * d + j % d] = 1 }; return out }
    var g = rng
    for j in 0..<n {
        var s: Float = 0
        for t in 0..<d { let v = g.normal(); out[j * d + t] = v; s += v * v }
        let norm = s.squareRoot()
        for t in 0..<d { out[j * d + t] /= norm }
    }
    return out
}

/// NAT's stochastic batch reassignment: the b targets the batch's images own are permuted
/// among them to maximize Σ_i f_i·c_(σ(i)) (Hungarian algorithm on the cost −f·cᵀ). Returns
/// σ: row i takes the target of row σ(i).
public func reassign(_ f: [Float], targets c: [Float], rows b: Int, dimension d: Int) -> [Int] {
    var cost = [[Double]](repeating: [Double](repeating: 0, count: b), count: b)
    for i in 0..<b { for j in 0..<b {
        var s: Float = 0
        for t in 0..<d { s += f[i * d + t] * c[j * d + t] }
        cost[i][j] = -Double(s)
    } }
    return hungarian(cost).map { $0! }
}

/// Noise As Targets (Bojanowski & Joulin, ICML 2017) at small scale (docs/papers/nat.md).
/// One fixed target per training image, drawn on the unit sphere, owned through a random
/// initial permutation; the loss Σ_i ‖f(x_i) − c_owner(i)‖² over l2-normalized outputs; in
/// every `period`-th epoch (0: never) each batch first permutes its own targets among its
/// images by the Hungarian algorithm.
public final class NATExperiment: RepresentationExperiment {
    public enum Targets: String, Codable { case noise, oneHot = "one_hot" }

    public struct Config: Codable {
        public var width: ConvNet4.Width
        public var epochs: Int
        public var batchSize: Int
        public var learningRate: Float
        public var momentum: Float
        public var weightDecay: Float
        public var hidden: Int
        public var dimension: Int
        /// Reassign in epochs 0, period, 2·period, …; 0: never (the initial random permutation).
        public var period: Int
        public var targets: Targets
        /// The loss over a batch: `sum` (the official code's) or `mean` over its images.
        public var reduction: Reduction
        public var augmentation: ViewRecipe
        public var perClass: Int?
    }

    public static let reassigned = Metric("reassigned_fraction", "fraction of images whose target changed in the last reassignment epoch", unit: "fraction")
    public static let reassignedTrend = Metric("reassigned_change", "reassigned_fraction of the last reassignment epoch minus that of the first", unit: "")
    public static let alignment = Metric("alignment", "mean cosine between an image's output and its target over the last epoch", unit: "−1…1")
    public static let hungarianShare = Metric("hungarian_share", "seconds in the Hungarian reassignment over the arm's training seconds", unit: "fraction")
    public static let imageLoss = Metric("loss", "‖f − c‖² per image, mean over the epoch", unit: "")
    public static let metrics: [Metric] = [imageLoss, alignment, reassigned, reassignedTrend, hungarianShare] + Metric.sharedProtocol

    let config: Config
    let data: ImageData
    let network: NATNetwork
    let targets: [Float]
    let sgd: SGD
    let views: Augmentation
    let run: RNG
    let evaluation: SharedProtocol
    let cache = FeatureCache()

    public init(config c: Config, context: RunContext) throws {
        for (k, v) in [("epochs", c.epochs), ("hidden", c.hidden), ("dimension", c.dimension), ("per_class", c.perClass ?? 1)] {
            try require("config.\(k)", v, atLeast: 1)
        }
        try require("config.batch_size", c.batchSize, atLeast: 2)
        try require("config.period", c.period, atLeast: 0)
        for (k, v) in [("learning_rate", c.learningRate), ("momentum", c.momentum), ("weight_decay", c.weightDecay)] { try require("config.\(k)", v, atLeast: 0) }
        try c.augmentation.validate()
        (config, evaluation) = (c, context.evaluation.sharedProtocol)
        (data, views, run) = try loadViews(context, recipe: c.augmentation, perClass: c.perClass, batchSize: c.batchSize)
        let n = data.train.count
        var initRNG = run.derive("init")   // the backbone first: the random-init reference row is the same network
        network = NATNetwork(width: c.width, inputChannels: data.channels, hidden: c.hidden, dimension: c.dimension, images: n, rng: &initRNG)
        targets = natTargets(count: n, dimension: c.dimension, oneHot: c.targets == .oneHot, rng: run.derive("targets"))
        var g = run.derive("initial-permutation")
        for (i, t) in g.permutation(n).enumerated() { network.owner.pointer[i] = Float(t) }
        sgd = SGD(groups: network.parameterGroups(learningRate: c.learningRate, weightDecay: c.weightDecay), momentum: c.momentum)
    }

    public var epochs: Int { config.epochs }
    public var stepsPerEpoch: Int { data.train.count / config.batchSize }
    public var imagesPerStep: Int { config.batchSize }
    public var model: Module { network }
    public var optimizer: Optimizer { sgd }
    public var checkpointInfo: [String: Any] { data.checkpointInfo(network.backbone) }

    public func trainEpoch(_ epoch: Int, step: (Double) throws -> Void) throws -> [String: Double] {
        let start = Date()
        let (b, d) = (config.batchSize, config.dimension)
        let reassigning = config.period > 0 && epoch % config.period == 0
        network.train()
        let batches = ShuffledSampler(count: data.train.count, batchSize: b, rng: run.derive("order")).batches(epoch: epoch)
        let loader = PrefetchLoader(batches: batches) { s, idx in (viewBatches(self.views, self.data, idx, count: 1, run: self.run, epoch: epoch, step: s)[0], idx) }
        var (lossSum, alignSum, changed, hungarianSeconds) = (0.0, 0.0, 0, 0.0)
        for (x, shard) in loader {
            network.zeroGrad()
            // Over MPI ranks, the global batch's features and images: every rank reassigns
            // the whole batch, as one process does.
            let f = allGather(network(x)), idx = Distributed.allGather(shard)
            var owned = idx.map { Int(network.owner.pointer[$0]) }
            if reassigning {
                let t = Date()
                let mine = owned.flatMap { targets[($0 * d)..<(($0 + 1) * d)] }
                let σ = reassign(f.array, targets: mine, rows: b, dimension: d)
                owned = σ.map { owned[$0] }
                changed += σ.enumerated().filter { $0.offset != $0.element }.count
                for (i, o) in zip(idx, owned) { network.owner.pointer[i] = Float(o) }
                hungarianSeconds += Date().timeIntervalSince(t)
            }
            let c = Tensor(owned.flatMap { targets[($0 * d)..<(($0 + 1) * d)] }, shape: [b, d])
            let loss = meanSquaredError(f, c, reduction: .sum) / Float(config.reduction == .mean ? b : 1)
            loss.backward()
            sgd.step()
            let perImage = Double(loss.item) / Double(config.reduction == .mean ? 1 : b)
            lossSum += perImage
            alignSum += 1 - perImage / 2   // ‖f − c‖² = 2 − 2 f·c for unit vectors
            try step(Double(loss.item))
        }
        let steps = Double(max(batches.count, 1))
        var out: [String: Double] = [Metric.loss.key: lossSum / steps, Self.alignment.key: alignSum / steps, "epoch_seconds": Date().timeIntervalSince(start)]
        if reassigning { (out[Self.reassigned.key], out["hungarian_seconds"]) = (Double(changed) / Double(batches.count * b), hungarianSeconds) }
        return out
    }

    public func evaluate(epoch: Int, final: Bool) throws -> [String: Double] {
        guard final else { return [:] }
        return try evaluation.metrics(train: features(split: "train")!, test: features(split: "test")!, knn: false)   // kNN: the runner's monitor
    }

    public func features(split: String) -> Features? { cache.features(network.backbone, data, split: split, step: sgd.stepCount) }

    public func summary(of history: [[String: Double]]) -> [String: Double] {
        var out = history.last?.filter { $0.key == Metric.loss.key || $0.key == Self.alignment.key } ?? [:]
        let fractions = history.compactMap { $0[Self.reassigned] }
        if let last = fractions.last { out[Self.reassigned] = last }
        if fractions.count >= 2 { out[Self.reassignedTrend] = fractions.last! - fractions.first! }
        let total = history.compactMap { $0["epoch_seconds"] }.reduce(0, +)
        if config.period > 0 && total > 0 { out[Self.hungarianShare] = history.compactMap { $0["hungarian_seconds"] }.reduce(0, +) / total }
        return out
    }

    public static func recipe(_ c: Config, _ context: RunContext) -> ReferenceRecipe {
        ReferenceRecipe(width: c.width, batchSize: c.batchSize, epochs: c.epochs, learningRate: c.learningRate, momentum: c.momentum,
                        weightDecay: c.weightDecay, augmentation: c.augmentation, perClass: c.perClass, context: context)
    }
}
