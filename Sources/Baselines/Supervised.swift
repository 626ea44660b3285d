import Datasets
import Engine
import Evaluation
import Foundation
import NN

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

/// Training settings of the supervised cross-entropy reference row (convnet4 on labels).
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

/// Backbone features h of every image of a set, in order: evaluation mode, no
/// augmentation, normalized with (mean, std).
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
