import CKernels
import Foundation

// Log-softmax and the standard losses.

/// How a per-element loss is reduced.
public enum Reduction: String, Codable, Sendable { case mean, sum }

extension Tensor {
    /// `x − logsumexp(x)` along `axis`, computed stably.
    public func logSoftmax(axis: Int = -1) -> Tensor {
        let axis = normalizeAxis(axis, rank)
        let (outer, n, inner) = split3(axis)
        let out = Tensor(shape: shape, zeroed: false)
        let x = pointer, y = out.pointer
        let rowGrain = Swift.max(1, elementwiseGrain / Swift.max(n * inner, 1))
        if inner == 1 {   // rows: CKernels (vector exp and log, sums in 16 lanes)
            Threads.parallelFor(outer, grain: rowGrain) { _, r in
                for o in r {
                    let lse = replica_logsumexp_row(x + o * n, n, y + o * n)   // y as scratch, then overwritten
                    for j in 0..<n { y[o * n + j] = x[o * n + j] - lse }
                }
            }
            let ys = out.storage
            return Tensor.result(out, [self]) { g in
                let gx = Tensor(shape: g.shape, zeroed: false)
                let gp = g.pointer, gxp = gx.pointer, yp = ys.pointer
                Threads.parallelFor(outer, grain: rowGrain) { _, r in
                    for o in r { replica_log_softmax_grad_row(gp + o * n, yp + o * n, gxp + o * n, n) }
                }
                return [gx]
            }
        }
        Threads.parallelFor(outer, grain: rowGrain) { _, r in
            for o in r { for i in 0..<inner {
                let base = o * n * inner + i
                var mx = -Float.infinity
                for j in 0..<n { mx = Swift.max(mx, x[base + j * inner]) }
                var s: Float = 0
                for j in 0..<n { s += Foundation.exp(x[base + j * inner] - mx) }
                let lse = mx + Foundation.log(s)
                for j in 0..<n { y[base + j * inner] = x[base + j * inner] - lse }
            } }
        }
        let ys = out.storage
        return Tensor.result(out, [self]) { g in
            // dx = g − softmax · Σg
            let gx = Tensor(shape: g.shape, zeroed: false)
            for o in 0..<outer { for i in 0..<inner {
                let base = o * n * inner + i
                var s: Float = 0
                for j in 0..<n { s += g.pointer[base + j * inner] }
                for j in 0..<n { let k = base + j * inner; gx.pointer[k] = g.pointer[k] - Foundation.exp(ys.pointer[k]) * s }
            } }
            return [gx]
        }
    }
}

/// Cross-entropy of logits [N, C] against class indices: `−log softmax(x)[y]`, reduced.
public func crossEntropy(_ logits: Tensor, labels: [Int], reduction: Reduction = .mean) -> Tensor {
    precondition(logits.rank == 2 && logits.shape[0] == labels.count, "crossEntropy: logits \(logits.shape) for \(labels.count) labels")
    let (n, c) = (logits.shape[0], logits.shape[1])
    for y in labels { precondition(y >= 0 && y < c, "crossEntropy: label \(y) outside 0..<\(c)") }
    let logp = logits.logSoftmax(axis: 1)
    let picked = logp.gather(axis: 1, index: labels, indexShape: [n, 1])
    let total = -picked.sum()
    return reduction == .mean ? total * (1 / Float(n)) : total
}

/// Binary cross-entropy on logits: `softplus(x) − x·t` (= max(x, 0) − x·t + log(1 + e^−|x|)), reduced.
/// `targets` are constants (no gradient flows to them).
public func binaryCrossEntropyWithLogits(_ logits: Tensor, targets: Tensor, reduction: Reduction = .mean) -> Tensor {
    precondition(logits.shape == targets.shape, "binaryCrossEntropyWithLogits: logits \(logits.shape), targets \(targets.shape)")
    let x = logits.pointer, t = targets.pointer, count = logits.count
    // Σ softplus(x) − x·t (CKernels, in double), per chunk, then the chunks in order.
    let chunks = Threads.chunkCount(count, grain: elementwiseGrain)
    var partials = [Double](repeating: 0, count: chunks)
    partials.withUnsafeMutableBufferPointer { pb in
        let pp = pb.baseAddress!
        Threads.parallelFor(count, grain: elementwiseGrain) { chunk, r in
            pp[chunk] = replica_bce_logits_sum(x + r.lowerBound, t + r.lowerBound, r.count)
        }
    }
    let total = partials.reduce(0, +)
    let scale: Float = reduction == .mean ? 1 / Float(count) : 1
    let out = Tensor(scalar: Float(total) * scale)
    return Tensor.result(out, [logits]) { g in
        let gx = Tensor(shape: logits.shape, zeroed: false)
        let k = g.item * scale, gxp = gx.pointer
        Threads.parallelFor(count, grain: elementwiseGrain) { _, r in
            replica_bce_logits_grad(x + r.lowerBound, t + r.lowerBound, gxp + r.lowerBound, r.count, k)
        }
        return [gx]
    }
}

/// Mean (or summed) squared error.
public func meanSquaredError(_ a: Tensor, _ b: Tensor, reduction: Reduction = .mean) -> Tensor {
    let d = a - b
    return reduction == .mean ? (d * d).mean() : (d * d).sum()
}
