import Datasets
import Engine
import Evaluation
import Foundation
import Harness
import NN
import Representation

/// convnet4 → FC (the clustering features: its pre-ReLU output) → ReLU → top FC to the k
/// pseudo-classes. `previous_assignments` (a buffer, so resume keeps it) holds each training
/// image's cluster of the last epoch, −1 before the first.
public final class DeepClusterNetwork: Module {
    public let backbone: ConvNet4
    public let fc: Linear
    public let top: Linear
    public let previousAssignments: Tensor

    public init(width: ConvNet4.Width, inputChannels: Int, hidden: Int, clusters: Int, images: Int, rng: inout RNG) {
        backbone = ConvNet4(width: width, inputChannels: inputChannels, rng: &rng)
        fc = Linear(backbone.featureCount, hidden, rng: &rng)
        top = Linear(hidden, clusters, rng: &rng)
        previousAssignments = Tensor.full([images], -1)
    }

    public override var bufferNames: Set<String> { ["previous_assignments"] }
    public func callAsFunction(_ x: Tensor) -> Tensor { top(fc(backbone(x)).relu()) }
}

/// DeepCluster v1 (Caron, Bojanowski, Joulin & Douze, ECCV 2018) at small scale
/// (docs/papers/deepcluster.md). Each epoch: the pre-ReLU FC features of the un-augmented
/// training set in evaluation mode → PCA-whitening → l2 → k-means (a new seed each epoch,
/// empty clusters split as faiss does) → pseudo-labels; then one pass of cross-entropy over
/// images drawn uniformly over the non-empty clusters, through a top layer re-initialized
/// N(0, 0.01) with its own momentum-free SGD (the body's SGD keeps its momentum).
public final class DeepClusterExperiment: RepresentationExperiment {
    public struct Config: Codable {
        public var width: ConvNet4.Width
        public var epochs: Int
        public var batchSize: Int
        public var learningRate: Float
        public var momentum: Float
        public var weightDecay: Float
        /// Width of the FC layer whose pre-ReLU output is clustered.
        public var hidden: Int
        public var clusters: Int
        public var pcaDimension: Int
        public var kmeansIterations: Int
        /// Images drawn uniformly over the non-empty clusters (false: a plain shuffle).
        public var uniformSampling: Bool
        public var augmentation: ViewRecipe
        public var perClass: Int?
    }

    public static let nmiLabels = Metric("nmi_labels", "NMI of the epoch's cluster assignment of the training images with their labels", unit: "0–1")
    public static let nmiPrevious = Metric("nmi_previous", "NMI of the epoch's assignment with the previous epoch's", unit: "0–1")
    public static let nmiGain = Metric("nmi_labels_gain", "nmi_labels of the last epoch minus that of the first (the random network's features)", unit: "")
    public static let nmiRises = Metric("nmi_labels_rises", "fraction of epoch-to-epoch changes of nmi_labels that are increases", unit: "fraction")
    public static let previousRise = Metric("nmi_previous_rise", "nmi_previous of the last epoch minus that of the second (the first it exists)", unit: "")
    public static let flattening = Metric("nmi_previous_flattening", "mean epoch-to-epoch change of nmi_previous over the first half of its curve minus over the second half", unit: "")
    public static let emptyClusters = Metric("empty_clusters", "clusters left empty by the last epoch's final assignment", unit: "count")
    public static let largestCluster = Metric("largest_cluster", "fraction of the training images in the largest cluster of the last epoch", unit: "fraction")
    public static let clusteringShare = Metric("clustering_share", "seconds of the feature pass, PCA and k-means over the arm's training seconds", unit: "fraction")
    static let monitored: [Metric] = [.loss, nmiLabels, nmiPrevious, emptyClusters, largestCluster]
    public static let metrics: [Metric] = monitored + [nmiGain, nmiRises, previousRise, flattening, clusteringShare] + Metric.sharedProtocol

    let config: Config
    let data: ImageData
    let network: DeepClusterNetwork
    let sgd: SGD
    let views: Augmentation
    let run: RNG
    let evaluation: SharedProtocol
    let cache = FeatureCache()

