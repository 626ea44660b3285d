import CKernels
import Foundation

// Batch normalization, dropout and l2-normalization.

/// Batch normalization over [N, C] or [N, C, *] with PyTorch's semantics.
///
/// Training: normalizes with the batch mean and biased variance and, when running buffers
/// are given, updates them in place: `running = (1 − momentum)·running + momentum·batch`,
/// using the unbiased variance (×M/(M−1), M = N·spatial) for `runningVar`.
/// Evaluation: normalizes with the running estimates. `relu` fuses a following ReLU (one
/// pass over the activation instead of two; same values and gradients as `.relu()`).
/// `maxPool2x2` (training, with `relu`, [N, C, H, W]) fuses a following 2 × 2, stride-2
/// max-pool and returns the pooled map: the same values and gradients as
/// `.maxPool2d(kernel: 2)` on the result, without the full-size output in memory (each
/// plane is normalized into a scratch plane in cache and pooled from there).
public func batchNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
                      training: Bool, momentum: Float = 0.1, eps: Float = 1e-5, relu: Bool = false, maxPool2x2 pool: Bool = false) -> Tensor {
    precondition(x.rank >= 2, "batchNorm needs [N, C, ...], got \(x.shape)")
    precondition(!pool || (training && relu && x.rank == 4 && x.shape[2] >= 2 && x.shape[3] >= 2),
                 "batchNorm: the fused max-pool needs training mode, the ReLU and [N, C, H ≥ 2, W ≥ 2], got \(x.shape)")
    let (n, c) = (x.shape[0], x.shape[1])
    let spatial = x.count / max(n * c, 1)
    let m = n * spatial
    for t in [weight, bias, runningMean, runningVar] { if let t { precondition(t.shape == [c], "batchNorm: parameter \(t.shape) for \(c) channels") } }
    precondition(training || (runningMean != nil && runningVar != nil), "batchNorm in evaluation mode needs running statistics")
    precondition(!training || m > 1, "batchNorm in training mode needs more than one value per channel, got input \(x.shape)")

    var meanBuf = [Float](repeating: 0, count: c), invStd = [Float](repeating: 0, count: c)
    let xp = x.pointer
    // Channels per chunk of the per-channel sums: threads only where each gets about
    // `elementwiseGrain` values (a [256, 32] batch is not worth waking a worker for). Each
    // channel's sums run in one chunk in a fixed order, so the split changes no bits.
    let channelGrain = Swift.max(1, elementwiseGrain / Swift.max(m, 1))
    // Global BN in data-parallel training: the statistics of the global batch, from sums
    // all-reduced over the ranks; `total` is M over the global batch then.
    let global = training && Distributed.isDataParallel && Distributed.batchNorm == .global
    var total = Double(m)
    if training {
        // Per channel: Σ over samples of the Float sum over the spatial positions (16 lanes,
        // CKernels' replica_plane_sum), in Double; then Σ (x − μ)² the same way. For [N, C]
        // (spatial 1) the sums run along the rows, which is memory order.
        var sums = [Double](repeating: 0, count: c + 1), squares = [Double](repeating: 0, count: c)
        sums.withUnsafeMutableBufferPointer { sb in
            let s = sb.baseAddress!
            Threads.parallelFor(c, grain: channelGrain) { _, r in
                if spatial == 1 {
                    for i in 0..<n { let row = xp + i * c; for ch in r { s[ch] += Double(row[ch]) } }
                } else {
                    for ch in r { for i in 0..<n { s[ch] += Double(replica_plane_sum(xp + (i * c + ch) * spatial, spatial)) } }
                }
            }
        }
        if global { sums[c] = total; Distributed.sum(&sums); total = sums[c] }
        let muf = (0..<c).map { Float(sums[$0] / total) }
        squares.withUnsafeMutableBufferPointer { vb in muf.withUnsafeBufferPointer { mb in
            let v = vb.baseAddress!, mu = mb.baseAddress!
            Threads.parallelFor(c, grain: channelGrain) { _, r in
                if spatial == 1 {
                    for i in 0..<n { let row = xp + i * c; for ch in r { let d = row[ch] - mu[ch]; v[ch] += Double(d * d) } }
                } else {
                    for ch in r { for i in 0..<n { v[ch] += Double(replica_plane_sqdev(xp + (i * c + ch) * spatial, spatial, mu[ch])) } }
                }
            }
        } }
        if global { Distributed.sum(&squares) }
        for ch in 0..<c {
            let mu = sums[ch] / total, variance = squares[ch] / total
            meanBuf[ch] = Float(mu); invStd[ch] = Float(1 / (variance + Double(eps)).squareRoot())
            if let runningMean, let runningVar {
                runningMean.pointer[ch] = (1 - momentum) * runningMean.pointer[ch] + momentum * Float(mu)
                runningVar.pointer[ch] = (1 - momentum) * runningVar.pointer[ch] + momentum * Float(variance * total / (total - 1))
            }
        }
    } else {
        (meanBuf, invStd) = ChannelAffine.runningStatistics(runningMean!, runningVar!, eps: eps)
    }
    let batchCount = Float(total)   // M, over the global batch with global BN

    // With the pool: the pooled map, each window's first maximum (a flat index into its plane).
    let (ph, pw) = pool ? (x.shape[2] / 2, x.shape[3] / 2) : (0, 0)
    let out = Tensor(shape: pool ? [n, c, ph, pw] : x.shape, zeroed: false)
    let argmax = pool ? Storage(count: out.count, zeroed: false) : nil
    let arg = argmax.map { UnsafeMutableRawPointer($0.pointer).bindMemory(to: Int32.self, capacity: out.count) }
    let yp = out.pointer
    let (mu, inv) = (meanBuf, invStd)
    let affine = ChannelAffine(mean: mu, invStd: inv, weight: weight, bias: bias, relu: relu)
    affine.scale.withUnsafeBufferPointer { sc in affine.shift.withUnsafeBufferPointer { sh in
        let sc = sc.baseAddress!, sh = sh.baseAddress!
        if let arg {
            let (h, w, checked) = (x.shape[2], x.shape[3], Kernels.boundsChecks)
            Threads.parallelFor(n * c, grain: max(1, elementwiseGrain / max(spatial, 1))) { _, r in
                let plane = UnsafeMutablePointer<Float>.allocate(capacity: spatial)
                defer { plane.deallocate() }
                for p in r {
                    let ch = p % c
                    ChannelAffine.apply(xp + p * spatial, plane, count: spatial, scale: sc[ch], shift: sh[ch], relu: true)
                    maxPool2x2Plane(plane, yp + p * ph * pw, arg + p * ph * pw, h: h, w: w, ho: ph, wo: pw, checked: checked)
                }
            }
            return
        }
        if spatial == 1 {
            Threads.parallelFor(n, grain: max(1, elementwiseGrain / max(c, 1))) { _, r in
                for i in r {
                    let s = xp + i * c, d = yp + i * c
                    if relu {
                        for ch in 0..<c { let v = s[ch] * sc[ch] + sh[ch]; d[ch] = v > 0 ? v : 0 }
                    } else {
                        for ch in 0..<c { d[ch] = s[ch] * sc[ch] + sh[ch] }
                    }
                }
            }
            return
        }
        Threads.parallelFor(n * c, grain: max(1, elementwiseGrain / max(spatial, 1))) { _, r in
            for plane in r {
                let ch = plane % c
                ChannelAffine.apply(xp + plane * spatial, yp + plane * spatial, count: spatial, scale: sc[ch], shift: sh[ch], relu: relu)
            }
        }
    } }

    let inputs = [x] + [weight, bias].compactMap { $0 }
    // Through the fused ReLU first: the gradient passes where the output is positive.
    // Training-mode planes mask inside their kernels instead, from x · scale + shift (one
    // pass fewer, and the output is not kept for the backward pass).
    let masked = relu && training && spatial > 1
    let ys = relu && !masked ? out.storage : nil
    let (scale, shift) = (affine.scale, affine.shift)
    return Tensor.result(out, inputs) { upstream in
        let g = ys.map { reluMasked(upstream, $0) } ?? upstream
        let arg = argmax.map { UnsafeMutableRawPointer($0.pointer).bindMemory(to: Int32.self, capacity: $0.count) }   // keeps it alive
        // The upstream gradient of one full-size plane; with the pool, the pooled gradient
        // routed to each window's maximum and 0 elsewhere, in `scratch` (as maxPool2d's
        // backward, which adds each window's gradient onto zeros). Built once for the sums
        // and once for dx: in cache both times, where one full-size copy would not be.
        func gradientPlane(_ p: Int, _ scratch: UnsafeMutablePointer<Float>?) -> UnsafePointer<Float> {
            guard let arg, let scratch else { return UnsafePointer(g.pointer + p * spatial) }
            let q = ph * pw, a = arg + p * q, gq = g.pointer + p * q
            scratch.initialize(repeating: 0, count: spatial)
            for i in 0..<q { checkBounds(Kernels.boundsChecks, Int(a[i]) + 1, within: spatial, "batchNorm max-pool backward"); scratch[Int(a[i])] += gq[i] }
            return UnsafePointer(scratch)
        }
        // Per channel: Σg and Σg·x̂, x̂ = (x − μ)·invStd.
        var sumG = [Float](repeating: 0, count: c), sumGX = [Float](repeating: 0, count: c)
        let gp = g.pointer
        sumG.withUnsafeMutableBufferPointer { a in sumGX.withUnsafeMutableBufferPointer { b in
            let a = a.baseAddress!, b = b.baseAddress!
            mu.withUnsafeBufferPointer { mub in
                let mub = mub.baseAddress!
                Threads.parallelFor(c, grain: channelGrain) { _, r in
                    if spatial == 1 {   // along the rows, the same sums in the same order
                        let w = r.count, lo = r.lowerBound
                        let sg = UnsafeMutablePointer<Double>.allocate(capacity: w), sgx = UnsafeMutablePointer<Double>.allocate(capacity: w)
                        defer { sg.deallocate(); sgx.deallocate() }
                        sg.initialize(repeating: 0, count: w); sgx.initialize(repeating: 0, count: w)
                        let muc = mub + lo
                        for i in 0..<n {
                            let gi = gp + i * c + lo, xi = xp + i * c + lo
                            for j in 0..<w { sg[j] += Double(gi[j]); sgx[j] += Double(gi[j] * (xi[j] - muc[j])) }
                        }
                        for j in 0..<w { a[lo + j] = Float(sg[j]); b[lo + j] = Float(sgx[j]) * inv[lo + j] }
                        return
                    }
                    let scratch = arg == nil ? nil : UnsafeMutablePointer<Float>.allocate(capacity: spatial)
                    defer { scratch?.deallocate() }
                    for ch in r {
                        var sg = 0.0, sgx = 0.0
                        for i in 0..<n {
                            var t1: Float = 0, t2: Float = 0
                            let plane = (i * c + ch) * spatial
                            replica_plane_grad(gradientPlane(i * c + ch, scratch), masked ? 1 : 0, scale[ch], shift[ch], xp + plane, spatial, mub[ch], &t1, &t2)
                            sg += Double(t1); sgx += Double(t2)
                        }
                        a[ch] = Float(sg); b[ch] = Float(sgx) * inv[ch]
                    }
                }
            }
        } }
        var gx: Tensor?
        if x.requiresGrad {
            let out = Tensor(shape: x.shape, zeroed: false)
            let dp = out.pointer
            // Global BN: Σg and Σg·x̂ over the global batch reach every rank's dx; γ's and β's
            // gradients stay the rank's own (the gradient all-reduce sums them).
            var both = sumG + sumGX
            if global { Distributed.sum(&both) }
            let (sg, sgx) = (Array(both[..<c]), Array(both[c...]))
            // dx = γ·invStd/M · (M·g − Σg − x̂·Σg·x̂) in training, γ·invStd·g in evaluation.
            var ks = [Float](repeating: 0, count: c)
            for ch in 0..<c { let gamma = weight?.pointer[ch] ?? 1; ks[ch] = training ? gamma * inv[ch] / batchCount : gamma * inv[ch] }
            let fm = batchCount
            ks.withUnsafeBufferPointer { kb in mu.withUnsafeBufferPointer { mub in inv.withUnsafeBufferPointer { ib in
            sg.withUnsafeBufferPointer { sgb in sgx.withUnsafeBufferPointer { sgxb in
                let kp = kb.baseAddress!, mup = mub.baseAddress!, ip = ib.baseAddress!, sgp = sgb.baseAddress!, sgxp = sgxb.baseAddress!
                if spatial == 1 {
                    Threads.parallelFor(n, grain: max(1, elementwiseGrain / max(c, 1))) { _, r in
                        for i in r {
                            let gi = gp + i * c, xi = xp + i * c, d = dp + i * c
                            if training {
                                for ch in 0..<c {
                                    let xhat = (xi[ch] - mup[ch]) * ip[ch]
                                    d[ch] = kp[ch] * (fm * gi[ch] - sgp[ch] - xhat * sgxp[ch])
                                }
                            } else {
                                for ch in 0..<c { d[ch] = kp[ch] * gi[ch] }
                            }
                        }
                    }
                    return
                }
                Threads.parallelFor(n * c, grain: max(1, elementwiseGrain / max(spatial, 1))) { _, r in
                    let scratch = arg == nil ? nil : UnsafeMutablePointer<Float>.allocate(capacity: spatial)
                    defer { scratch?.deallocate() }
                    for plane in r {
                        let ch = plane % c, k = kp[ch]
                        let gi = gradientPlane(plane, scratch), xi = xp + plane * spatial, d = dp + plane * spatial
                        if training {
                            replica_plane_dx(gi, masked ? 1 : 0, scale[ch], shift[ch], xi, d, spatial, mup[ch], ip[ch], k, fm, sgp[ch], sgxp[ch])
                        } else {
                            for j in 0..<spatial { d[j] = k * gi[j] }
                        }
                    }
                }
            } } } } }
            gx = out
        }
        let gw = weight.flatMap { $0.requiresGrad ? Tensor(sumGX, shape: [c]) : nil }
        let gb = bias.flatMap { $0.requiresGrad ? Tensor(sumG, shape: [c]) : nil }
        var grads: [Tensor?] = [gx]
        if weight != nil { grads.append(gw) }
        if bias != nil { grads.append(gb) }
        return grads
    }
}

