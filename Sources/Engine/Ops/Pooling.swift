import Foundation

// Max, average and global-average pooling over [N, C, H, W].

extension Tensor {
    private func poolGeometry(_ k: Int, _ s: Int, _ p: Int) -> (n: Int, c: Int, h: Int, w: Int, ho: Int, wo: Int) {
        precondition(rank == 4, "pooling needs [N, C, H, W], got \(shape)")
        precondition(k >= 1 && s >= 1 && p >= 0 && 2 * p <= k, "pooling kernel \(k), stride \(s), padding \(p)")
        let (h, w) = (shape[2], shape[3])
        let ho = windowCount(h, kernel: k, stride: s, padding: p), wo = windowCount(w, kernel: k, stride: s, padding: p)
        precondition(ho > 0 && wo > 0, "pooling kernel \(k) (padding \(p)) does not fit the input \(h)x\(w)")
        return (shape[0], shape[1], h, w, ho, wo)
    }

    /// Max pooling (floor mode, padding counts as −∞); the gradient goes to the first maximum.
    public func maxPool2d(kernel k: Int, stride: Int? = nil, padding p: Int = 0) -> Tensor {
        let s = stride ?? k
        let (n, c, h, w, ho, wo) = poolGeometry(k, s, p)
        let out = Tensor(shape: [n, c, ho, wo], zeroed: false)
        let argmax = Storage(count: out.count, zeroed: false)   // flat index within the plane, as Float bits
        let x = pointer, y = out.pointer
        let arg = UnsafeMutableRawPointer(argmax.pointer).bindMemory(to: Int32.self, capacity: out.count)
        let checked = Kernels.boundsChecks
        Threads.parallelFor(n * c, grain: 8) { _, r in
            for plane in r {
                let src = x + plane * h * w, dst = y + plane * ho * wo, a = arg + plane * ho * wo
                if k == 2 && s == 2 && p == 0 {   // the backbones' pooling: same result, no bounds tests
                    maxPool2x2Plane(src, dst, a, h: h, w: w, ho: ho, wo: wo, checked: checked)
                    continue
                }
                for oy in 0..<ho {
                    for ox in 0..<wo {
                        var best = -Float.infinity, bi: Int32 = -1
                        for ky in 0..<k {
                            let iy = oy * s - p + ky
                            if iy < 0 || iy >= h { continue }
                            for kx in 0..<k {
                                let ix = ox * s - p + kx
                                if ix < 0 || ix >= w { continue }
                                let v = src[iy * w + ix]
                                if v > best || bi < 0 { best = v; bi = Int32(iy * w + ix) }
                            }
                        }
                        dst[oy * wo + ox] = best; a[oy * wo + ox] = bi
                    }
                }
            }
        }
        let inShape = shape
        return Tensor.result(out, [self]) { g in
            let gx = Tensor.zeros(inShape)
            let arg = UnsafeMutableRawPointer(argmax.pointer).bindMemory(to: Int32.self, capacity: g.count)
            Threads.parallelFor(n * c, grain: 8) { _, r in
                for plane in r {
                    let d = gx.pointer + plane * h * w, gp = g.pointer + plane * ho * wo, a = arg + plane * ho * wo
                    for i in 0..<(ho * wo) { checkBounds(checked, Int(a[i]) + 1, within: h * w, "maxPool2d backward"); d[Int(a[i])] += gp[i] }
                }
            }
            return [gx]
        }
    }

