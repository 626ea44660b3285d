import Datasets
import Engine
import Evaluation
import Foundation
import Harness
import NN
import Representation

/// Prototypical Contrastive Learning (Li, Zhou, Xiong & Hoi, ICLR 2021) at small scale
/// (docs/papers/pcl.md). MoCo v2 underneath: a query view through f_θ, a key view through
/// the momentum encoder f_θ′ (shuffled split BN), InfoNCE against a queue of r past keys.
/// After `warmup_epochs` of InfoNCE alone, every epoch starts with an E-step: momentum
/// features of all training images (no augmentation), k-means for each K, concentrations
/// φ and prototypes; the M-step adds ProtoNCE over all K prototypes, averaged over the K's.
/// `prototypes: false` is MoCo (the instance-only baseline) with the same steps.
public final class PCLExperiment: RepresentationExperiment {
    public enum Concentration: String, Codable { case estimated, fixed }

    public struct Config: Codable {
        public var width: ConvNet4.Width
        public var epochs: Int
        public var batchSize: Int
        /// lr = base_learning_rate · batch_size / 256, cosine to 0, SGD with momentum.
        public var baseLearningRate: Float
        public var momentum: Float
        public var weightDecay: Float
        /// τ of InfoNCE, and the mean of φ.
        public var temperature: Float
        public var headHidden: Int
        public var headDimension: Int
        /// m of θ′ ← mθ′ + (1 − m)θ.
        public var keyMomentum: Float
        /// r: keys in the queue (a multiple of batch_size).
        public var queueSize: Int
        /// Sub-batches with their own BN statistics (the key batch shuffled first).
        public var bnSplits: Int
        /// Epochs of InfoNCE alone before the first E-step.
        public var warmupEpochs: Int
        /// False: MoCo, InfoNCE alone for every epoch (the instance-only baseline).
        public var prototypes: Bool
        /// K of each clustering.
        public var clusters: [Int]
        /// φ from each cluster's spread, or φ ≡ τ for every prototype.
        public var concentration: Concentration
        /// α of φ = Σ‖v′ − μ‖ / (Z·ln(Z + α)).
        public var alpha: Float
        public var kmeansRestarts: Int
        public var kmeansIterations: Int
        public var augmentation: ViewRecipe
        public var rankBatches: Int
        public var perClass: Int?

        var learningRate: Float { baseLearningRate * Float(batchSize) / 256 }
    }

    public static let infoNCELoss = Metric("infonce_loss", "InfoNCE term, mean over the epoch's steps", unit: "")
    public static let protoNCELoss = Metric("protonce_loss", "ProtoNCE term (mean over the K's), mean over the epoch's steps", unit: "")
    public static let plateau = Metric("infonce_plateau", "ln(r + 1), InfoNCE when the positive and the r queued keys are equally similar", unit: "")
    public static let prototypeNMI = Metric("prototype_nmi", "NMI of the last E-step's cluster assignments with the training labels, mean over the K's", unit: "0–1")
    public static let emptyClusters = Metric("empty_clusters", "clusters left empty by the last E-step, summed over the K's", unit: "count")
    public static let phiMin = Metric("phi_min", "smallest concentration φ of the last E-step (mean φ = τ)", unit: "")
    public static let phiMax = Metric("phi_max", "largest concentration φ of the last E-step (mean φ = τ)", unit: "")
    public static let eStepShare = Metric("estep_share", "E-step seconds over the arm's training seconds (E-steps included)", unit: "fraction")
    static let monitored = ContrastiveMonitor.metrics.filter { $0 != ContrastiveMonitor.plateau }
        + [infoNCELoss, protoNCELoss, plateau, prototypeNMI, emptyClusters, phiMin, phiMax]
    public static let metrics: [Metric] = monitored + [eStepShare] + Metric.sharedProtocol

    let config: Config
    let data: ImageData
    let network: MoCoNetwork
    let sgd: SGD
    let views: Augmentation
    let run: RNG
    let evaluation: SharedProtocol
    let cache = FeatureCache()

