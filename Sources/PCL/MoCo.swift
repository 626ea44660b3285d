import Engine
import Foundation
import NN

/// A MoCo v2 / PCL v2 encoder: h = f(x), z = g(h) with g = Linear(h, hidden) → ReLU →
/// Linear(hidden, out) (no BN in the head, as in MoCo v2). A `Backbone` whose features are z.
public final class Encoder: Module, Backbone {
    public let backbone: ConvNet4
    public let head: Sequential
    public let featureCount: Int

    public init(width: ConvNet4.Width, inputChannels: Int, hidden: Int, output: Int, rng: inout RNG) {
        backbone = ConvNet4(width: width, inputChannels: inputChannels, rng: &rng)
        head = Sequential([Linear(backbone.featureCount, hidden, rng: &rng), ReLU(), Linear(hidden, output, rng: &rng)])
        featureCount = output
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { head(backbone(x)) }
}

/// MoCo's two encoders and its queue. The query encoder f_θ is trained (and evaluated: keys
/// `backbone.…`, `head.…`, as every other method's network); the key encoder f_θ′ (keys
/// `momentum.…`) starts as a copy and follows θ′ ← mθ′ + (1 − m)θ, never receiving gradients;
/// `queue` [r, d] holds the last r keys as a ring buffer whose oldest row is at
/// `queue_pointer` (MoCo's queue and queue_ptr: buffers, so checkpoints and resume keep them).
public final class MoCoNetwork: Module {
    public let query: Encoder, momentum: Encoder
    public let queue: Tensor, queuePointer: Tensor

    public init(width: ConvNet4.Width, inputChannels: Int, hidden: Int, output: Int, queueSize: Int, rng: inout RNG) {
        query = Encoder(width: width, inputChannels: inputChannels, hidden: hidden, output: output, rng: &rng)
        momentum = Encoder(width: width, inputChannels: inputChannels, hidden: hidden, output: output, rng: &rng)
        for ((_, k), (_, q)) in zip(momentum.stateDict(), query.stateDict()) { k.assign(q) }
        momentum.freeze()
        var values = [Float](repeating: 0, count: queueSize * output)   // MoCo: random unit vectors
        for i in values.indices { values[i] = rng.normal() }
        queue = Tensor(values, shape: [queueSize, output]).l2Normalized(axis: 1).detached()
        queuePointer = Tensor.zeros([])
    }

    public override var bufferNames: Set<String> { ["queue", "queue_pointer"] }
    public override func children() -> [(String, Module)] { [("backbone", query.backbone), ("head", query.head), ("momentum", momentum)] }

    /// θ′ ← mθ′ + (1 − m)θ over the parameters (BN running statistics stay the key
    /// encoder's own, updated by its forward passes, as in MoCo).
    public func updateMomentumEncoder(_ m: Float) {
        for ((_, k), (_, q)) in zip(momentum.namedParameters(), query.namedParameters()) {
            let (kp, qp) = (k.pointer, q.pointer)
            for i in 0..<k.count { kp[i] = m * kp[i] + (1 - m) * qp[i] }
        }
    }

    /// Writes `keys` [B, d] over the oldest B rows and moves the pointer on (B divides r).
    public func enqueue(_ keys: Tensor) {
        let (b, d, r) = (keys.shape[0], keys.shape[1], queue.shape[0])
        let start = Int(queuePointer.pointer[0])
        precondition(r % b == 0 && start + b <= r, "enqueue: \(b) keys into a queue of \(r) at \(start)")
        (queue.pointer + start * d).update(from: keys.pointer, count: b * d)
        queuePointer.pointer[0] = Float((start + b) % r)
    }

    /// l2-normalized keys of `x` without gradients, with shuffled BN: the batch is permuted by
    /// `permutation`, encoded in `splits` sub-batches (BN statistics per sub-batch) and put
    /// back in order, so a key never shares BN statistics with the sub-batch of its query.
    public func keys(_ x: Tensor, splits: Int, permutation: [Int]) -> Tensor {
        withoutGradients {
            var inverse = permutation
            for (i, p) in permutation.enumerated() { inverse[p] = i }
            return splitForward(momentum, x.indexSelect(axis: 0, permutation), splits: splits).l2Normalized(axis: 1).indexSelect(axis: 0, inverse)
        }
    }
}

/// `encoder(x)` with BN statistics per sub-batch: `splits` equal consecutive sub-batches
/// through the encoder one by one (SplitBatchNorm, the one-device stand-in for per-GPU BN).
public func splitForward(_ encoder: Encoder, _ x: Tensor, splits: Int) -> Tensor {
    let n = x.shape[0]
    precondition(n % splits == 0, "splitForward: \(n) rows in \(splits) splits")
    guard splits > 1 else { return encoder(x) }
    return Tensor.concat(x.split(axis: 0, sizes: [Int](repeating: n / splits, count: splits)).map { encoder($0) }, axis: 0)
}

/// MoCo's InfoNCE: for l2-normalized queries q [B, d], their positive keys k [B, d] and the
/// queue [r, d] (constants), logits_i = [q_i·k_i, q_i·queue_1, …, q_i·queue_r] / τ and
/// L = (1/B) Σ_i −log softmax(logits_i)_0. Its plateau (all r + 1 candidates equally
/// similar) is ln(r + 1).
public func infoNCE(_ q: Tensor, keys k: Tensor, queue: Tensor, temperature τ: Float) -> Tensor {
    let positive = (q * k).sum(axis: 1, keepDims: true), negative = q.matmul(queue.transposed())
    return crossEntropy(Tensor.concat([positive, negative], axis: 1) / τ, labels: [Int](repeating: 0, count: q.shape[0]))
}