    public init(config c: Config, context: RunContext) throws {
        for (k, v) in [("epochs", c.epochs), ("hidden", c.hidden), ("pca_dimension", c.pcaDimension), ("kmeans_iterations", c.kmeansIterations),
                       ("per_class", c.perClass ?? 1)] {
            try require("config.\(k)", v, atLeast: 1)
        }
        try require("config.batch_size", c.batchSize, atLeast: 1)
        try require("config.clusters", c.clusters, atLeast: 2)
        try require("config.pca_dimension", c.pcaDimension <= c.hidden, "at most hidden (\(c.hidden)), got \(c.pcaDimension)")
        for (k, v) in [("learning_rate", c.learningRate), ("momentum", c.momentum), ("weight_decay", c.weightDecay)] { try require("config.\(k)", v, atLeast: 0) }
        try c.augmentation.validate()
        (config, evaluation) = (c, context.evaluation.sharedProtocol)
        (data, views, run) = try loadViews(context, recipe: c.augmentation, perClass: c.perClass, batchSize: c.batchSize)
        let n = data.train.count
        try require("config.clusters", c.clusters <= n, "at most the \(n) training images, got \(c.clusters)")
        var initRNG = run.derive("init")   // the backbone first: the random-init reference row is the same network
        network = DeepClusterNetwork(width: c.width, inputChannels: data.channels, hidden: c.hidden, clusters: c.clusters, images: n, rng: &initRNG)
        sgd = SGD(groups: network.backbone.parameterGroups(learningRate: c.learningRate, weightDecay: c.weightDecay, prefix: "backbone.")
                          + network.fc.parameterGroups(learningRate: c.learningRate, weightDecay: c.weightDecay, prefix: "fc."),
                  momentum: c.momentum)
    }

    public var epochs: Int { config.epochs }
    public var stepsPerEpoch: Int { data.train.count / config.batchSize }
    public var imagesPerStep: Int { config.batchSize }
    public var model: Module { network }
    public var optimizer: Optimizer { sgd }
    public var checkpointInfo: [String: Any] { data.checkpointInfo(network.backbone) }

    /// Pseudo-labels for this epoch: PCA-whitened, l2-normalized pre-ReLU FC features of every
    /// training image (evaluation mode, no augmentation), clustered.
    func cluster(epoch: Int) -> (assignments: [Int], monitors: [String: Double]) {
        let (train, n, d) = (data.train, data.train.count, config.hidden)
        network.eval()
        var x: [Float] = []
        x.reserveCapacity(n * d)
        for start in stride(from: 0, to: n, by: 1000) {
            let batch = train.batch(Array(start..<min(start + 1000, n)), mean: data.mean, std: data.std)
            x += withoutGradients { network.fc(network.backbone(batch)) }.array
        }
        let pca = PCA(x, count: n, dimension: d, components: config.pcaDimension, whiten: true, eps: 1e-5)
        let z = Features(values: pca.transform(x, count: n), count: n, dimension: config.pcaDimension, labels: train.labels).l2Normalized()
        let k = config.clusters
        let result = deepClusterKMeans(z.values, count: n, dimension: z.dimension, k: k, iterations: config.kmeansIterations,
                                       rng: run.derive("kmeans").derive(UInt64(epoch)))
        var sizes = [Int](repeating: 0, count: k)
        for a in result.assignments { sizes[a] += 1 }
        var m: [String: Double] = [Self.nmiLabels.key: normalizedMutualInformation(train.labels, result.assignments),
                                   Self.emptyClusters.key: Double(sizes.filter { $0 == 0 }.count),
                                   Self.largestCluster.key: Double(sizes.max()!) / Double(n), "splits": Double(result.splits)]
        let previous = network.previousAssignments.array.map { Int($0) }
        if previous[0] >= 0 { m[Self.nmiPrevious] = normalizedMutualInformation(previous, result.assignments) }
        for (i, a) in result.assignments.enumerated() { network.previousAssignments.pointer[i] = Float(a) }
        return (result.assignments, m)
    }