    public init(config c: Config, context: RunContext) throws {
        for (k, v) in [("epochs", c.epochs), ("head_hidden", c.headHidden), ("head_dimension", c.headDimension), ("bn_splits", c.bnSplits),
                       ("kmeans_restarts", c.kmeansRestarts), ("kmeans_iterations", c.kmeansIterations), ("rank_batches", c.rankBatches),
                       ("per_class", c.perClass ?? 1)] {
            try require("config.\(k)", v, atLeast: 1)
        }
        try require("config.batch_size", c.batchSize, atLeast: 2)
        try require("config.warmup_epochs", c.warmupEpochs, atLeast: 0)
        try require("config.temperature", c.temperature, above: 0)
        try require("config.alpha", c.alpha, above: 0)
        try require("config.key_momentum", c.keyMomentum, in: 0...1)
        for (k, v) in [("base_learning_rate", c.baseLearningRate), ("momentum", c.momentum), ("weight_decay", c.weightDecay)] {
            try require("config.\(k)", v, atLeast: 0)
        }
        try require("config.queue_size", c.queueSize >= c.batchSize && c.queueSize % c.batchSize == 0,
                    "a multiple of batch_size \(c.batchSize), got \(c.queueSize)")
        try require("config.bn_splits", c.batchSize % c.bnSplits == 0, "a divisor of batch_size \(c.batchSize), got \(c.bnSplits)")
        try c.augmentation.validate()
        (config, evaluation) = (c, context.evaluation.sharedProtocol)
        (data, views, run) = try loadViews(context, recipe: c.augmentation, perClass: c.perClass, batchSize: c.batchSize)
        let n = data.train.count
        try require("config.clusters", !c.clusters.isEmpty && c.clusters.allSatisfy { $0 >= 2 && $0 <= n }, "one or more K, each in 2…\(n) (the training images), got \(c.clusters)")
        var initRNG = run.derive("init")   // the backbone first: the random-init reference row is the same network
        network = MoCoNetwork(width: c.width, inputChannels: data.channels, hidden: c.headHidden, output: c.headDimension, queueSize: c.queueSize, rng: &initRNG)
        sgd = SGD(groups: network.query.parameterGroups(learningRate: c.learningRate, weightDecay: c.weightDecay), momentum: c.momentum,
                  schedule: .cosine(totalSteps: data.train.count / c.batchSize * c.epochs))
    }

    public var epochs: Int { config.epochs }
    public var stepsPerEpoch: Int { data.train.count / config.batchSize }
    public var imagesPerStep: Int { 2 * config.batchSize }   // a query view and a key view
    public var model: Module { network }
    public var optimizer: Optimizer { sgd }
    public var checkpointInfo: [String: Any] { data.checkpointInfo(network.query.backbone) }

    /// The E-step: one clustering per K of the momentum encoder's l2-normalized z of every
    /// training image (evaluation mode, no augmentation), with its monitors.
    func eStep(epoch: Int) throws -> (prototypes: [Prototypes], monitors: [String: Double]) {
        let z = data.features(network.momentum, split: "train").l2Normalized()
        var out: [Prototypes] = [], m: [String: Double] = [:]
        for (i, k) in config.clusters.enumerated() {
            let p = try estimatePrototypes(z, clusters: k, restarts: config.kmeansRestarts, iterations: config.kmeansIterations, alpha: Double(config.alpha),
                                           temperature: config.temperature, estimated: config.concentration == .estimated,
                                           rng: run.derive("kmeans").derive(UInt64(epoch)).derive(UInt64(i)))
            out.append(p)
            m["prototype_nmi_k\(k)"] = normalizedMutualInformation(data.train.labels, p.assignments)
            m["empty_clusters_k\(k)"] = Double(p.empty)
        }
        let φ = out.flatMap(\.concentration)
        m[Self.prototypeNMI] = config.clusters.map { m["prototype_nmi_k\($0)"]! }.reduce(0, +) / Double(out.count)
        m[Self.emptyClusters] = Double(out.map(\.empty).reduce(0, +))
        (m[Self.phiMin], m[Self.phiMax]) = (Double(φ.min()!), Double(φ.max()!))
        return (out, m)
    }

