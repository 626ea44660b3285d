import CKernels
import Foundation

// conv2d for small maps with many channels: one product per output pixel and kernel row.
//
// For a 4 × 4 output, im2col + GEMM multiplies about 30 % zeros (the taps that fall on the
// padding of a 7 × 7 input) and moves nine copies of the input. Here the samples are the
// rows instead. With the input channels last ([N, H, W, C]), the taps (ki, kj…kj + r − 1)
// of one kernel row that land inside the input read r consecutive pixels, which for every
// sample is one block of r·C floats: a strided [samples, r·C] matrix. The output of pixel
// p, [samples, O], is the sum over its kernel rows of that matrix times the rows' [r·C, O]
// weights (the weights tap-major, [kh·kw, C, O]): at most kh sgemms per pixel, no copies
// of the input beyond the transposition, and no products with the padding. The same
// values as the im2col path up to the order of the sums.

extension ConvGeometry {
    /// Small maps with enough channels for each product to run near peak, and enough
    /// samples for its rows; `Kernels.convPath` overrides. Measured at 2 threads on AMD
    /// Zen 5 (forward, forward + backward): R2's 7 × 7 → 4 × 4, 128 → 256 channels, batch
    /// 256: 7.3 → 5.4 ms and 26.5 → 17.0 ms; its 14 × 14 → 7 × 7, 64 → 128 (49 pixels)
    /// stays on im2col (6.1 against 8.9 ms, 23.5 against 28.3).
    func usesTaps(samples: Int, outputs: Int) -> Bool {
        switch Kernels.convPath {
        case .im2col: return false
        case .taps: return true
        case .auto: return pixels <= 16 && c >= 64 && outputs >= 64 && samples >= 64
        }
    }

    /// For each output pixel, the runs of taps that land inside the input, one per kernel
    /// row: the first tap (ki·kw + kj), the input pixel under it and how many taps follow
    /// along the row. The taps of a run read consecutive input pixels, which channels-last
    /// are one block of `count · c` floats, and their [C, O] weights are consecutive too.
    func tapRuns() -> [[TapRun]] {
        (0..<pixels).map { pixel in
            let oy = pixel / wo, ox = pixel % wo
            var out: [TapRun] = []
            for ki in 0..<kh {
                let iy = oy * stride - pad + ki
                if iy < 0 || iy >= h { continue }
                let kj = validKernelColumns(ox)
                if kj.isEmpty { continue }
                let run = TapRun(tap: ki * kw + kj.lowerBound, q: iy * w + ox * stride - pad + kj.lowerBound, count: kj.count)
                checkBounds(Kernels.boundsChecks, run.q + run.count, within: (iy + 1) * w, "conv taps")   // the run stays in row iy
                out.append(run)
            }
            return out
        }
    }

    /// The kernel columns kj whose input column ox·stride − pad + kj lies in 0..<w.
    func validKernelColumns(_ ox: Int) -> Range<Int> {
        let lo = Swift.max(0, pad - ox * stride), hi = Swift.min(kw, w + pad - ox * stride)
        return lo < hi ? lo..<hi : 0..<0
    }
}

struct TapRun { let tap, q, count: Int }

/// `count` consecutive [rows, cols] matrices, each transposed into [cols, rows].
@inline(__always)
func transposePlanes(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int, rows: Int, cols: Int) {
    for s in 0..<count { replica_transpose(src + s * rows * cols, rows, cols, cols, dst + s * rows * cols, rows) }
}