    public func trainEpoch(_ epoch: Int, step: (Double) throws -> Void) throws -> [String: Double] {
        let start = Date()
        let (labels, monitors) = cluster(epoch: epoch)
        let clusterSeconds = Date().timeIntervalSince(start)
        let (n, b) = (data.train.count, config.batchSize)
        let drawn = config.uniformSampling ? uniformOverClusters(labels, clusters: config.clusters, count: n, rng: run.derive("sampler").derive(UInt64(epoch)))
                                           : ShuffledSampler(count: n, batchSize: n, rng: run.derive("sampler")).batches(epoch: epoch)[0]
        let batches = stride(from: 0, to: n / b * b, by: b).map { Array(drawn[$0..<($0 + b)]) }
        // Cluster ids are arbitrary from one epoch to the next: a fresh top layer, N(0, 0.01), bias 0.
        var g = run.derive("top").derive(UInt64(epoch))
        network.top.weight.assign(Tensor.randn(network.top.weight.shape, std: 0.01, rng: &g))
        network.top.bias!.assign(Tensor.zeros(network.top.bias!.shape))
        let topSGD = SGD(groups: network.top.parameterGroups(learningRate: config.learningRate, weightDecay: config.weightDecay))
        network.train()
        let loader = PrefetchLoader(batches: batches) { s, idx in (viewBatches(self.views, self.data, idx, count: 1, run: self.run, epoch: epoch, step: s)[0], idx) }
        var total = 0.0
        for (x, idx) in loader {
            network.zeroGrad()
            let loss = crossEntropy(network(x), labels: idx.map { labels[$0] })
            loss.backward()
            sgd.step()
            topSGD.step()
            total += Double(loss.item)
            try step(Double(loss.item))
        }
        var out = monitors
        out[Metric.loss] = total / Double(max(batches.count, 1))
        (out["cluster_seconds"], out["epoch_seconds"]) = (clusterSeconds, Date().timeIntervalSince(start))
        return out
    }

    public func evaluate(epoch: Int, final: Bool) throws -> [String: Double] {
        guard final else { return [:] }
        return try evaluation.metrics(train: features(split: "train")!, test: features(split: "test")!, knn: false)   // kNN: the runner's monitor
    }

    public func features(split: String) -> Features? { cache.features(network.backbone, data, split: split, step: sgd.stepCount) }

    /// The last epoch's monitors and the statistics of the NMI curves the claims test.
    public func summary(of history: [[String: Double]]) -> [String: Double] {
        var out = history.last?.filter { key, _ in Self.monitored.contains { $0.key == key } } ?? [:]
        let labels = history.compactMap { $0[Self.nmiLabels] }, previous = history.compactMap { $0[Self.nmiPrevious] }
        if labels.count >= 2 {
            out[Self.nmiGain] = labels.last! - labels.first!
            out[Self.nmiRises] = Double(zip(labels, labels.dropFirst()).filter { $1 > $0 }.count) / Double(labels.count - 1)
        }
        if previous.count >= 2 { out[Self.previousRise] = previous.last! - previous.first! }
        if previous.count >= 3 {
            let changes = zip(previous, previous.dropFirst()).map { $1 - $0 }, half = changes.count / 2
            let mean = { (s: ArraySlice<Double>) in s.reduce(0, +) / Double(max(s.count, 1)) }
            out[Self.flattening] = mean(changes.prefix(max(half, 1))) - mean(changes.suffix(max(half, 1)))
        }
        let total = history.compactMap { $0["epoch_seconds"] }.reduce(0, +)
        if total > 0 { out[Self.clusteringShare] = history.compactMap { $0["cluster_seconds"] }.reduce(0, +) / total }
        return out
    }

    public static func recipe(_ c: Config, _ context: RunContext) -> ReferenceRecipe {
        ReferenceRecipe(width: c.width, batchSize: c.batchSize, epochs: c.epochs, learningRate: c.learningRate, momentum: c.momentum,
                        weightDecay: c.weightDecay, augmentation: c.augmentation, perClass: c.perClass, context: context)
    }
}
