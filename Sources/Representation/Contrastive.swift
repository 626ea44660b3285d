import Datasets
import Engine
import Evaluation
import Foundation
import Harness
import NN

/// The projection head g of a contrastive network (SimCLR §4.2 compares the three).
public enum ProjectionHead: String, Codable, Sendable { case none, linear, mlp }

/// Backbone f and projection head g: h = f(x), z = g(h). The head is thrown away after
/// training; evaluation uses h. MLP head: Linear(h, hidden, no bias) → BN → ReLU →
/// Linear(hidden, out) (SimCLR's one hidden layer, with BN as in its code and lightly's);
/// linear head: Linear(h, out); none: z = h. Keys: backbone.…, head.…
public final class ContrastiveNetwork: Module {
    public let backbone: ConvNet4
    public let head: Sequential?
    /// The head's output dimension (h's without a head).
    public let outputCount: Int

    public init(width: ConvNet4.Width, inputChannels: Int, head kind: ProjectionHead, hidden: Int, output: Int, rng: inout RNG) {
        backbone = ConvNet4(width: width, inputChannels: inputChannels, rng: &rng)
        let h = backbone.featureCount
        outputCount = kind == .none ? h : output
        switch kind {
        case .none: head = nil
        case .linear: head = Sequential([Linear(h, output, rng: &rng)])
        case .mlp: head = Sequential([Linear(h, hidden, bias: false, rng: &rng), BatchNorm(hidden), ReLU(), Linear(hidden, output, rng: &rng)])
        }
    }

    /// z = g(f(x)).
    public func callAsFunction(_ x: Tensor) -> Tensor { head.map { $0(backbone(x)) } ?? backbone(x) }

    /// z of every image of a set, in order (evaluation mode, no augmentation).
    public func embeddings(_ data: ImageData, split: String) -> Features {
        let set = split == "train" ? data.train : data.test
        eval()
        var values: [Float] = []
        for start in stride(from: 0, to: set.count, by: 1000) {
            let idx = Array(start..<min(start + 1000, set.count))
            values += withoutGradients { self(set.batch(idx, mean: data.mean, std: data.std)) }.array
        }
        return Features(values: values, count: set.count, dimension: outputCount, labels: set.labels)
    }
}

/// The settings SimCLR and SupCon share (snake_case keys in the experiment file).
public protocol ContrastiveConfig {
    var width: ConvNet4.Width { get }
    var epochs: Int { get }
    var batchSize: Int { get }
    /// Augmented views per image (the papers: 2).
    var views: Int { get }
    /// lr = base_learning_rate · batch_size / 256.
    var baseLearningRate: Float { get }
    var warmupEpochs: Int { get }
    var momentum: Float { get }
    var weightDecay: Float { get }
    /// τ of the loss.
    var temperature: Float { get }
    var head: ProjectionHead { get }
    var headHidden: Int { get }
    var headDimension: Int { get }
    var augmentation: ViewRecipe { get }
    /// Effective rank of l2(z) over the last this many batches of each epoch.
    var rankBatches: Int { get }
    /// Images per class kept (smoke profiles); nil keeps everything.
    var perClass: Int? { get }
}

extension ContrastiveConfig {
    public var learningRate: Float { baseLearningRate * Float(batchSize) / 256 }

    /// Range checks naming config.<key>.
    public func validate() throws {
        try require("config.temperature", temperature, above: 0)
        for (k, v) in [("epochs", epochs), ("head_hidden", headHidden), ("head_dimension", headDimension),
                       ("rank_batches", rankBatches), ("per_class", perClass ?? 1)] {
            try require("config.\(k)", v, atLeast: 1)
        }
        try require("config.views", views, atLeast: 2)             // a positive needs a second view
        try require("config.batch_size", batchSize, atLeast: 2)    // negatives need a second image
        try require("config.warmup_epochs", warmupEpochs, atLeast: 0)
        for (k, v) in [("base_learning_rate", baseLearningRate), ("momentum", momentum), ("weight_decay", weightDecay)] {
            try require("config.\(k)", v, atLeast: 0)
        }
        try augmentation.validate()
    }

    /// SGD with momentum over `model`, linear warm-up then cosine (counted from step 0).
    public func sgd(_ model: Module, stepsPerEpoch steps: Int, epochs: Int, warmupEpochs: Int) -> SGD {
        SGD(groups: model.parameterGroups(learningRate: learningRate, weightDecay: weightDecay), momentum: momentum,
            schedule: .warmup(warmupSteps: steps * warmupEpochs, after: .cosine(totalSteps: steps * epochs)))
    }

    /// The reference rows' recipe: this arm's backbone, optimizer, batch, views and epochs.
    public func referenceRecipe(_ context: RunContext) -> ReferenceRecipe {
        ReferenceRecipe(width: width, batchSize: batchSize, epochs: epochs, learningRate: learningRate, momentum: momentum,
                        weightDecay: weightDecay, augmentation: augmentation, perClass: perClass, context: context)
    }
}

