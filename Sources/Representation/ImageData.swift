import Datasets
import Engine
import Evaluation
import Foundation
import Harness
import NN

/// A dataset file's two splits as a representation-learning run sees them, loaded once per
/// run (its arms and reference rows share one copy): the images, the training pixels'
/// statistics that normalize every batch, and the class count.
public final class ImageData {
    public let path: String
    public let train: ImageSet, test: ImageSet
    /// Mean and standard deviation of the training pixels in [0, 1].
    public let mean: Float, std: Float
    public var channels: Int { train.channels }
    public var classes: Int { (train.labels.max() ?? 0) + 1 }

    init(path: String, perClass: Int?) throws {
        var tr = try DatasetFile.read(path, split: "train").set, te = try DatasetFile.read(path, split: "test").set
        if let n = perClass { tr = tr.perClassSubset(n); te = te.perClassSubset(n) }
        (self.path, train, test) = (path, tr, te)
        (mean, std) = pixelStatistics(tr)
    }

    /// The run's dataset (`per_class` images per class when set), read on first use; a
    /// training split smaller than one batch, or images smaller than `backbone` accepts, are
    /// refused before anything trains.
    public static func load(_ context: RunContext, perClass: Int?, batchSize: Int,
                            backbone: BackboneSpec = BackboneSpec(name: "convnet4", inputChannels: 1)) throws -> ImageData {
        let data = try context.cache.value("images|\(context.dataset)|\(perClass.map(String.init) ?? "all")") {
            try ImageData(path: context.dataset, perClass: perClass)
        }
        do {
            for set in [data.train, data.test] { try backbone.check(height: set.height, width: set.width, file: context.dataset) }
        } catch { throw RunError("\(error)") }
        guard data.train.count >= batchSize else {
            throw RunError("\(context.dataset): \(data.train.count) training images, fewer than one batch of \(batchSize)")
        }
        return data
    }

    /// Backbone features of a split (evaluation mode, no augmentation).
    public func features(_ backbone: any Backbone, split: String) -> Features {
        backboneFeatures(backbone, split == "train" ? train : test, mean: mean, std: std)
    }

    /// Pixels in [0, 1] as features (the raw-pixels reference row).
    public static func pixels(_ s: ImageSet) -> Features {
        Features(values: s.pixels.map { Float($0) / 255 }, count: s.count, dimension: s.imageSize, labels: s.labels)
    }

    /// What checkpoints carry so that `replica embed` can rebuild and feed the backbone.
    public func checkpointInfo(_ backbone: ConvNet4) -> [String: Any] {
        let spec = backbone.spec
        return ["backbone": ["name": spec.name, "width": spec.width?.rawValue ?? NSNull(), "input_channels": spec.inputChannels] as [String: Any],
                "normalize": ["mean": Double(mean), "std": Double(std)]]
    }
}

/// Mean and standard deviation of all training pixels in [0, 1] (one value for every
/// channel): Fashion-MNIST gives 0.2860 and 0.3530.
public func pixelStatistics(_ set: ImageSet) -> (mean: Float, std: Float) {
    var s = 0.0, s2 = 0.0
    for v in set.pixels { let x = Double(v) / 255; s += x; s2 += x * x }
    let n = Double(max(set.pixels.count, 1)), mean = s / n
    return (Float(mean), Float(max(s2 / n - mean * mean, 1e-12).squareRoot()))
}

/// Backbone features h of every image of a set, in order: evaluation mode, no
/// augmentation, normalized with (mean, std). `replica embed` writes these.
public func backboneFeatures(_ backbone: any Backbone, _ set: ImageSet, mean: Float, std: Float, batchSize: Int = 1000) -> Features {
    backbone.eval()
    var values: [Float] = []
    values.reserveCapacity(set.count * backbone.featureCount)
    for start in stride(from: 0, to: set.count, by: batchSize) {
        let idx = Array(start..<min(start + batchSize, set.count))
        values += withoutGradients { backbone(set.batch(idx, mean: mean, std: std)) }.array
    }
    return Features(values: values, count: set.count, dimension: backbone.featureCount, labels: set.labels)
}

/// A backbone with a linear classification head (keys `backbone.…`, `head.…`).
public final class Classifier: Module {
    public let backbone: ConvNet4
    public let head: Linear

    public init(width: ConvNet4.Width, inputChannels: Int, classes: Int, rng: inout RNG) {
        backbone = ConvNet4(width: width, inputChannels: inputChannels, rng: &rng)
        head = Linear(backbone.featureCount, classes, rng: &rng)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { head(backbone(x)) }
}

/// Top-1 accuracy in evaluation mode.
public func accuracy(_ model: Classifier, _ data: ImageSet, mean: Float, std: Float, batchSize: Int = 1000) -> Double {
    model.eval()
    var correct = 0
    for start in stride(from: 0, to: data.count, by: batchSize) {
        let idx = Array(start..<min(start + batchSize, data.count))
        let logits = withoutGradients { model(data.batch(idx, mean: mean, std: std)) }
        let c = logits.shape[1]
        for (b, i) in idx.enumerated() {
            let row = logits.pointer + b * c
            var best = 0
            for j in 1..<c where row[j] > row[best] { best = j }
            if best == data.labels[i] { correct += 1 }
        }
    }
    return Double(correct) / Double(max(data.count, 1))
}
