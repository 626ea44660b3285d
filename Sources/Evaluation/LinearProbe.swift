import Engine
import Foundation
import NN

public struct LinearProbeConfig: Codable, Equatable, Sendable {
    public var epochs = 100
    public var batchSize = 256
    public var learningRate: Float = 1e-2
    public var weightDecay: Float = 5e-6
    public var seed: UInt64 = 0
    public init() {}
}

public struct LinearProbeResult: Codable, Equatable {
    public let top1: Double, top5: Double, trainTop1: Double
    public let config: LinearProbeConfig
}

/// Multinomial logistic regression on frozen features ("lin precomp", docs/architecture.md):
/// standardized with the training mean and std, Adam with a cosine schedule, L2 decay.
public func linearProbe(train: Features, test: Features, classes: Int? = nil, config: LinearProbeConfig = LinearProbeConfig()) throws -> LinearProbeResult {
    guard train.dimension == test.dimension else { throw EvaluationError("train features have dimension \(train.dimension), test \(test.dimension)") }
    guard train.count >= 1, test.count >= 1, train.dimension >= 1 else {
        throw EvaluationError("a linear probe needs features: got \(train.count) training and \(test.count) test rows of dimension \(train.dimension)")
    }
    let c = classes ?? ((train.labels + test.labels).max() ?? 0) + 1
    let d = train.dimension
    var mean = [Float](repeating: 0, count: d), std = [Float](repeating: 0, count: d)
    for i in 0..<train.count { for j in 0..<d { mean[j] += train.values[i * d + j] } }
    for j in 0..<d { mean[j] /= Float(train.count) }
    for i in 0..<train.count { for j in 0..<d { let t = train.values[i * d + j] - mean[j]; std[j] += t * t } }
    for j in 0..<d { std[j] = Swift.max((std[j] / Float(train.count)).squareRoot(), 1e-6) }
    func standardized(_ f: Features) -> Tensor {
        Tensor((0..<(f.count * d)).map { (f.values[$0] - mean[$0 % d]) / std[$0 % d] }, shape: [f.count, d])
    }
    let xTrain = standardized(train), xTest = standardized(test)
    var rng = RNG(seed: config.seed)
    var initRNG = rng.derive("init")
    let head = Linear(d, c, rng: &initRNG)
    let steps = Swift.max(1, train.count / Swift.min(config.batchSize, train.count))
    let optimizer = Adam(groups: head.parameterGroups(learningRate: config.learningRate, weightDecay: config.weightDecay),
                         schedule: .cosine(totalSteps: steps * config.epochs))
    let sampler = rng.derive("order")
    for epoch in 0..<config.epochs {
        var order = sampler.derive(UInt64(epoch))
        let p = order.permutation(train.count)
        let b = Swift.min(config.batchSize, train.count)
        for s in 0..<steps {
            let idx = Array(p[(s * b)..<((s + 1) * b)])
            head.zeroGrad()
            crossEntropy(head(xTrain.indexSelect(axis: 0, idx)), labels: idx.map { train.labels[$0] }).backward()
            optimizer.step()
        }
    }
    rng = RNG(seed: 0)
    func accuracy(_ x: Tensor, _ labels: [Int]) -> (Double, Double) {
        let logits = withoutGradients { head(x) }
        var t1 = 0, t5 = 0
        for i in 0..<labels.count {
            let row = Array(UnsafeBufferPointer(start: logits.pointer + i * c, count: c))
            let ranked = (0..<c).sorted { row[$0] != row[$1] ? row[$0] > row[$1] : $0 < $1 }
            if ranked[0] == labels[i] { t1 += 1 }
            if ranked.prefix(5).contains(labels[i]) { t5 += 1 }
        }
        return (Double(t1) / Double(labels.count), Double(t5) / Double(labels.count))
    }
    let (top1, top5) = accuracy(xTest, test.labels)
    return LinearProbeResult(top1: top1, top5: top5, trainTop1: accuracy(xTrain, train.labels).0, config: config)
}
