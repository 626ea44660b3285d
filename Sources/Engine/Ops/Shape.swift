import Foundation

// Reshape (a view), permute/transpose, concat, slice, index-select and gather.

extension Tensor {
    /// A view with a new shape; one dimension may be -1 (inferred).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let i = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != i }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            s[i] = count / known
        }
        precondition(s.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        if s == shape { return self }
        let inShape = shape
        return Tensor.result(Tensor(storage: storage, shape: s), [self]) { g in [g.reshaped(inShape)] }
    }

    /// [N, ...] → [N, rest].
    public func flattened(from axis: Int = 1) -> Tensor {
        reshaped(Array(shape[..<axis]) + [shape[axis...].reduce(1, *)])
    }

    /// Axes reordered: result axis i is input axis `order[i]`.
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(order.sorted() == Array(0..<rank), "permutation \(order) for rank \(rank)")
        if order == Array(0..<rank) { return self }
        let outShape = order.map { shape[$0] }
        var inStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * shape[i + 1] }
        let src = order.map { inStrides[$0] }
        let out = Tensor(shape: outShape, zeroed: false)
        let x = pointer, y = out.pointer
        let inner = outShape[rank - 1], innerStride = src[rank - 1]
        let rows = count / Swift.max(inner, 1)
        Threads.parallelFor(rows, grain: Swift.max(1, elementwiseGrain / Swift.max(inner, 1))) { _, r in
            var index = [Int](repeating: 0, count: rank)
            var rem = r.lowerBound
            for d in stride(from: rank - 2, through: 0, by: -1) { index[d] = rem % outShape[d]; rem /= outShape[d] }
            for row in r {
                var off = 0
                for d in 0..<(rank - 1) { off += index[d] * src[d] }
                let o = y + row * inner
                for j in 0..<inner { o[j] = x[off + j * innerStride] }
                var d = rank - 2
                while d >= 0 { index[d] += 1; if index[d] < outShape[d] { break }; index[d] = 0; d -= 1 }
            }
        }
        var inverse = [Int](repeating: 0, count: rank)
        for (i, o) in order.enumerated() { inverse[o] = i }
        return Tensor.result(out, [self]) { g in [g.permuted(inverse)] }
    }

    /// Swaps two axes (the last two by default).
    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(normalizeAxis(a, rank), normalizeAxis(b, rank))
        return permuted(order)
    }

    /// Elements `range` along `axis` (a copy).
    public func slice(axis: Int, _ range: Range<Int>) -> Tensor {
        let axis = normalizeAxis(axis, rank)
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[axis], "slice \(range) out of 0..<\(shape[axis]) on axis \(axis)")
        let (outer, n, inner) = split3(axis)
        var outShape = shape
        outShape[axis] = range.count
        let out = Tensor(shape: outShape, zeroed: false)
        let m = range.count
        for o in 0..<outer {
            (out.pointer + o * m * inner).update(from: pointer + (o * n + range.lowerBound) * inner, count: m * inner)
        }
        let inShape = shape
        return Tensor.result(out, [self]) { g in
            let gx = Tensor.zeros(inShape)
            for o in 0..<outer {
                (gx.pointer + (o * n + range.lowerBound) * inner).update(from: g.pointer + o * m * inner, count: m * inner)
            }
            return [gx]
        }
    }

    /// Splits along `axis` into pieces of the given sizes.
    public func split(axis: Int, sizes: [Int]) -> [Tensor] {
        precondition(sizes.reduce(0, +) == size(axis), "split sizes \(sizes) for axis of size \(size(axis))")
        var start = 0
        return sizes.map { n in defer { start += n }; return slice(axis: axis, start..<(start + n)) }
    }

    /// Joins tensors along `axis`; all other dimensions must agree.
    public static func concat(_ tensors: [Tensor], axis: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concat of no tensors")
        let first = tensors[0], axis = normalizeAxis(axis, first.rank)
        for t in tensors {
            var a = t.shape, b = first.shape
            precondition(a.count == b.count, "concat of ranks \(a.count) and \(b.count)")
            a[axis] = 0; b[axis] = 0
            precondition(a == b, "concat shapes \(t.shape) and \(first.shape) differ off axis \(axis)")
        }
        let sizes = tensors.map { $0.shape[axis] }
        var outShape = first.shape
        outShape[axis] = sizes.reduce(0, +)
        let out = Tensor(shape: outShape, zeroed: false)
        let outer = first.shape[..<axis].reduce(1, *), inner = first.shape[(axis + 1)...].reduce(1, *)
        let total = outShape[axis]
        var offset = 0
        for t in tensors {
            let m = t.shape[axis]
            for o in 0..<outer {
                (out.pointer + (o * total + offset) * inner).update(from: t.pointer + o * m * inner, count: m * inner)
            }
            offset += m
        }
        return result(out, tensors) { g in g.split(axis: axis, sizes: sizes) }
    }

    /// Entries `indices` along `axis` (PyTorch's index_select); the gradient scatter-adds.
    public func indexSelect(axis: Int, _ indices: [Int]) -> Tensor {
        let axis = normalizeAxis(axis, rank)
        let (outer, n, inner) = split3(axis)
        for i in indices { precondition(i >= 0 && i < n, "index \(i) out of 0..<\(n) on axis \(axis)") }
        var outShape = shape
        outShape[axis] = indices.count
        let out = Tensor(shape: outShape, zeroed: false)
        let m = indices.count
        for o in 0..<outer {
            for (k, i) in indices.enumerated() {
                (out.pointer + (o * m + k) * inner).update(from: pointer + (o * n + i) * inner, count: inner)
            }
        }
        let inShape = shape
        return Tensor.result(out, [self]) { g in
            let gx = Tensor.zeros(inShape)
            for o in 0..<outer {
                for (k, i) in indices.enumerated() {
                    let d = gx.pointer + (o * n + i) * inner, s = g.pointer + (o * m + k) * inner
                    for j in 0..<inner { d[j] += s[j] }
                }
            }
            return [gx]
        }
    }

    /// PyTorch's `gather`: `out[..., k, ...] = self[..., index[..., k, ...], ...]` along
    /// `axis`, where `index` has `indexShape` (equal to ours except along `axis`).
    public func gather(axis: Int, index: [Int], indexShape: [Int]) -> Tensor {
        let axis = normalizeAxis(axis, rank)
        precondition(indexShape.count == rank && index.count == indexShape.reduce(1, *), "gather index shape \(indexShape) for \(shape)")
        for d in 0..<rank where d != axis { precondition(indexShape[d] == shape[d], "gather index shape \(indexShape) for \(shape)") }
        let (outer, n, inner) = split3(axis)
        let m = indexShape[axis]
        let out = Tensor(shape: indexShape, zeroed: false)
        for o in 0..<outer {
            for k in 0..<m {
                for i in 0..<inner {
                    let j = index[(o * m + k) * inner + i]
                    precondition(j >= 0 && j < n, "gather index \(j) out of 0..<\(n)")
                    out.pointer[(o * m + k) * inner + i] = pointer[(o * n + j) * inner + i]
                }
            }
        }
        let inShape = shape
        return Tensor.result(out, [self]) { g in
            let gx = Tensor.zeros(inShape)
            for o in 0..<outer {
                for k in 0..<m {
                    for i in 0..<inner {
                        gx.pointer[(o * n + index[(o * m + k) * inner + i]) * inner + i] += g.pointer[(o * m + k) * inner + i]
                    }
                }
            }
            return [gx]
        }
    }
}
