import CKernels
import Engine
import Foundation

/// How neighbours vote in kNN classification.
public enum KNNWeighting: String, Codable, Sendable {
    /// InstDisc: class score Σ exp(s/T) over the k nearest.
    case exponential
    /// One vote per neighbour.
    case majority
}

public struct KNNResult: Codable, Equatable {
    public let top1: Double, top5: Double
    public let k: Int, temperature: Double, weighting: KNNWeighting
}

/// kNN classification with cosine similarity on l2-normalized features (the shared
/// protocol: k = 200, T = 0.1, exponential weights). Similarities come from fixed-shape
/// dot-product blocks (`SimilarityBlocks`), so a query's neighbours and votes do not depend on the other
/// queries or on `chunk` (queries per pass, at most 256; memory is chunk × bank floats).
public func knnClassify(bank: Features, queries: Features, k: Int = 200, temperature: Float = 0.1,
                        weighting: KNNWeighting = .exponential, classes: Int? = nil, chunk requested: Int = 256) throws -> KNNResult {
    let chunk = Swift.max(1, Swift.min(requested, SimilarityBlocks.queryBlock))
    guard bank.dimension == queries.dimension else { throw EvaluationError("bank has dimension \(bank.dimension), queries \(queries.dimension)") }
    guard k >= 1 && k <= bank.count else { throw EvaluationError("k = \(k) but the bank holds \(bank.count) features") }
    guard queries.count >= 1 else { throw EvaluationError("kNN needs at least one query") }
    let c = classes ?? ((bank.labels + queries.labels).max() ?? 0) + 1
    let b = bank.l2Normalized(), q = queries.l2Normalized()
    let d = b.dimension
    var hits1 = 0, hits5 = 0
    var sims = [Float](repeating: 0, count: chunk * b.count)
    let blocks = SimilarityBlocks(bank: b.values, count: b.count, dimension: d)
    for start in stride(from: 0, to: q.count, by: chunk) {
        let n = Swift.min(chunk, q.count - start)
        q.values.withUnsafeBufferPointer { qp in sims.withUnsafeMutableBufferPointer { sp in
            blocks.compute(queries: qp.baseAddress! + start * d, count: n, into: sp.baseAddress!)
        } }
        let results = sims.withUnsafeBufferPointer { sp -> [(Bool, Bool)] in
            var out = [(Bool, Bool)](repeating: (false, false), count: n)
            out.withUnsafeMutableBufferPointer { op in
                Threads.parallelFor(n) { _, r in
                    let heap = TopK(k)
                    var scores = [Double](repeating: 0, count: c)
                    for i in r {
                        heap.reset()
                        let row = sp.baseAddress! + i * b.count
                        for j in 0..<k { heap.offer(row[j], j) }
                        // The heap is full: only a value above its minimum enters (every index
                        // in it is lower than j, so an equal value loses the tie).
                        var j = replica_first_above(row, k, b.count, heap.minimum)
                        while j < b.count {
                            heap.offer(row[j], j)
                            j = replica_first_above(row, j + 1, b.count, heap.minimum)
                        }
                        for t in 0..<c { scores[t] = 0 }
                        for (s, j) in heap.items() {
                            scores[b.labels[j]] += weighting == .exponential ? Foundation.exp(Double(s) / Double(temperature)) : 1
                        }
                        // Ties break toward the lower class index (stable ordering).
                        let ranked = (0..<c).sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
                        let y = q.labels[start + i]
                        op[i] = (ranked[0] == y, ranked.prefix(5).contains(y))
                    }
                }
            }
            return out
        }
        for (a, b5) in results { if a { hits1 += 1 }; if b5 { hits5 += 1 } }
    }
    return KNNResult(top1: Double(hits1) / Double(q.count), top5: Double(hits5) / Double(q.count), k: k,
                     temperature: Double(temperature), weighting: weighting)
}

/// The k largest (value, index) pairs seen: a binary min-heap on value (ties: lower index
/// ranks higher, so results do not depend on thread layout).
final class TopK {
    let k: Int
    private let values: UnsafeMutablePointer<Float>, indices: UnsafeMutablePointer<Int>
    private var size = 0

    init(_ k: Int) {
        self.k = k
        values = .allocate(capacity: k); indices = .allocate(capacity: k)
    }
    deinit { values.deallocate(); indices.deallocate() }

    func reset() { size = 0 }

    /// The smallest value held (the next one to go), once the heap holds k items.
    var minimum: Float { values[0] }

    /// Whether slot a ranks below slot b.
    @inline(__always) private func less(_ a: Int, _ b: Int) -> Bool {
        values[a] < values[b] || (values[a] == values[b] && indices[a] > indices[b])
    }

    @inline(__always) private func swapSlots(_ a: Int, _ b: Int) {
        (values[a], values[b]) = (values[b], values[a])
        (indices[a], indices[b]) = (indices[b], indices[a])
    }

    @inline(__always) func offer(_ v: Float, _ i: Int) {
        if size < k {
            values[size] = v; indices[size] = i; size += 1
            var c = size - 1
            while c > 0 { let p = (c - 1) / 2; if less(c, p) { swapSlots(c, p); c = p } else { break } }
        } else if v > values[0] || (v == values[0] && i < indices[0]) {
            values[0] = v; indices[0] = i
            var p = 0
            while true {
                let l = 2 * p + 1, r = l + 1
                var m = p
                if l < size && less(l, m) { m = l }
                if r < size && less(r, m) { m = r }
                if m == p { break }
                swapSlots(p, m); p = m
            }
        }
    }

    func items() -> [(Float, Int)] { (0..<size).map { (values[$0], indices[$0]) } }
}
