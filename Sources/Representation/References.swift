import Datasets
import Engine
import Evaluation
import Foundation
import Harness
import NN

/// The reference rows every representation-learning method is measured against, under the
/// same protocol as its arms: raw pixels, the random-init network (the arms' initial
/// backbone, BN statistics re-estimated over clean batches) and supervised cross-entropy
/// with the same backbone, augmentation (one view), optimizer, batch and number of steps.
public enum ReferenceRow {
    public static let rawPixels = "raw pixels", randomInit = "random init", supervised = "supervised"
    public static let names = [rawPixels, randomInit, supervised]
}

/// Everything the reference rows depend on besides the data, seed and evaluation settings
/// (it keys the reference cache).
public struct ReferenceRecipe: Codable, Equatable {
    public var width: ConvNet4.Width
    public var batchSize: Int, epochs: Int
    public var learningRate: Float, momentum: Float, weightDecay: Float
    public var augmentation: ViewRecipe
    public var perClass: Int?
    public var bnStatisticsBatches: Int
    public var supervised: Bool

    /// The method's main-arm settings; `bn_statistics_batches` and whether to train the
    /// supervised row come from the file's `references:` section (20 batches, every seed).
    public init(width: ConvNet4.Width, batchSize: Int, epochs: Int, learningRate: Float, momentum: Float, weightDecay: Float,
                augmentation: ViewRecipe, perClass: Int?, context: RunContext) {
        (self.width, self.batchSize, self.epochs, self.augmentation, self.perClass) = (width, batchSize, epochs, augmentation, perClass)
        (self.learningRate, self.momentum, self.weightDecay) = (learningRate, momentum, weightDecay)
        bnStatisticsBatches = context.references.bnStatisticsBatches ?? 20
        switch context.references.supervised ?? .all {
        case .all: supervised = true
        case .firstSeed: supervised = context.firstSeed
        case .none: supervised = false
        }
    }

    /// The rows, on the run's own data (`ImageData.load`), seeded like the arms: the random
    /// network is the backbone the arms start from when they draw it first from `init`.
    public func rows(context: RunContext) throws -> [(name: String, metrics: [String: Double])] {
        let data = try ImageData.load(context, perClass: perClass, batchSize: batchSize)
        let evaluation = context.evaluation.sharedProtocol
        let run = RNG(seed: context.seed)
        var out: [(name: String, metrics: [String: Double])] = []

        context.log("reference: raw pixels")
        out.append((ReferenceRow.rawPixels, try evaluation.metrics(train: ImageData.pixels(data.train), test: ImageData.pixels(data.test))))

        context.log("reference: random init (BN statistics over \(bnStatisticsBatches) clean batches)")
        var initRNG = run.derive("init")
        let random = ConvNet4(width: width, inputChannels: data.channels, rng: &initRNG)
        let clean = ShuffledSampler(count: data.train.count, batchSize: batchSize, rng: run.derive("bn-statistics")).batches(epoch: 0)
            .prefix(bnStatisticsBatches).map { data.train.batch($0, mean: data.mean, std: data.std) }
        random.recomputeBatchNormStatistics(clean) { random($0) }
        out.append((ReferenceRow.randomInit, try evaluation.metrics(train: data.features(random, split: "train"), test: data.features(random, split: "test"))))

        if supervised {
            context.log("reference: supervised cross-entropy, \(epochs) epochs")
            let classifier = try trainSupervised(data, run: run, log: context.log)
            var m = try evaluation.metrics(train: data.features(classifier.backbone, split: "train"), test: data.features(classifier.backbone, split: "test"))
            m[Metric.testTop1] = accuracy(classifier, data.test, mean: data.mean, std: data.std)
            out.append((ReferenceRow.supervised, m))
        }
        return out
    }

    /// Cross-entropy on one augmented view per image: the arm's backbone, optimizer,
    /// learning rate, batch size and number of steps (cosine schedule).
    func trainSupervised(_ data: ImageData, run: RNG, log: (String) -> Void) throws -> Classifier {
        let train = data.train
        var initRNG = run.derive("supervised-init")
        let classifier = Classifier(width: width, inputChannels: train.channels, classes: data.classes, rng: &initRNG)
        let steps = train.count / batchSize
        let sgd = SGD(groups: classifier.parameterGroups(learningRate: learningRate, weightDecay: weightDecay),
                      momentum: momentum, schedule: .cosine(totalSteps: steps * epochs))
        let views = try augmentation.augmentation(size: train.height, mean: data.mean, std: data.std)
        for epoch in 0..<epochs {
            let loss = try crossEntropyEpoch(classifier, train, views: views, batchSize: batchSize, epoch: epoch, order: run.derive("supervised-order"),
                                             augment: run.derive("supervised-augment"), optimizer: sgd) { loss in
                guard loss.isFinite else { throw RunError("supervised reference, epoch \(epoch + 1): the loss is \(loss); stopped") }
            }
            log(String(format: "supervised epoch %d/%d  loss %.4f", epoch + 1, epochs, loss))
        }
        classifier.eval()
        return classifier
    }
}

/// One epoch of cross-entropy on one augmented view per image: batches from the sampler
/// stream `order`, views from `augment/epoch/step`, `step(loss)` after each optimizer step.
/// Returns the mean loss.
public func crossEntropyEpoch(_ classifier: Classifier, _ train: ImageSet, views: Augmentation, batchSize: Int, epoch: Int, order: RNG, augment: RNG,
                              optimizer: Optimizer, step: (Double) throws -> Void) throws -> Double {
    classifier.train()
    let batches = ShuffledSampler(count: train.count, batchSize: batchSize, rng: order).batches(epoch: epoch)
    let loader = PrefetchLoader(batches: batches) { s, idx in
        (views.viewBatches(train, idx, count: 1, rng: augment.derive(UInt64(epoch)).derive(UInt64(s)))[0], idx)
    }
    var total = 0.0
    for (x, idx) in loader {
        classifier.zeroGrad()
        let loss = crossEntropy(classifier(x), labels: idx.map { train.labels[$0] })
        loss.backward()
        optimizer.step()
        total += Double(loss.item)
        try step(Double(loss.item))
    }
    return total / Double(max(batches.count, 1))
}

/// A representation-learning experiment whose reference rows follow its main arm's recipe
/// (backbone, optimizer, batch, views, epochs): the rows and the cache key come from it.
public protocol RepresentationExperiment: Experiment {
    static func recipe(_ config: Config, _ context: RunContext) -> ReferenceRecipe
}

extension RepresentationExperiment {
    public static var referenceNames: [String] { ReferenceRow.names }
    public static func references(config: Config, context: RunContext) throws -> [(name: String, metrics: [String: Double])] {
        try recipe(config, context).rows(context: context)
    }
    public static func referenceInputs(config: Config, context: RunContext) -> (any Encodable)? { recipe(config, context) }
}
