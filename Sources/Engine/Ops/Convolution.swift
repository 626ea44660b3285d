import CKernels
import Foundation

// conv2d and conv-transpose2d (NCHW, PyTorch layouts) via im2col + GEMM.
//
// Work is split over samples: each thread takes a contiguous block of the batch, lays out
// a group of samples side by side (columns = group × output pixels) so each sgemm is wide
// enough to run near peak, and keeps its own weight-gradient partial, summed in thread
// order afterwards (deterministic for a given thread count).

/// Geometry of a convolution from a [c, h, w] image to a [·, ho, wo] map.
struct ConvGeometry {
    let c, h, w, kh, kw, stride, pad, ho, wo: Int
    var rows: Int { c * kh * kw }      // rows of the column matrix
    var pixels: Int { ho * wo }        // columns per sample
    var imageSize: Int { c * h * w }
    /// Scratch floats `im2col` needs for one zero-padded channel plane.
    var paddedPlane: Int { (h + 2 * pad) * (w + 2 * pad) }
}

/// The output columns `ox` whose input column `ox·stride − pad + k` lies in `0..<size`.
@inline(__always)
func validRange(_ k: Int, size: Int, out: Int, stride: Int, pad: Int) -> Range<Int> {
    // ox·s ≥ pad − k  and  ox·s ≤ size − 1 + pad − k
    let lo = pad - k <= 0 ? 0 : (pad - k + stride - 1) / stride
    let top = size - 1 + pad - k
    let hi = top < 0 ? 0 : Swift.min(out, top / stride + 1)
    return lo < hi ? lo..<hi : 0..<0
}

/// Column matrix rows `(c, ki, kj)`, columns `0..<pixels` at row stride `ld`.
///
/// Each channel is first copied into the interior of the zero-padded plane `padded`
/// (`g.paddedPlane` floats of the caller's scratch, zeroed once by `zeroedPlane`: the
/// border is never written), so every output row is a plain strided copy with no
/// border tests; the rows are then moved by `replica_im2col_plane` (CKernels: masked vector
/// loads and stores on AVX-512, where the rows of strided layers hold only 4–14 values).
@inline(__always)
func im2col(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, ld: Int, _ g: ConvGeometry, padded: UnsafeMutablePointer<Float>) {
    let s = g.stride, ph = g.h + 2 * g.pad, pw = g.w + 2 * g.pad
    // The last element any row reads, checked once for the plane.
    checkBounds(Kernels.boundsChecks, ((g.ho - 1) * s + g.kh - 1) * pw + g.kw - 1 + (g.wo - 1) * s + 1, within: ph * pw, "im2col")
    for c in 0..<g.c {
        for y in 0..<g.h { (padded + (y + g.pad) * pw + g.pad).update(from: x + (c * g.h + y) * g.w, count: g.w) }
        replica_im2col_plane(padded, pw, Int32(g.kh), Int32(g.kw), Int32(s), Int32(g.ho), Int32(g.wo), col + c * g.kh * g.kw * ld, ld)
    }
}

/// `padded` (`g.paddedPlane` floats) zero-filled, for `im2col`.
@inline(__always)
func zeroedPlane(_ padded: UnsafeMutablePointer<Float>, _ g: ConvGeometry) -> UnsafeMutablePointer<Float> {
    padded.initialize(repeating: 0, count: g.paddedPlane)
    return padded
}

/// Adds a column matrix back into an image (the adjoint of `im2col`), one channel plane at
/// a time by `replica_col2im_plane`, which adds in the plain loops' order (the same bits on
/// every instruction set).
@inline(__always)
func col2im(_ col: UnsafePointer<Float>, ld: Int, _ x: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
    let s = g.stride
    if Kernels.boundsChecks {   // the furthest element each (ki, kj) writes, within one plane
        for ki in 0..<g.kh {
            let rows = validRange(ki, size: g.h, out: g.ho, stride: s, pad: g.pad)
            for kj in 0..<g.kw {
                let cols = validRange(kj, size: g.w, out: g.wo, stride: s, pad: g.pad)
                if rows.isEmpty || cols.isEmpty { continue }
                checkBounds(true, ((rows.upperBound - 1) * s - g.pad + ki) * g.w + kj - g.pad + (cols.upperBound - 1) * s + 1, within: g.h * g.w, "col2im")
            }
        }
    }
    for c in 0..<g.c {
        replica_col2im_plane(col + c * g.kh * g.kw * ld, ld, x + c * g.h * g.w, Int32(g.h), Int32(g.w), Int32(g.kh), Int32(g.kw),
                             Int32(s), Int32(g.pad), Int32(g.ho), Int32(g.wo))
    }
}