/// `g` where `y > 0`, else 0.
func reluMasked(_ g: Tensor, _ y: Storage) -> Tensor {
    let out = Tensor(shape: g.shape, zeroed: false)
    let gp = g.pointer, yp = y.pointer, op = out.pointer
    Threads.parallelFor(g.count, grain: elementwiseGrain) { _, r in
        // Explicit vectors: a per-element branch on the sign mispredicts half the time.
        var i = r.lowerBound
        while i + 16 <= r.upperBound {
            let y = UnsafeRawPointer(yp + i).loadUnaligned(as: SIMD16<Float>.self)
            let g = UnsafeRawPointer(gp + i).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(op + i).storeBytes(of: g.replacing(with: 0, where: .!(y .> 0)), as: SIMD16<Float>.self)
            i += 16
        }
        while i < r.upperBound { op[i] = yp[i] > 0 ? gp[i] : 0; i += 1 }
    }
    return out
}

/// Inverted dropout: zeroes each entry with probability `p` and scales the rest by 1/(1−p)
/// in training; the identity in evaluation.
public func dropout(_ x: Tensor, p: Float, training: Bool, rng: inout RNG) -> Tensor {
    precondition(p >= 0 && p < 1, "dropout probability \(p) outside [0, 1)")
    if !training || p == 0 { return x }
    let mask = Tensor.bernoulli(x.shape, p: 1 - p, rng: &rng)
    return x * mask * (1 / (1 - p))
}

