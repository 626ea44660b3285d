import Datasets
import Engine
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

/// The supervised cross-entropy reference row: convnet4 trained on labels.
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
    public var seed: UInt64 = 0
    public init() {}
}

public struct EpochLog: Codable, Equatable, Sendable {
    public let epoch: Int, loss: Double, testAccuracy: Double, seconds: Double
}

/// Trains `config` on `train`, evaluating top-1 on `test` after every epoch.
public func trainSupervised(_ config: SupervisedConfig, train: ImageSet, test: ImageSet, mean: Float, std: Float,
                            log: (EpochLog) -> Void = { _ in }) -> (Classifier, [EpochLog]) {
    let run = RNG(seed: config.seed)
    var initRNG = run.derive("init")
    let classes = Set(train.labels).count
    let model = Classifier(width: config.width, inputChannels: train.channels, classes: max(classes, (train.labels.max() ?? 0) + 1), rng: &initRNG)
    let stepsPerEpoch = train.count / config.batchSize
    precondition(stepsPerEpoch > 0, "batch size \(config.batchSize) larger than the \(train.count) training images")
    let optimizer = SGD(groups: model.parameterGroups(learningRate: config.learningRate, weightDecay: config.weightDecay),
                        momentum: config.momentum, schedule: .cosine(totalSteps: stepsPerEpoch * config.epochs))
    var history: [EpochLog] = []
    for epoch in 0..<config.epochs {
        let start = Date()
        model.train()
        var order = run.derive("order").derive(UInt64(epoch))
        let permutation = order.permutation(train.count)
        var lossSum = 0.0
        for step in 0..<stepsPerEpoch {
            let indices = Array(permutation[(step * config.batchSize)..<((step + 1) * config.batchSize)])
            var augment = run.derive("augment").derive(UInt64(epoch * stepsPerEpoch + step))
            let x = augmentedBatch(train, indices, flip: config.flip, maxShift: config.maxShift, mean: mean, std: std, rng: &augment)
            model.zeroGrad()
            let loss = crossEntropy(model(x), labels: indices.map { train.labels[$0] })
            loss.backward()
            optimizer.step()
            lossSum += Double(loss.item)
        }
        let entry = EpochLog(epoch: epoch + 1, loss: lossSum / Double(stepsPerEpoch),
                             testAccuracy: accuracy(model, test, mean: mean, std: std), seconds: Date().timeIntervalSince(start))
        history.append(entry)
        log(entry)
    }
    return (model, history)
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
func augmentedBatch(_ data: ImageSet, _ indices: [Int], flip: Bool, maxShift: Int, mean: Float, std: Float, rng: inout RNG) -> Tensor {
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