/// Samples laid side by side per group so that group × pixels is about 512 columns (measured best on R2/R6: the column block stays in L2).
func groupSize(pixels: Int, rows: Int, samples: Int) -> Int {
    let byWidth = max(1, (512 + pixels - 1) / pixels)
    let byMemory = max(1, (4 << 20) / max(rows * pixels, 1))   // column buffer ≤ 16 MB
    return max(1, min(byWidth, byMemory, samples))
}

/// Copies `gs` consecutive [channels, pixels] planes into one [channels, gs·pixels] matrix.
@inline(__always)
func packGroup(_ src: UnsafePointer<Float>, channels: Int, pixels: Int, gs: Int, into dst: UnsafeMutablePointer<Float>) {
    for s in 0..<gs { for ch in 0..<channels {
        (dst + ch * gs * pixels + s * pixels).update(from: src + (s * channels + ch) * pixels, count: pixels)
    } }
}

/// The inverse of `packGroup`.
@inline(__always)
func unpackGroup(_ src: UnsafePointer<Float>, channels: Int, pixels: Int, gs: Int, into dst: UnsafeMutablePointer<Float>) {
    for s in 0..<gs { for ch in 0..<channels {
        (dst + (s * channels + ch) * pixels).update(from: src + ch * gs * pixels + s * pixels, count: pixels)
    } }
}

/// One sample's output, [O, pixels] with channel stride `ld` at `src`, into its NCHW planes
/// at `dst` (which may be `src` when `ld` is `pixels`): plus the bias, then the affine.
@inline(__always)
func finishOutput(_ src: UnsafeMutablePointer<Float>, ld: Int, into dst: UnsafeMutablePointer<Float>, channels: Int, pixels: Int,
                  bias: UnsafePointer<Float>?, _ affine: ChannelAffine) {
    for ch in 0..<channels {
        let s = src + ch * ld
        if let bias { let b = bias[ch]; for i in 0..<pixels { s[i] += b } }
        ChannelAffine.apply(s, dst + ch * pixels, count: pixels, scale: affine.scale[ch], shift: affine.shift[ch], relu: affine.relu)
    }
}

/// Per-sample blocks of work in groups: calls `body(first, count)` for consecutive groups.
@inline(__always)
func forEachGroup(_ r: Range<Int>, _ group: Int, _ body: (Int, Int) -> Void) {
    var start = r.lowerBound
    while start < r.upperBound { let gs = min(group, r.upperBound - start); body(start, gs); start += gs }
}

/// Runs `body` with uninitialized scratch buffers of the given sizes, freed afterwards.
@inline(__always)
func withScratch(_ counts: [Int], _ body: ([UnsafeMutablePointer<Float>]) -> Void) {
    let buffers = counts.map { n -> UnsafeMutablePointer<Float> in
        guard let p = replica_buffer_alloc(Swift.max(n, 1) * 4) else { fatalError("out of memory: \(n) floats of convolution scratch") }
        return p.bindMemory(to: Float.self, capacity: Swift.max(n, 1))
    }
    defer { for (b, n) in zip(buffers, counts) { replica_buffer_free(b, Swift.max(n, 1) * 4) } }
    body(buffers)
}

/// Sums per-thread partials (in thread order) into `dst`.
func sumPartials(_ partials: [Storage], into dst: UnsafeMutablePointer<Float>, count: Int) {
    dst.update(from: partials[0].pointer, count: count)
    for p in partials.dropFirst() { for i in 0..<count { dst[i] += p.pointer[i] } }
}

