import Datasets
import Engine
import Evaluation
import Foundation
import Harness
import NN

/// The supervised cross-entropy reference as a Harness experiment: convnet4 trained on
/// labels, reported with the shared protocol (the Harness's kNN monitor on h, and the
/// head's test top-1).
public final class SupervisedExperiment: Experiment {
    public struct Config: Codable {
        public var training: SupervisedConfig
        /// Images per class kept (smoke profiles); nil keeps everything.
        public var perClass: Int?
    }

    let config: Config
    let train: ImageSet, test: ImageSet
    let mean: Float = FashionMNIST.mean, std: Float = FashionMNIST.std
    let classifier: Classifier
    let sgd: SGD
    let run: RNG

    public init(config: Config, context: RunContext) throws {
        self.config = config
        var tr = try DatasetFile.read(context.dataset, split: "train").set, te = try DatasetFile.read(context.dataset, split: "test").set
        if let n = config.perClass { tr = tr.perClassSubset(n); te = te.perClassSubset(n) }
        guard tr.count >= config.training.batchSize else {
            throw RunError("\(context.dataset): \(tr.count) training images, fewer than one batch of \(config.training.batchSize)")
        }
        (train, test) = (tr, te)
        run = RNG(seed: context.seed)
        var initRNG = run.derive("init")
        let classes = (tr.labels.max() ?? 0) + 1
        classifier = Classifier(width: config.training.width, inputChannels: tr.channels, classes: classes, rng: &initRNG)
        let steps = tr.count / config.training.batchSize
        sgd = SGD(groups: classifier.parameterGroups(learningRate: config.training.learningRate, weightDecay: config.training.weightDecay),
                  momentum: config.training.momentum, schedule: .cosine(totalSteps: steps * config.training.epochs))
    }

    public var epochs: Int { config.training.epochs }
    public var stepsPerEpoch: Int { train.count / config.training.batchSize }
    public var model: Module { classifier }
    public var checkpointInfo: [String: Any] {
        ["backbone": ["name": "convnet4", "width": config.training.width.rawValue, "input_channels": train.channels],
         "normalize": ["mean": Double(mean), "std": Double(std)]]
    }
    public var optimizer: Optimizer { sgd }

    public func trainEpoch(_ epoch: Int, step: (Double) throws -> Void) throws -> [String: Double] {
        classifier.train()
        let b = config.training.batchSize
        var order = run.derive("order").derive(UInt64(epoch))
        let permutation = order.permutation(train.count)
        var total = 0.0
        for s in 0..<stepsPerEpoch {
            let idx = Array(permutation[(s * b)..<((s + 1) * b)])
            var augment = run.derive("augment").derive(UInt64(epoch * stepsPerEpoch + s))
            let x = augmentedBatch(train, idx, flip: config.training.flip, maxShift: config.training.maxShift, mean: mean, std: std, rng: &augment)
            classifier.zeroGrad()
            let loss = crossEntropy(classifier(x), labels: idx.map { train.labels[$0] })
            loss.backward()
            sgd.step()
            total += Double(loss.item)
            try step(Double(loss.item))
        }
        return ["loss": total / Double(stepsPerEpoch)]
    }

    public func evaluate(epoch: Int, final: Bool) throws -> [String: Double] {
        ["test_top1": accuracy(classifier, test, mean: mean, std: std)]
    }

    public func features(split: String) throws -> Features? { features(split == "train" ? train : test) }

    func features(_ set: ImageSet) -> Features { backboneFeatures(classifier.backbone, set, mean: mean, std: std) }

    /// Raw pixels under the same kNN protocol.
    public static func references(config: Config, context: RunContext) throws -> [(name: String, metrics: [String: Double])] {
        guard let m = context.knn else { return [] }
        var tr = try DatasetFile.read(context.dataset, split: "train").set, te = try DatasetFile.read(context.dataset, split: "test").set
        if let n = config.perClass { tr = tr.perClassSubset(n); te = te.perClassSubset(n) }
        func pixels(_ s: ImageSet) -> Features {
            Features(values: s.pixels.map { Float($0) / 255 }, count: s.count, dimension: s.imageSize, labels: s.labels)
        }
        let knn = try knnClassify(bank: pixels(tr), queries: pixels(te), k: min(m.k, tr.count), temperature: m.temperature)
        return [("raw pixels", ["knn_top1": knn.top1])]
    }
}