/// Where SupCon's average over an anchor's positives sits (Khosla et al. Eq. 2 and 3).
public enum SupConVariant: String, Codable, Sendable { case outside = "out", inside = "in" }

/// The supervised contrastive loss over the V views of a batch (rows of `z`, any order;
/// `labels[v]` the class of view v). With u = z/‖z‖, s_ia = u_i·u_a/τ, A(i) = all views
/// but i, P(i) = {p ∈ A(i): label p = label i}:
///
///     L_out = (1/|I⁺|) Σ_{i∈I⁺} −(1/|P(i)|) Σ_{p∈P(i)} log[ exp(s_ip) / Σ_{a∈A(i)} exp(s_ia) ]
///     L_in  = (1/|I⁺|) Σ_{i∈I⁺} −log[ (1/|P(i)|) Σ_{p∈P(i)} exp(s_ip) / Σ_{a∈A(i)} exp(s_ia) ]
///
/// I⁺ = the anchors with at least one positive: an anchor without one contributes nothing
/// and is counted in `anchorsWithoutPositives` (never a NaN). The paper sums over anchors;
/// we average (a constant factor) like SupContrast's code and pytorch-metric-learning, but
/// over I⁺ where SupContrast divides by all V. Log-sum-exps subtract the row maximum.
public func supervisedContrastiveLoss(_ z: Tensor, labels: [Int], temperature τ: Float,
                                      variant: SupConVariant = .outside) -> (loss: Tensor, anchorsWithoutPositives: Int) {
    let v = z.shape[0]
    precondition(labels.count == v && v >= 2, "supervisedContrastiveLoss: \(labels.count) labels for \(v) views")
    let u = z.l2Normalized(axis: 1)
    let logits = u.matmul(u.transposed()) / τ
    let excluded: Float = -1e9   // exp(−1e9 − max) = 0, and 0 · (−1e9) = 0 where a mask weight is 0
    var selfMask = [Float](repeating: 0, count: v * v), positives = [Float](repeating: 0, count: v * v)
    var counts = [Int](repeating: 0, count: v)
    for i in 0..<v {
        selfMask[i * v + i] = excluded
        for p in 0..<v where p != i && labels[p] == labels[i] { positives[i * v + p] = 1; counts[i] += 1 }
    }
    let anchors = counts.filter { $0 > 0 }.count
    let withPositive = Tensor(counts.map { $0 > 0 ? 1 : 0 }, shape: [v])
    let denominator = (logits + Tensor(selfMask, shape: [v, v])).logsumexp(axis: 1)   // log Σ_{a∈A(i)} exp(s_ia)
    let rows: Tensor
    switch variant {
    case .outside:
        let weights = (0..<(v * v)).map { positives[$0] / Float(max(counts[$0 / v], 1)) }
        rows = denominator * withPositive - (logits * Tensor(weights, shape: [v, v])).sum(axis: 1)
    case .inside:
        let positiveMask = Tensor(positives.map { $0 > 0 ? 0 : excluded }, shape: [v, v])
        let logMean = (logits + positiveMask).logsumexp(axis: 1) - Tensor(counts.map { Float(Foundation.log(Double(max($0, 1)))) }, shape: [v])
        rows = (denominator - logMean) * withPositive
    }
    return (rows.sum() / Float(max(anchors, 1)), v - anchors)
}

/// NT-Xent (SimCLR Eq. 1): z holds view 1 of N images in rows 0..<N and view 2 in rows
/// N..<2N; each view's positive is the other view of its image, its 2N−2 negatives are both
/// views of every other image, and L = (1/2N) Σ_k [ℓ(k, k+N) + ℓ(k+N, k)] with
/// ℓ(i, j) = −log[ exp(s_ij) / Σ_{a≠i} exp(s_ia) ]. SupCon with one positive per anchor.
public func ntXent(_ z: Tensor, temperature τ: Float) -> Tensor {
    let n = z.shape[0] / 2
    precondition(z.shape[0] == 2 * n && n >= 2, "ntXent: expected 2N ≥ 4 rows, got \(z.shape[0])")
    return supervisedContrastiveLoss(z, labels: Array(0..<n) + Array(0..<n), temperature: τ).loss
}

/// Contrastive health per epoch: the loss against the uniform plateau ln(V−1) (every view
/// equally similar: what a collapsed network scores), std·√d and effective rank of l2(z),
/// and mean cosine of positive pairs against that of the other pairs.
public struct ContrastiveMonitor {
    var lossSum = 0.0, stdSum = 0.0, positiveSum = 0.0, negativeSum = 0.0, steps = 0, without = 0
    var rankRows: [Float] = []
    let rankBatches: Int, totalSteps: Int

    public init(rankBatches: Int, steps: Int) { (self.rankBatches, totalSteps) = (rankBatches, steps) }