/// Adds bias[c] to every pixel of channel c.
func addChannelBias(_ y: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, n: Int, channels: Int, pixels: Int) {
    Threads.parallelFor(n) { _, r in
        for s in r { for c in 0..<channels { let p = y + (s * channels + c) * pixels, v = b[c]; for i in 0..<pixels { p[i] += v } } }
    }
}

/// Sum of a [N, C, pixels] gradient over N and pixels: the bias gradient.
func channelSums(_ g: Tensor, channels: Int) -> Tensor {
    let n = g.shape[0], pixels = g.count / max(n * channels, 1)
    let out = Tensor.zeros([channels])
    let gp = g.pointer, op = out.pointer
    // Each channel in one chunk: Σ over samples of the plane sums (16 lanes), in order.
    Threads.parallelFor(channels, grain: Swift.max(1, elementwiseGrain / Swift.max(n * pixels, 1))) { _, r in
        for c in r { for s in 0..<n { op[c] += replica_plane_sum(gp + (s * channels + c) * pixels, pixels) } }
    }
    return out
}

/// 2-D convolution (cross-correlation, as PyTorch): x [N, C, H, W], weight [O, C, kh, kw],
/// bias [O] → [N, O, (H + 2p − kh)/s + 1, (W + 2p − kw)/s + 1].
///
/// `then:` applies a per-channel affine (evaluation-mode batch norm, optionally with its
/// ReLU) to each block of the output while it is in cache; it needs gradients off.
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0, then affine: ChannelAffine? = nil) -> Tensor {
    precondition(x.rank == 4 && weight.rank == 4 && x.shape[1] == weight.shape[1],
                 "conv2d: input \(x.shape) for weight \(weight.shape) (need [N, C, H, W] and [O, C, kh, kw])")
    precondition(stride >= 1 && padding >= 0, "conv2d: stride \(stride), padding \(padding)")
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (o, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
    let ho = windowCount(h, kernel: kh, stride: stride, padding: padding), wo = windowCount(w, kernel: kw, stride: stride, padding: padding)
    precondition(ho > 0 && wo > 0, "conv2d: kernel \(kh)x\(kw) larger than padded input \(h)x\(w)")
    if let bias { precondition(bias.shape == [o], "conv2d: bias \(bias.shape) for \(o) channels") }
    if let affine {
        precondition(!GradMode.isEnabled, "conv2d: a fused affine (then:) needs gradients off (withoutGradients)")
        precondition(affine.scale.count == o && affine.shift.count == o, "conv2d: affine of \(affine.scale.count) channels for \(o)")
    }
    let geo = ConvGeometry(c: c, h: h, w: w, kh: kh, kw: kw, stride: stride, pad: padding, ho: ho, wo: wo)
    let (rows, pixels) = (geo.rows, geo.pixels)
    let group = groupSize(pixels: pixels, rows: rows, samples: max(1, n / Threads.chunkCount(n)))
    let out = Tensor(shape: [n, o, ho, wo], zeroed: false)
    let xp = x.pointer, wp = weight.pointer, yp = out.pointer
    if geo.usesTaps(samples: n, outputs: o) {
        return conv2dByTaps(x, weight: weight, bias: bias, out: out, geo, then: affine)
    }
    let bp = bias?.pointer

    Threads.parallelFor(n) { _, r in
        withScratch([rows * group * pixels, group > 1 ? o * group * pixels : 0, geo.paddedPlane]) { buffers in
            let (col, tmp, padded) = (buffers[0], buffers[1], zeroedPlane(buffers[2], geo))
            forEachGroup(r, group) { start, gs in
                let cols = gs * pixels
                for s in 0..<gs { im2col(xp + (start + s) * geo.imageSize, col + s * pixels, ld: cols, geo, padded: padded) }
                let dst = gs == 1 ? yp + start * o * pixels : tmp
                gemm(m: o, n: cols, k: rows, a: wp, lda: rows, b: col, ldb: cols, c: dst, ldc: cols, parallel: false)
                if let affine {
                    for s in 0..<gs {
                        finishOutput(dst + s * pixels, ld: cols, into: yp + (start + s) * o * pixels, channels: o, pixels: pixels, bias: bp, affine)
                    }
                } else if gs > 1 {
                    unpackGroup(dst, channels: o, pixels: pixels, gs: gs, into: yp + start * o * pixels)
                }
            }
        }
    }
    if let bias, affine == nil { addChannelBias(yp, bias.pointer, n: n, channels: o, pixels: pixels) }

    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    return Tensor.result(out, inputs) { g in
        // dX is zeroed one image at a time, just before col2im adds into it (in cache then).
        let gx = x.requiresGrad ? Tensor(shape: x.shape, zeroed: false) : nil
        let gw = weight.requiresGrad ? Tensor(shape: weight.shape, zeroed: false) : nil
        let chunks = Threads.chunkCount(n)
        let partials = (0..<chunks).map { _ in Storage(count: gw == nil ? 0 : o * rows) }
        let gp = g.pointer
        Threads.parallelFor(n) { chunk, r in
          withScratch([rows * group * pixels, group > 1 ? o * group * pixels : 0, gx == nil ? 0 : rows * group * pixels, geo.paddedPlane]) { buffers in
            let (col, gtmp, dcol, padded) = (buffers[0], buffers[1], buffers[2], zeroedPlane(buffers[3], geo))
            forEachGroup(r, group) { start, gs in
                let cols = gs * pixels
                var gy = gp + start * o * pixels
                if gs > 1 { packGroup(gy, channels: o, pixels: pixels, gs: gs, into: gtmp); gy = gtmp }
                if gw != nil {   // dW += G · colᵀ
                    for s in 0..<gs { im2col(xp + (start + s) * geo.imageSize, col + s * pixels, ld: cols, geo, padded: padded) }
                    gemm(transB: true, m: o, n: rows, k: cols, a: gy, lda: cols, b: col, ldb: cols,
                         beta: 1, c: partials[chunk].pointer, ldc: rows, parallel: false)
                }
                if let gx {      // dcol = Wᵀ · G, then scatter back into the image
                    gemm(transA: true, m: rows, n: cols, k: o, a: wp, lda: rows, b: gy, ldb: cols, c: dcol, ldc: cols, parallel: false)
                    for s in 0..<gs {
                        let image = gx.pointer + (start + s) * geo.imageSize
                        image.initialize(repeating: 0, count: geo.imageSize)
                        col2im(dcol + s * pixels, ld: cols, image, geo)
                    }
                }
            }
          }
        }
        if let gw { sumPartials(partials, into: gw.pointer, count: o * rows) }
        let gb = bias.flatMap { $0.requiresGrad ? channelSums(g, channels: o) : nil }
        return bias == nil ? [gx, gw] : [gx, gw, gb]
    }
}

/// Transposed convolution (the adjoint of conv2d, as PyTorch's ConvTranspose2d):
/// x [N, Cin, H, W], weight [Cin, Cout, kh, kw], bias [Cout] →
/// [N, Cout, (H − 1)s − 2p + kh + outputPadding, …].
public func convTranspose2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0, outputPadding: Int = 0) -> Tensor {
    precondition(x.rank == 4 && weight.rank == 4 && x.shape[1] == weight.shape[0],
                 "convTranspose2d: input \(x.shape) for weight \(weight.shape) (need [N, Cin, H, W] and [Cin, Cout, kh, kw])")
    precondition(stride >= 1 && padding >= 0 && outputPadding >= 0 && outputPadding < stride,
                 "convTranspose2d: stride \(stride), padding \(padding), output padding \(outputPadding)")
    let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (cout, kh, kw) = (weight.shape[1], weight.shape[2], weight.shape[3])
    let ho = (h - 1) * stride - 2 * padding + kh + outputPadding, wo = (w - 1) * stride - 2 * padding + kw + outputPadding
    precondition(ho > 0 && wo > 0, "convTranspose2d: empty output")
    if let bias { precondition(bias.shape == [cout], "convTranspose2d: bias \(bias.shape) for \(cout) channels") }
    // The conv whose input is our output and whose output is our input.
    let geo = ConvGeometry(c: cout, h: ho, w: wo, kh: kh, kw: kw, stride: stride, pad: padding, ho: h, wo: w)
    let (rows, pixels) = (geo.rows, geo.pixels)
    let group = groupSize(pixels: pixels, rows: rows, samples: max(1, n / Threads.chunkCount(n)))
    let out = Tensor(shape: [n, cout, ho, wo], zeroed: false)   // each image zeroed just before col2im adds into it
    let xp = x.pointer, wp = weight.pointer, yp = out.pointer

    Threads.parallelFor(n) { _, r in
        withScratch([rows * group * pixels, group > 1 ? cin * group * pixels : 0]) { buffers in
            let (col, xtmp) = (buffers[0], buffers[1])
            forEachGroup(r, group) { start, gs in
                let cols = gs * pixels
                var xs = xp + start * cin * pixels
                if gs > 1 { packGroup(xs, channels: cin, pixels: pixels, gs: gs, into: xtmp); xs = xtmp }
                gemm(transA: true, m: rows, n: cols, k: cin, a: wp, lda: rows, b: xs, ldb: cols, c: col, ldc: cols, parallel: false)
                for s in 0..<gs {
                    let image = yp + (start + s) * geo.imageSize
                    image.initialize(repeating: 0, count: geo.imageSize)
                    col2im(col + s * pixels, ld: cols, image, geo)
                }
            }
        }
    }
    if let bias { addChannelBias(yp, bias.pointer, n: n, channels: cout, pixels: ho * wo) }

    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    return Tensor.result(out, inputs) { g in
        let gx = x.requiresGrad ? Tensor(shape: x.shape, zeroed: false) : nil
        let gw = weight.requiresGrad ? Tensor(shape: weight.shape, zeroed: false) : nil
        let chunks = Threads.chunkCount(n)
        let partials = (0..<chunks).map { _ in Storage(count: gw == nil ? 0 : cin * rows) }
        let gp = g.pointer
        Threads.parallelFor(n) { chunk, r in
          withScratch([rows * group * pixels, group > 1 ? cin * group * pixels : 0, group > 1 && gx != nil ? cin * group * pixels : 0, geo.paddedPlane]) { buffers in
            let (col, xtmp, dxtmp, padded) = (buffers[0], buffers[1], buffers[2], zeroedPlane(buffers[3], geo))
            forEachGroup(r, group) { start, gs in
                let cols = gs * pixels
                for s in 0..<gs { im2col(gp + (start + s) * geo.imageSize, col + s * pixels, ld: cols, geo, padded: padded) }
                if let gx {      // dX = W · col(G)
                    let dst = gs == 1 ? gx.pointer + start * cin * pixels : dxtmp
                    gemm(m: cin, n: cols, k: rows, a: wp, lda: rows, b: col, ldb: cols, c: dst, ldc: cols, parallel: false)
                    if gs > 1 { unpackGroup(dst, channels: cin, pixels: pixels, gs: gs, into: gx.pointer + start * cin * pixels) }
                }
                if gw != nil {   // dW += X · col(G)ᵀ
                    var xs = xp + start * cin * pixels
                    if gs > 1 { packGroup(xs, channels: cin, pixels: pixels, gs: gs, into: xtmp); xs = xtmp }
                    gemm(transB: true, m: cin, n: rows, k: cols, a: xs, lda: cols, b: col, ldb: cols,
                         beta: 1, c: partials[chunk].pointer, ldc: rows, parallel: false)
                }
            }
          }
        }
        if let gw { sumPartials(partials, into: gw.pointer, count: cin * rows) }
        let gb = bias.flatMap { $0.requiresGrad ? channelSums(g, channels: cout) : nil }
        return bias == nil ? [gx, gw] : [gx, gw, gb]
    }
}
