import CKernels
import Foundation

// Reductions over axes. Each primitive reduces one axis viewed as [outer, n, inner];
// several axes compose (sum, max and logsumexp all factor over axes).

extension Tensor {
    /// (outer, n, inner) for `axis`.
    func split3(_ axis: Int) -> (Int, Int, Int) {
        let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
        return (outer, shape[axis], inner)
    }

    func reducedShape(_ axis: Int, keepDims: Bool) -> [Int] {
        var s = shape
        if keepDims { s[axis] = 1 } else { s.remove(at: axis) }
        return s
    }

    /// Sum over one axis.
    public func sum(axis: Int, keepDims: Bool = false) -> Tensor {
        let axis = normalizeAxis(axis, rank)
        let (outer, n, inner) = split3(axis)
        let out = Tensor(shape: reducedShape(axis, keepDims: keepDims), zeroed: false)
        let x = pointer, y = out.pointer
        Threads.parallelFor(outer, grain: Swift.max(1, elementwiseGrain / Swift.max(n * inner, 1))) { _, r in
            for o in r {
                let src = x + o * n * inner, dst = y + o * inner
                if inner == 1 {
                    var acc: Float = 0
                    for j in 0..<n { acc += src[j] }
                    dst[0] = acc
                } else {
                    dst.update(from: src, count: inner)
                    for j in 1..<Swift.max(n, 1) { let row = src + j * inner; for i in 0..<inner { dst[i] += row[i] } }
                    if n == 0 { dst.update(repeating: 0, count: inner) }
                }
            }
        }
        let inShape = shape
        return Tensor.result(out, [self]) { g in [g.expandAlong(axis, n, to: inShape)] }
    }

    /// Repeats a gradient reduced over `axis` back to `shape` (sum's backward).
    func expandAlong(_ axis: Int, _ n: Int, to shape: [Int]) -> Tensor {
        let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
        let out = Tensor(shape: shape, zeroed: false)
        let g = pointer, o = out.pointer
        for a in 0..<outer { for j in 0..<n { (o + (a * n + j) * inner).update(from: g + a * inner, count: inner) } }
        return out
    }

    /// Sum over `axes` (all axes when nil).
    public func sum(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let list = (axes ?? Array(0..<rank)).map { normalizeAxis($0, rank) }
        if list.isEmpty { return self }
        var t = self
        for a in Set(list).sorted() { t = t.sum(axis: a, keepDims: true) }
        return keepDims ? t : t.reshaped(shape.enumerated().filter { !list.contains($0.offset) }.map(\.element))
    }

    /// Mean over `axes` (all axes when nil).
    public func mean(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let list = Set((axes ?? Array(0..<rank)).map { normalizeAxis($0, rank) })
        let n = list.reduce(1) { $0 * shape[$1] }
        return sum(axes: Array(list), keepDims: keepDims) * (1 / Float(n))
    }

    public func mean(axis: Int, keepDims: Bool = false) -> Tensor { mean(axes: [axis], keepDims: keepDims) }

    /// Σ x² over every element, in Double, outside autograd (gradient norms): eight
    /// interleaved partial sums in a C kernel, the same bits on every instruction set.
    public func sumOfSquares() -> Double { replica_sum_squares(pointer, count) }

    /// Maximum over one axis; the gradient goes to the first maximal element (as PyTorch's
    /// `Swift.max(dim)`).
    public func max(axis: Int, keepDims: Bool = false) -> Tensor {
        let axis = normalizeAxis(axis, rank)
        let (outer, n, inner) = split3(axis)
        precondition(n > 0, "max over an empty axis")
        let out = Tensor(shape: reducedShape(axis, keepDims: keepDims), zeroed: false)
        var arg = [Int32](repeating: 0, count: outer * inner)
        let x = pointer, y = out.pointer
        arg.withUnsafeMutableBufferPointer { ap in
            let a = ap.baseAddress!
            for o in 0..<outer {
                for i in 0..<inner {
                    var best = x[o * n * inner + i], bi: Int32 = 0
                    for j in 1..<n where x[(o * n + j) * inner + i] > best { best = x[(o * n + j) * inner + i]; bi = Int32(j) }
                    y[o * inner + i] = best; a[o * inner + i] = bi
                }
            }
        }
        let inShape = shape
        return Tensor.result(out, [self]) { g in
            let gx = Tensor.zeros(inShape)
            for o in 0..<outer { for i in 0..<inner { gx.pointer[(o * n + Int(arg[o * inner + i])) * inner + i] = g.pointer[o * inner + i] } }
            return [gx]
        }
    }

