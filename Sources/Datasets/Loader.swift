import Dispatch
import Engine
import Foundation

/// Batches of indices for one epoch; each sampler derives its draws from `rng` and the
/// epoch only, so a resumed run sees the same batches.
public protocol Sampler {
    func batches(epoch: Int) -> [[Int]]
}

/// Shuffled epochs of `batchSize` (the last partial batch dropped unless `dropLast` is off).
public struct ShuffledSampler: Sampler {
    public let count: Int, batchSize: Int, dropLast: Bool, rng: RNG
    public init(count: Int, batchSize: Int, dropLast: Bool = true, rng: RNG) {
        precondition(batchSize >= 1 && count >= 1, "sampler over \(count) items in batches of \(batchSize)")
        (self.count, self.batchSize, self.dropLast, self.rng) = (count, batchSize, dropLast, rng)
    }
    public func batches(epoch: Int) -> [[Int]] {
        var r = rng.derive(UInt64(epoch))
        let p = r.permutation(count)
        let full = count / batchSize
        var out = (0..<full).map { Array(p[($0 * batchSize)..<(($0 + 1) * batchSize)]) }
        if !dropLast && count % batchSize != 0 { out.append(Array(p[(full * batchSize)...])) }
        return out
    }
}

/// Class-balanced batches for metric learning: P classes × K samples each (with
/// replacement only for classes smaller than K); as many batches as cover the data once.
public struct ClassBalancedSampler: Sampler {
    public let byClass: [[Int]], p: Int, k: Int, rng: RNG, batchesPerEpoch: Int
    public init(labels: [Int], p: Int, k: Int, rng: RNG) {
        var groups: [Int: [Int]] = [:]
        for (i, y) in labels.enumerated() { groups[y, default: []].append(i) }
        precondition(groups.count >= p, "P = \(p) classes per batch but only \(groups.count) classes")
        byClass = groups.keys.sorted().map { groups[$0]! }
        (self.p, self.k, self.rng) = (p, k, rng)
        batchesPerEpoch = max(1, labels.count / (p * k))
    }
    public func batches(epoch: Int) -> [[Int]] {
        var r = rng.derive(UInt64(epoch))
        return (0..<batchesPerEpoch).map { _ in
            r.permutation(byClass.count).prefix(p).flatMap { c -> [Int] in
                let members = byClass[c]
                if members.count >= k { return r.permutation(members.count).prefix(k).map { members[$0] } }
                return (0..<k).map { _ in members[r.int(below: members.count)] }
            }
        }
    }
}

/// DeepCluster's sampler: each pseudo-label equally often (empty clusters skipped), as many
/// samples as the data holds, shuffled into batches.
public struct UniformPseudoLabelSampler: Sampler {
    public let labels: [Int], batchSize: Int, rng: RNG
    public init(labels: [Int], batchSize: Int, rng: RNG) { (self.labels, self.batchSize, self.rng) = (labels, batchSize, rng) }
    public func batches(epoch: Int) -> [[Int]] {
        var r = rng.derive(UInt64(epoch))
        var groups: [Int: [Int]] = [:]
        for (i, y) in labels.enumerated() { groups[y, default: []].append(i) }
        let clusters = groups.keys.sorted()
        let perCluster = labels.count / max(clusters.count, 1) + 1
        var picks: [Int] = []
        for c in clusters {
            let m = groups[c]!
            let shuffled = r.permutation(m.count).map { m[$0] }
            picks += (0..<perCluster).map { shuffled[$0 % shuffled.count] }
        }
        let order = r.permutation(picks.count).prefix(labels.count).map { picks[$0] }
        return stride(from: 0, to: order.count - batchSize + 1, by: batchSize).map { Array(order[$0..<($0 + batchSize)]) }
    }
}

/// Yields prepared batches in order while the next one is built on another thread. In
/// data-parallel training (`Distributed`) each batch is this rank's shard of the global one,
/// built with `Distributed.batchOffset` set, so per-image draws follow the global batch.
/// `make(batchIndex, indices)` must depend only on its arguments (derive randomness from
/// them), so the batches are the same however the threads interleave.
public final class PrefetchLoader<Batch>: Sequence, IteratorProtocol {
    /// One batch being built: filled on the loader thread, read after `done` signals.
    private final class Slot: @unchecked Sendable {
        var value: Batch?
        let done = DispatchSemaphore(value: 0)
    }

    private let batches: [[Int]]
    private let make: (Int, [Int]) -> Batch
    private var position = 0
    private var pending: Slot?
    private let queue = DispatchQueue(label: "replica.loader")

    public init(batches: [[Int]], make: @escaping (Int, [Int]) -> Batch) {
        self.batches = batches
        self.make = make
        schedule()
    }

    private func schedule() {
        guard position < batches.count else { pending = nil; return }
        let slot = Slot()
        // Data-parallel training: this rank's shard, built as the global batch would be.
        let (i, (indices, offset), make) = (position, Distributed.shard(batches[position]), make)
        queue.async { slot.value = Distributed.withBatchOffset(offset) { make(i, indices) }; slot.done.signal() }
        pending = slot
        position += 1
    }

    public func next() -> Batch? {
        guard let slot = pending else { return nil }
        slot.done.wait()
        schedule()
        return slot.value
    }

    deinit { pending?.done.wait() }   // never leave the loader thread writing into a freed slot
}
