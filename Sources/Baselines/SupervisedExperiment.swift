import Datasets
import Engine
import Evaluation
import Foundation
import Harness
import NN
import Representation

/// Training settings of the supervised cross-entropy experiment (convnet4 on labels).
public struct SupervisedConfig: Codable, Equatable, Sendable {
    public var width: ConvNet4.Width = .standard
    public var epochs = 10
    public var batchSize = 128
    public var learningRate: Float = 0.05
    public var momentum: Float = 0.9
    public var weightDecay: Float = 5e-4
    /// Random horizontal flip and a shift of up to this many pixels (zero fill).
    public var flip = true
    public var maxShift = 2
    public init() {}
}

/// The supervised cross-entropy reference as a Harness experiment: convnet4 trained on
/// labels, reported with the shared protocol (the Harness's kNN monitor on h, and the
/// head's test top-1). Batches are normalized with the training set's own pixel statistics.
public final class SupervisedExperiment: Experiment {
    public struct Config: Codable {
        public var training: SupervisedConfig
        /// Images per class kept (smoke profiles); nil keeps everything.
        public var perClass: Int?
    }

    public static let metrics: [Metric] = [.loss, .testTop1, .knnTop1]
    public static let referenceNames = [ReferenceRow.rawPixels]

    let config: Config
    let data: ImageData
    let classifier: Classifier
    let sgd: SGD
    let run: RNG

    public init(config: Config, context: RunContext) throws {
        let t = config.training
        try require("config.training.epochs", t.epochs, atLeast: 1)
        try require("config.training.max_shift", t.maxShift, atLeast: 0)
        try require("config.per_class", config.perClass ?? 1, atLeast: 1)
        try require("config.training.batch_size", t.batchSize, atLeast: 2)   // BatchNorm needs two images
        for (k, v) in [("learning_rate", t.learningRate), ("momentum", t.momentum), ("weight_decay", t.weightDecay)] {
            try require("config.training.\(k)", v, atLeast: 0)
        }
        self.config = config
        data = try ImageData.load(context, perClass: config.perClass, batchSize: t.batchSize)
        run = RNG(seed: context.seed)
        var initRNG = run.derive("init")
        classifier = Classifier(width: t.width, inputChannels: data.channels, classes: data.classes, rng: &initRNG)
        sgd = SGD(groups: classifier.parameterGroups(learningRate: t.learningRate, weightDecay: t.weightDecay),
                  momentum: t.momentum, schedule: .cosine(totalSteps: data.train.count / t.batchSize * t.epochs))
    }

    public var epochs: Int { config.training.epochs }
    public var stepsPerEpoch: Int { data.train.count / config.training.batchSize }
    public var imagesPerStep: Int { config.training.batchSize }
    public var model: Module { classifier }
    public var checkpointInfo: [String: Any] { data.checkpointInfo(classifier.backbone) }
    public var optimizer: Optimizer { sgd }

    public func trainEpoch(_ epoch: Int, step: (Double) throws -> Void) throws -> [String: Double] {
        classifier.train()
        let b = config.training.batchSize
        var order = run.derive("order").derive(UInt64(epoch))
        let permutation = order.permutation(data.train.count)
        var total = 0.0
        for s in 0..<stepsPerEpoch {
            let idx = Array(permutation[(s * b)..<((s + 1) * b)])
            var augment = run.derive("augment").derive(UInt64(epoch * stepsPerEpoch + s))
            let x = augmentedBatch(data.train, idx, flip: config.training.flip, maxShift: config.training.maxShift, mean: data.mean, std: data.std, rng: &augment)
            classifier.zeroGrad()
            let loss = crossEntropy(classifier(x), labels: idx.map { data.train.labels[$0] })
            loss.backward()
            sgd.step()
            total += Double(loss.item)
            try step(Double(loss.item))
        }
        return [Metric.loss.key: total / Double(stepsPerEpoch)]
    }

    public func evaluate(epoch: Int, final: Bool) throws -> [String: Double] {
        [Metric.testTop1.key: accuracy(classifier, data.test, mean: data.mean, std: data.std)]
    }

    public func features(split: String) throws -> Features? { data.features(classifier.backbone, split: split) }

    /// Raw pixels under the same kNN protocol.
    public static func references(config: Config, context: RunContext) throws -> [(name: String, metrics: [String: Double])] {
        guard let m = context.evaluation.knn else { return [] }
        let data = try ImageData.load(context, perClass: config.perClass, batchSize: config.training.batchSize)
        let knn = try knnClassify(bank: ImageData.pixels(data.train), queries: ImageData.pixels(data.test), k: min(m.k, data.train.count), temperature: m.temperature)
        return [(ReferenceRow.rawPixels, [Metric.knnTop1.key: knn.top1])]
    }
}

/// Normalized batch with a random flip and shift per image (zero fill, i.e. background).
public func augmentedBatch(_ data: ImageSet, _ indices: [Int], flip: Bool, maxShift: Int, mean: Float, std: Float, rng: inout RNG) -> Tensor {
    let (h, w, ch) = (data.height, data.width, data.channels)
    let t = Tensor.full([indices.count, ch, h, w], -mean / std)
    let scale = 1 / (255 * std), shift = -mean / std
    data.pixels.withUnsafeBufferPointer { px in
        for (b, i) in indices.enumerated() {
            let flipped = flip && rng.bernoulli(0.5)
            let dy = maxShift > 0 ? rng.int(below: 2 * maxShift + 1) - maxShift : 0
            let dx = maxShift > 0 ? rng.int(below: 2 * maxShift + 1) - maxShift : 0
            let src = px.baseAddress! + i * data.imageSize, dst = t.pointer + b * data.imageSize
            for y in 0..<h {
                let sy = y - dy
                if sy < 0 || sy >= h { continue }
                for x in 0..<w {
                    var sx = x - dx
                    if sx < 0 || sx >= w { continue }
                    if flipped { sx = w - 1 - sx }
                    for c in 0..<ch { dst[(c * h + y) * w + x] = Float(src[(sy * w + sx) * ch + c]) * scale + shift }
                }
            }
        }
    }
    return t
}