    /// Maximum over `axes` (all when nil).
    public func max(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let list = Set((axes ?? Array(0..<rank)).map { normalizeAxis($0, rank) })
        var t = self
        for a in list.sorted() { t = t.max(axis: a, keepDims: true) }
        return keepDims ? t : t.reshaped(shape.enumerated().filter { !list.contains($0.offset) }.map(\.element))
    }

    /// `log Σ exp(x)` over one axis, shifted by the maximum for stability.
    public func logsumexp(axis: Int, keepDims: Bool = false) -> Tensor {
        let axis = normalizeAxis(axis, rank)
        let (outer, n, inner) = split3(axis)
        let out = Tensor(shape: reducedShape(axis, keepDims: keepDims), zeroed: false)
        let x = pointer, y = out.pointer
        if inner == 1 {   // rows: CKernels (vector exp and log, sums in 16 lanes)
            let rowGrain = Swift.max(1, elementwiseGrain / Swift.max(n, 1))
            Threads.parallelFor(outer, grain: rowGrain) { _, r in
                let tmp = UnsafeMutablePointer<Float>.allocate(capacity: n)
                defer { tmp.deallocate() }
                for o in r { y[o] = replica_logsumexp_row(x + o * n, n, tmp) }
            }
            let ys = out.storage, inShape = shape
            return Tensor.result(out, [self]) { g in   // d/dx_j = softmax_j = exp(x_j − lse)
                let gx = Tensor(shape: inShape, zeroed: false)
                let gxp = gx.pointer
                Threads.parallelFor(outer, grain: rowGrain) { _, r in
                    for o in r {
                        let lse = ys.pointer[o], gv = g.pointer[o], row = gxp + o * n
                        for j in 0..<n { row[j] = x[o * n + j] - lse }
                        replica_map(REPLICA_MAP_EXP, row, row, n)
                        for j in 0..<n { row[j] *= gv }
                    }
                }
                return [gx]
            }
        }
        for o in 0..<outer {
            for i in 0..<inner {
                var m = -Float.infinity
                for j in 0..<n { m = Swift.max(m, x[(o * n + j) * inner + i]) }
                var s: Float = 0
                for j in 0..<n { s += Foundation.exp(x[(o * n + j) * inner + i] - m) }
                y[o * inner + i] = m.isFinite ? m + Foundation.log(s) : m
            }
        }
        let ys = out.storage, inShape = shape
        return Tensor.result(out, [self]) { g in
            // d/dx_j = softmax_j = exp(x_j - lse).
            let gx = Tensor(shape: inShape, zeroed: false)
            for o in 0..<outer {
                for i in 0..<inner {
                    let lse = ys.pointer[o * inner + i], gv = g.pointer[o * inner + i]
                    for j in 0..<n { let k = (o * n + j) * inner + i; gx.pointer[k] = gv * Foundation.exp(x[k] - lse) }
                }
            }
            return [gx]
        }
    }

    /// `log Σ exp(x)` over `axes`.
    public func logsumexp(axes: [Int], keepDims: Bool = false) -> Tensor {
        let list = Set(axes.map { normalizeAxis($0, rank) })
        var t = self
        for a in list.sorted() { t = t.logsumexp(axis: a, keepDims: true) }
        return keepDims ? t : t.reshaped(shape.enumerated().filter { !list.contains($0.offset) }.map(\.element))
    }
}