    /// Average pooling (floor mode; padding counts as zeros in the average, as PyTorch's
    /// default `count_include_pad=True`).
    public func avgPool2d(kernel k: Int, stride: Int? = nil, padding p: Int = 0) -> Tensor {
        let s = stride ?? k
        let (n, c, h, w, ho, wo) = poolGeometry(k, s, p)
        let out = Tensor(shape: [n, c, ho, wo], zeroed: false)
        let scale = 1 / Float(k * k)
        let x = pointer, y = out.pointer
        Threads.parallelFor(n * c, grain: 8) { _, r in
            for plane in r {
                let src = x + plane * h * w, dst = y + plane * ho * wo
                for oy in 0..<ho { for ox in 0..<wo {
                    var acc: Float = 0
                    for ky in 0..<k { let iy = oy * s - p + ky; if iy < 0 || iy >= h { continue }
                        for kx in 0..<k { let ix = ox * s - p + kx; if ix >= 0 && ix < w { acc += src[iy * w + ix] } } }
                    dst[oy * wo + ox] = acc * scale
                } }
            }
        }
        let inShape = shape
        return Tensor.result(out, [self]) { g in
            let gx = Tensor.zeros(inShape)
            Threads.parallelFor(n * c, grain: 8) { _, r in
                for plane in r {
                    let d = gx.pointer + plane * h * w, gp = g.pointer + plane * ho * wo
                    for oy in 0..<ho { for ox in 0..<wo {
                        let v = gp[oy * wo + ox] * scale
                        for ky in 0..<k { let iy = oy * s - p + ky; if iy < 0 || iy >= h { continue }
                            for kx in 0..<k { let ix = ox * s - p + kx; if ix >= 0 && ix < w { d[iy * w + ix] += v } } }
                    } }
                }
            }
            return [gx]
        }
    }

    /// Mean over the spatial axes: [N, C, H, W] → [N, C].
    public func globalAveragePool() -> Tensor {
        precondition(rank == 4, "global average pooling needs [N, C, H, W], got \(shape)")
        let (n, c, pixels) = (shape[0], shape[1], shape[2] * shape[3])
        let out = Tensor(shape: [n, c], zeroed: false)
        let x = pointer, y = out.pointer, scale = 1 / Float(pixels)
        for plane in 0..<(n * c) {
            var acc: Float = 0
            for i in 0..<pixels { acc += x[plane * pixels + i] }
            y[plane] = acc * scale
        }
        let inShape = shape
        return Tensor.result(out, [self]) { g in
            let gx = Tensor(shape: inShape, zeroed: false)
            for plane in 0..<(n * c) {
                (gx.pointer + plane * pixels).update(repeating: g.pointer[plane] * scale, count: pixels)
            }
            return [gx]
        }
    }
}

/// 2 × 2 max-pooling, stride 2, of one [h, w] plane into [ho, wo] (floor mode), with each
/// window's first maximum as a flat index into the plane.
@inline(__always)
func maxPool2x2Plane(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ a: UnsafeMutablePointer<Int32>,
                     h: Int, w: Int, ho: Int, wo: Int, checked: Bool) {
    for oy in 0..<ho {
        let r0 = 2 * oy * w, r1 = r0 + w
        checkBounds(checked, r1 + 2 * wo, within: h * w, "maxPool2d")   // the last element the row reads, + 1
        var ox = 0
        while ox + 8 <= wo {   // 8 outputs at once: even/odd lanes of 16 inputs per row, selects instead of branches
            let i0 = r0 + 2 * ox, i2 = r1 + 2 * ox
            let top = UnsafeRawPointer(src + i0).loadUnaligned(as: SIMD16<Float>.self)
            let bottom = UnsafeRawPointer(src + i2).loadUnaligned(as: SIMD16<Float>.self)
            let lane = SIMD8<Int32>(0, 2, 4, 6, 8, 10, 12, 14)
            var best = top.evenHalf, bi = lane &+ Int32(i0)
            var m = top.oddHalf .> best
            best.replace(with: top.oddHalf, where: m); bi.replace(with: lane &+ Int32(i0 + 1), where: m)
            m = bottom.evenHalf .> best
            best.replace(with: bottom.evenHalf, where: m); bi.replace(with: lane &+ Int32(i2), where: m)
            m = bottom.oddHalf .> best
            best.replace(with: bottom.oddHalf, where: m); bi.replace(with: lane &+ Int32(i2 + 1), where: m)
            UnsafeMutableRawPointer(dst + oy * wo + ox).storeBytes(of: best, as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(a + oy * wo + ox).storeBytes(of: bi, as: SIMD8<Int32>.self)
            ox += 8
        }
        for ox in ox..<wo {
            let i0 = r0 + 2 * ox, i2 = r1 + 2 * ox
            var best = src[i0], bi = i0
            if src[i0 + 1] > best { best = src[i0 + 1]; bi = i0 + 1 }
            if src[i2] > best { best = src[i2]; bi = i2 }
            if src[i2 + 1] > best { best = src[i2 + 1]; bi = i2 + 1 }
            dst[oy * wo + ox] = best; a[oy * wo + ox] = Int32(bi)
        }
    }
}