    public func trainEpoch(_ epoch: Int, step: (Double) throws -> Void) throws -> [String: Double] {
        let start = Date()
        let (prototypes, eMonitors) = !config.prototypes || epoch < config.warmupEpochs ? ([], [:]) : try eStep(epoch: epoch)
        let eSeconds = Date().timeIntervalSince(start)
        network.train()
        let (b, splits, τ) = (config.batchSize, config.bnSplits, config.temperature)
        let batches = ShuffledSampler(count: data.train.count, batchSize: b, rng: run.derive("order")).batches(epoch: epoch)
        let loader = PrefetchLoader(batches: batches) { s, idx in (viewBatches(self.views, self.data, idx, count: 2, run: self.run, epoch: epoch, step: s), s, idx) }
        var monitor = ContrastiveMonitor(rankBatches: config.rankBatches, steps: batches.count)
        var (instanceSum, prototypeSum) = (0.0, 0.0)
        // Over MPI ranks each rank encodes its shard with its share of the BN sub-batches
        // (split BN stands in for per-GPU BN) and the loss, queue and prototypes see the
        // global batch (all-gathered q, k and indices).
        let rankSplits = Distributed.isDataParallel ? max(1, splits / Distributed.size) : splits
        for (x, s, shard) in loader {
            network.updateMomentumEncoder(config.keyMomentum)
            var shuffle = run.derive("shuffle-bn").derive(UInt64(epoch)).derive(UInt64(s))
            let k = allGather(Distributed.alone { network.keys(x[1], splits: rankSplits, permutation: shuffle.permutation(shard.count)) })
            network.zeroGrad()
            let q = allGather(Distributed.alone { splitForward(network.query, x[0], splits: rankSplits) }.l2Normalized(axis: 1))
            let idx = Distributed.allGather(shard)
            let instance = infoNCE(q, keys: k, queue: network.queue, temperature: τ)
            var loss = instance
            if !prototypes.isEmpty {
                let proto = prototypes.map { p in protoNCE(q, p, clusters: idx.map { p.assignments[$0] }) }.reduce(Tensor.zeros([]), +) / Float(prototypes.count)
                prototypeSum += Double(proto.item)
                loss = loss + proto
            }
            loss.backward()
            sgd.step()
            network.enqueue(k)
            instanceSum += Double(instance.item)
            monitor.add(loss: loss.item, z: Tensor.concat([q.detached(), k], axis: 0), labels: idx + idx)
            try step(Double(loss.item))
        }
        var out = monitor.epoch.filter { key, _ in Self.monitored.contains { $0.key == key } }.merging(eMonitors) { a, _ in a }
        out[Self.infoNCELoss] = instanceSum / Double(batches.count)
        out[Self.protoNCELoss] = prototypeSum / Double(batches.count)
        out[Self.plateau] = Foundation.log(Double(config.queueSize + 1))
        if !prototypes.isEmpty { out["estep_seconds"] = eSeconds }
        out["epoch_seconds"] = Date().timeIntervalSince(start)
        return out
    }

    public func evaluate(epoch: Int, final: Bool) throws -> [String: Double] {
        guard final else { return [:] }
        return try evaluation.metrics(train: features(split: "train")!, test: features(split: "test")!, knn: false)   // kNN: the runner's monitor
    }

    public func features(split: String) -> Features? { cache.features(network.query.backbone, data, split: split, step: sgd.stepCount) }

    /// The last epoch's monitors (the last E-step's for the prototype ones) and the E-step's
    /// share of the training time.
    public func summary(of history: [[String: Double]]) -> [String: Double] {
        var out = history.last?.filter { key, _ in Self.monitored.contains { $0.key == key } } ?? [:]
        for key in [Self.prototypeNMI, Self.emptyClusters, Self.phiMin, Self.phiMax] {
            if let last = history.last(where: { $0[key] != nil })?[key] { out[key] = last }
        }
        let total = history.compactMap { $0["epoch_seconds"] }.reduce(0, +)
        if config.prototypes && total > 0 { out[Self.eStepShare] = history.compactMap { $0["estep_seconds"] }.reduce(0, +) / total }
        return out
    }

    public static func recipe(_ c: Config, _ context: RunContext) -> ReferenceRecipe {
        ReferenceRecipe(width: c.width, batchSize: c.batchSize, epochs: c.epochs, learningRate: c.learningRate, momentum: c.momentum,
                        weightDecay: c.weightDecay, augmentation: c.augmentation, perClass: c.perClass, context: context)
    }
}