/// conv2d by taps (see the top of this file); `out` [N, O, ho, wo] is uninitialized.
///
/// Forward, per block of samples: x → channels last (`xt`, kept for the backward pass),
/// one sgemm per (output pixel, tap run) into [samples, pixels, O], back to NCHW. Backward:
/// the incoming gradient channels last, dX by the transposed products per block of
/// samples, dW per block of output channels over all samples (each thread owns its
/// columns of dW, so no partial sums).
func conv2dByTaps(_ x: Tensor, weight: Tensor, bias: Tensor?, out: Tensor, _ g: ConvGeometry, then affine: ChannelAffine?) -> Tensor {
    let n = x.shape[0], o = weight.shape[0], c = g.c, taps = g.kh * g.kw, p = g.pixels, hw = g.h * g.w
    let runs = g.tapRuns()
    // The weights as [O, taps, C] (dX's right-hand side) and [taps, C, O] (the forward's).
    let wot = Storage(count: o * taps * c, zeroed: false), wt = Storage(count: taps * c * o, zeroed: false)
    for oc in 0..<o { replica_transpose(weight.pointer + oc * c * taps, c, taps, taps, wot.pointer + oc * taps * c, c) }
    for t in 0..<taps { replica_transpose(wot.pointer + t * c, o, c, taps * c, wt.pointer + t * c * o, o) }
    let xt = Storage(count: n * hw * c, zeroed: false)
    let xp = x.pointer, yp = out.pointer, xtp = xt.pointer
    Threads.parallelFor(n) { _, r in
        withScratch([r.count * p * o]) { b in
            let yt = b[0], ns = r.count, first = r.lowerBound
            transposePlanes(xp + first * c * hw, xtp + first * hw * c, count: ns, rows: c, cols: hw)
            for (pixel, list) in runs.enumerated() {
                if list.isEmpty { for s in 0..<ns { (yt + (s * p + pixel) * o).initialize(repeating: 0, count: o) } }
                for (i, t) in list.enumerated() {
                    gemm(m: ns, n: o, k: t.count * c, a: xtp + (first * hw + t.q) * c, lda: hw * c, b: wt.pointer + t.tap * c * o, ldb: o,
                         beta: i == 0 ? 0 : 1, c: yt + pixel * o, ldc: p * o, parallel: false)
                }
            }
            transposePlanes(yt, yp + first * o * p, count: ns, rows: p, cols: o)
            if let affine {
                for s in r { finishOutput(yp + s * o * p, ld: p, into: yp + s * o * p, channels: o, pixels: p, bias: bias?.pointer, affine) }
            }
        }
    }
    if let bias, affine == nil { addChannelBias(yp, bias.pointer, n: n, channels: o, pixels: p) }

    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    return Tensor.result(out, inputs) { grad in
        let xtp = xt.pointer   // keeps xt alive with the graph
        let gyt = Storage(count: n * p * o, zeroed: false), gy = gyt.pointer
        let gx = x.requiresGrad ? Tensor(shape: x.shape, zeroed: false) : nil
        Threads.parallelFor(n) { _, r in
            let ns = r.count, first = r.lowerBound
            transposePlanes(grad.pointer + first * o * p, gy + first * p * o, count: ns, rows: o, cols: p)
            guard let gx else { return }
            withScratch([ns * hw * c]) { b in   // dX channels last: Σ over pixels and runs of G_p · W_runᵀ
                let dxt = b[0]
                dxt.initialize(repeating: 0, count: ns * hw * c)
                for (pixel, list) in runs.enumerated() { for t in list {
                    gemm(m: ns, n: t.count * c, k: o, a: gy + (first * p + pixel) * o, lda: p * o, b: wot.pointer + t.tap * c, ldb: taps * c,
                         beta: 1, c: dxt + t.q * c, ldc: hw * c, parallel: false)
                } }
                transposePlanes(dxt, gx.pointer + first * c * hw, count: ns, rows: hw, cols: c)
            }
        }
        var gw: Tensor?
        if weight.requiresGrad {   // dW as [taps, C, O]: Σ over pixels and runs of X_runᵀ · G_p, per block of columns
            let dwt = Storage(count: taps * c * o)
            Threads.parallelFor(o, grain: 32) { _, cols in
                for (pixel, list) in runs.enumerated() { for t in list {
                    gemm(transA: true, m: t.count * c, n: cols.count, k: n, a: xtp + t.q * c, lda: hw * c, b: gy + pixel * o + cols.lowerBound, ldb: p * o,
                         beta: 1, c: dwt.pointer + t.tap * c * o + cols.lowerBound, ldc: o, parallel: false)
                } }
            }
            let w = Tensor(shape: weight.shape, zeroed: false), dwot = Storage(count: o * taps * c, zeroed: false)
            for t in 0..<taps { replica_transpose(dwt.pointer + t * c * o, c, o, o, dwot.pointer + t * c, taps * c) }   // → [O, taps, C]
            for oc in 0..<o { replica_transpose(dwot.pointer + oc * taps * c, taps, c, c, w.pointer + oc * c * taps, taps) }
            gw = w
        }
        let gb = bias.flatMap { $0.requiresGrad ? channelSums(grad, channels: o) : nil }
        return bias == nil ? [gx, gw] : [gx, gw, gb]
    }
}