extension Tensor {
    /// `x / max(‖x‖₂, eps)` along `axis` (PyTorch's F.normalize).
    public func l2Normalized(axis: Int = -1, eps: Float = 1e-12) -> Tensor {
        self / (self * self).sum(axis: axis, keepDims: true).sqrt().clamp(min: eps)
    }
}

/// Batch norm's last step as a per-channel map: y = x·scale + shift, then max(y, 0) when
/// `relu`. In evaluation mode that is the whole layer, so `conv2d(…, then:)` can apply it
/// to each block of its output while the block is in cache: the same values as
/// `batchNorm(conv2d(…), training: false, relu:)`, one pass over the activation fewer.
public struct ChannelAffine: Sendable {
    public let scale: [Float], shift: [Float]
    public let relu: Bool

    /// scale = γ·invStd, shift = β − μ·scale (γ = 1, β = 0 without weight and bias).
    init(mean: [Float], invStd: [Float], weight: Tensor?, bias: Tensor?, relu: Bool) {
        let c = mean.count
        var scale = [Float](repeating: 0, count: c), shift = [Float](repeating: 0, count: c)
        for ch in 0..<c {
            scale[ch] = invStd[ch] * (weight?.pointer[ch] ?? 1)
            shift[ch] = (bias?.pointer[ch] ?? 0) - mean[ch] * scale[ch]
        }
        (self.scale, self.shift, self.relu) = (scale, shift, relu)
    }

    /// Evaluation-mode batch norm with these running statistics and parameters.
    public init(runningMean: Tensor, runningVar: Tensor, weight: Tensor?, bias: Tensor?, eps: Float, relu: Bool) {
        let (mean, invStd) = Self.runningStatistics(runningMean, runningVar, eps: eps)
        self.init(mean: mean, invStd: invStd, weight: weight, bias: bias, relu: relu)
    }

    static func runningStatistics(_ mean: Tensor, _ variance: Tensor, eps: Float) -> ([Float], [Float]) {
        ((0..<mean.count).map { mean.pointer[$0] }, (0..<variance.count).map { 1 / (variance.pointer[$0] + eps).squareRoot() })
    }

    /// One channel's plane: `dst` may be `src`.
    @inline(__always)
    static func apply(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int, scale: Float, shift: Float, relu: Bool) {
        if relu {
            for j in 0..<count { let v = src[j] * scale + shift; dst[j] = v > 0 ? v : 0 }
        } else {
            for j in 0..<count { dst[j] = src[j] * scale + shift }
        }
    }
}