    public static let plateau = Metric("loss_plateau", "ln(V − 1), the loss when every view is equally similar (V views per batch)", unit: "")
    public static let positiveCosine = Metric("positive_cosine", "mean cosine of l2(z) between views of one positive pair", unit: "−1…1")
    public static let negativeCosine = Metric("negative_cosine", "mean cosine of l2(z) between views that are not positives", unit: "−1…1")
    public static let withoutPositives = Metric("anchors_without_positives", "anchors per epoch with no positive in their batch (they contribute nothing)", unit: "count")
    public static let metrics: [Metric] = [.loss, plateau, .stdSqrtD, .effectiveRank, positiveCosine, negativeCosine]

    /// One step: its loss, the projections z [V, d] and the views' labels (positives share one).
    public mutating func add(loss: Float, z: Tensor, labels: [Int], anchorsWithoutPositives: Int = 0) {
        let (v, d) = (z.shape[0], z.shape[1])
        let f = Features(values: z.array, count: v, dimension: d, labels: labels).l2Normalized()
        let u = Tensor(f.values, shape: [v, d]), cosines = withoutGradients { u.matmul(u.transposed()) }.array
        var pos = 0.0, neg = 0.0, np = 0, nn = 0
        for i in 0..<v {
            for j in (i + 1)..<v {
                if labels[i] == labels[j] { pos += Double(cosines[i * v + j]); np += 1 } else { neg += Double(cosines[i * v + j]); nn += 1 }
            }
        }
        positiveSum += pos / Double(max(np, 1)); negativeSum += neg / Double(max(nn, 1))
        stdSum += normalizedStd(f)
        lossSum += Double(loss); without += anchorsWithoutPositives; steps += 1
        if steps > totalSteps - rankBatches { rankRows += f.values }
        plateauValue = Foundation.log(Double(v - 1))
        dimension = d
    }
    var plateauValue = 0.0, dimension = 1

    /// The epoch's means (sums for the anchor count).
    public var epoch: [String: Double] {
        let n = Double(max(steps, 1))
        let last = Features(values: rankRows, count: rankRows.count / dimension, dimension: dimension, labels: [Int](repeating: 0, count: rankRows.count / dimension))
        return [Metric.loss.key: lossSum / n, Self.plateau.key: plateauValue, Metric.stdSqrtD.key: stdSum / n,
                Metric.effectiveRank.key: effectiveRank(last), Self.positiveCosine.key: positiveSum / n,
                Self.negativeCosine.key: negativeSum / n, Self.withoutPositives.key: Double(without)]
    }
}

/// One epoch of multi-view contrastive training with SGD: the views of each batch go through
/// the network as one batch (one BN batch over all views: SimCLR's global BN on one
/// device; over MPI ranks, Engine's global BN and an all-gather of z before the loss); `loss(z, indices)` returns the loss, the views' labels for the monitor (views
/// of one image, or of one class, share a label) and the anchors without a positive.
public func trainContrastiveEpoch(_ network: ContrastiveNetwork, _ data: ImageData, views recipe: Augmentation, count: Int, run: RNG,
                                  batchSize: Int, epoch: Int, optimizer: Optimizer, rankBatches: Int, step: (Double) throws -> Void,
                                  loss: (Tensor, [Int]) -> (loss: Tensor, labels: [Int], withoutPositives: Int)) rethrows -> [String: Double] {
    network.train()
    let batches = ShuffledSampler(count: data.train.count, batchSize: batchSize, rng: run.derive("order")).batches(epoch: epoch)
    let loader = PrefetchLoader(batches: batches) { s, idx in (Tensor.concat(viewBatches(recipe, data, idx, count: count, run: run, epoch: epoch, step: s), axis: 0), idx) }
    var monitor = ContrastiveMonitor(rankBatches: rankBatches, steps: batches.count)
    for (x, idx) in loader {
        network.zeroGrad()
        // Data-parallel training: every rank's embeddings (view-major, the order of one
        // process) and indices, so the loss is the global batch's with every rank's negatives.
        let z = allGather(network(x), blocks: count)
        let (l, labels, without) = loss(z, Distributed.allGather(idx))
        l.backward()
        optimizer.step()
        monitor.add(loss: l.item, z: z, labels: labels, anchorsWithoutPositives: without)
        try step(Double(l.item))
    }
    return monitor.epoch
}

/// Backbone features of both splits, computed once per optimizer step (the runner's kNN
/// monitor and the final evaluation ask for them at the same step).
public final class FeatureCache {
    var cached: (step: Int, train: Features, test: Features)?
    public init() {}
    public func features(_ backbone: any Backbone, _ data: ImageData, split: String, step: Int) -> Features {
        if cached?.step != step { cached = (step, data.features(backbone, split: "train"), data.features(backbone, split: "test")) }
        return split == "train" ? cached!.train : cached!.test
    }
}
