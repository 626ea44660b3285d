import CKernels
import Foundation
import XCTest

/// The vectorised C kernels behind exp, log, sigmoid, tanh, softplus and Adam: accuracy
/// against double-precision libm (measured worst cases on the sweep: exp 0.95 ulp, log 0.72,
/// sigmoid 2.1, softplus 2.6, tanh 1.2), special values, and the same bits on every instruction
/// set this machine has (so the AVX2 and the AVX-512 kind of machine agree).
final class VectorKernelTests: XCTestCase {
    let isas = Array(0...Int(replica_dots_best_isa())).map(Int32.init)

    /// Every 2^11-th float bit pattern in [−max, max] (about 2 million values, covering every
    /// binade), the given special values, and the Float results of `fn` on each ISA.
    func sweep(_ fn: Int32, extra: [Float] = []) -> (x: [Float], y: [[Float]]) {
        var x: [Float] = extra
        for bits in stride(from: UInt32(0), to: 0x7f80_0000, by: 1 << 11) {
            x.append(Float(bitPattern: bits)); x.append(-Float(bitPattern: bits))
        }
        let y = isas.map { isa -> [Float] in
            var out = [Float](repeating: .nan, count: x.count)
            replica_map_isa(isa, fn, x, &out, x.count)
            return out
        }
        return (x, y)
    }

    /// |y − exact| in units of the last place of the exact value rounded to Float.
    func ulps(_ y: Float, _ exact: Double) -> Double {
        let e = Float(exact)
        if e.isInfinite || y.isInfinite { return y == e ? 0 : .infinity }
        let ulp = Double(e == 0 ? Float.leastNonzeroMagnitude : e.ulp)
        return Swift.abs(Double(y) - exact) / ulp
    }

    func check(_ fn: Int32, _ name: String, maxUlps: Double, domain: (Float) -> Bool = { _ in true },
               exact: (Double) -> Double, line: UInt = #line) {
        let (x, y) = sweep(fn)
        var worst = 0.0, at: Float = 0
        for i in x.indices where x[i].isFinite && domain(x[i]) {
            let u = ulps(y[0][i], exact(Double(x[i])))
            if u > worst { worst = u; at = x[i] }
        }
        XCTAssertLessThanOrEqual(worst, maxUlps, "\(name): \(worst) ulp at x = \(at)", line: line)
        for k in 1..<y.count {
            XCTAssertTrue(zip(y[0], y[k]).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) },
                          "\(name): instruction set \(isas[k]) differs from baseline", line: line)
        }
    }

    func testExpWithinOneUlp() {
        check(REPLICA_MAP_EXP, "exp", maxUlps: 1, exact: Foundation.exp)
    }

    func testLogWithinOneUlp() {
        check(REPLICA_MAP_LOG, "log", maxUlps: 1, domain: { $0 > 0 }, exact: Foundation.log)
    }

    func testSigmoidWithinThreeUlps() {
        check(REPLICA_MAP_SIGMOID, "sigmoid", maxUlps: 3, exact: { 1 / (1 + Foundation.exp(-$0)) })
    }

    func testTanhWithinTwoUlps() {
        check(REPLICA_MAP_TANH, "tanh", maxUlps: 2, exact: Foundation.tanh)
    }

    func testSoftplusWithinThreeUlps() {
        check(REPLICA_MAP_SOFTPLUS, "softplus", maxUlps: 3, exact: { Swift.max($0, 0) + Foundation.log1p(Foundation.exp(-Swift.abs($0))) })
    }

    func testSpecialValues() {
        let inf = Float.infinity
        let cases: [(Int32, Float, Float)] = [
            (REPLICA_MAP_EXP, inf, inf), (REPLICA_MAP_EXP, -inf, 0), (REPLICA_MAP_EXP, 0, 1), (REPLICA_MAP_EXP, 89, inf),
            (REPLICA_MAP_EXP, -104, 0), (REPLICA_MAP_EXP, -100, Float(Foundation.exp(-100.0))),
            (REPLICA_MAP_LOG, 0, -inf), (REPLICA_MAP_LOG, -0.0, -inf), (REPLICA_MAP_LOG, inf, inf), (REPLICA_MAP_LOG, 1, 0),
            (REPLICA_MAP_LOG, -1, .nan), (REPLICA_MAP_LOG, -inf, .nan), (REPLICA_MAP_LOG, .leastNonzeroMagnitude, Float(Foundation.log(Double(Float.leastNonzeroMagnitude)))),
            (REPLICA_MAP_SIGMOID, inf, 1), (REPLICA_MAP_SIGMOID, -inf, 0), (REPLICA_MAP_SIGMOID, 0, 0.5),
            (REPLICA_MAP_TANH, inf, 1), (REPLICA_MAP_TANH, -inf, -1), (REPLICA_MAP_TANH, 0, 0), (REPLICA_MAP_TANH, 1e-30, 1e-30),
            (REPLICA_MAP_SOFTPLUS, inf, inf), (REPLICA_MAP_SOFTPLUS, -inf, 0), (REPLICA_MAP_SOFTPLUS, 1e30, 1e30),
            (REPLICA_MAP_SOFTPLUS, -200, 0), (REPLICA_MAP_SOFTPLUS, 0, Float(Foundation.log(2.0))),
        ]
        for (fn, x, want) in cases {
            for isa in isas {
                var y: Float = 0
                replica_map_isa(isa, fn, [x], &y, 1)
                if want.isNaN { XCTAssertTrue(y.isNaN, "map \(fn) at \(x), isa \(isa): \(y)") }
                else { XCTAssertEqual(y, want, "map \(fn) at \(x), isa \(isa)") }
            }
        }
        for fn in [REPLICA_MAP_EXP, REPLICA_MAP_LOG, REPLICA_MAP_SIGMOID, REPLICA_MAP_TANH, REPLICA_MAP_SOFTPLUS] {
            var y: Float = 0
            replica_map(fn, [Float.nan], &y, 1)
            XCTAssertTrue(y.isNaN, "map \(fn) keeps NaN")
        }
    }

    /// Lengths that are not a multiple of any vector width take the same path to the end.
    func testEveryLengthAndOffset() {
        let x = (0..<67).map { Float($0) * 0.37 - 12 }
        var whole = [Float](repeating: 0, count: 67)
        replica_map(REPLICA_MAP_SOFTPLUS, x, &whole, 67)
        for start in [0, 1, 5, 17] {
            for n in [0, 1, 3, 15, 16, 17, 33, 67 - start] {
                var part = [Float](repeating: -7, count: n + 1)
                x.withUnsafeBufferPointer { replica_map(REPLICA_MAP_SOFTPLUS, $0.baseAddress! + start, &part, n) }
                XCTAssertEqual(Array(part[0..<n]), Array(whole[start..<(start + n)]))
                XCTAssertEqual(part[n], -7, "wrote past n = \(n)")
            }
        }
    }

    func testSoftplusGradientIsSigmoidTimesUpstream() {
        let x = (0..<1000).map { Float($0) * 0.05 - 25 }, g = (0..<1000).map { Float(($0 * 7) % 11) - 5 }
        for isa in isas {
            var gx = [Float](repeating: 0, count: x.count), s = [Float](repeating: 0, count: x.count)
            replica_softplus_grad_isa(isa, x, g, &gx, x.count)
            replica_map_isa(isa, REPLICA_MAP_SIGMOID, x, &s, x.count)
            for i in x.indices { XCTAssertEqual(gx[i], g[i] * s[i]) }
        }
    }

    /// The C Adam step gives the bits of the scalar Swift loop it replaced, on every ISA.
    func testAdamMatchesScalarLoop() {
        let n = 1003
        let p0 = (0..<n).map { Float(sin(Double($0) * 1.3)) }, g = (0..<n).map { Float(cos(Double($0) * 0.7)) * 0.1 }
        let m0 = (0..<n).map { Float(sin(Double($0) * 0.3)) * 0.01 }, v0 = (0..<n).map { Float(1 + sin(Double($0))) * 1e-4 }
        let (b1, b2, wd, step, c2root, eps): (Float, Float, Float, Float, Float, Float) = (0.9, 0.999, 1e-4, 1e-3 / 0.271, 0.0632, 1e-8)
        var p = p0, m = m0, v = v0
        for i in 0..<n {
            let d = g[i] + wd * p[i]
            m[i] = b1 * m[i] + (1 - b1) * d
            v[i] = b2 * v[i] + (1 - b2) * d * d
            p[i] -= step * m[i] / (v[i].squareRoot() / c2root + eps)
        }
        for isa in isas {
            var pc = p0, mc = m0, vc = v0
            replica_adam_isa(isa, &pc, g, &mc, &vc, n, b1, b2, wd, step, c2root, eps)
            XCTAssertEqual(pc.map(\.bitPattern), p.map(\.bitPattern), "parameters, isa \(isa)")
            XCTAssertEqual(mc.map(\.bitPattern), m.map(\.bitPattern), "first moment, isa \(isa)")
            XCTAssertEqual(vc.map(\.bitPattern), v.map(\.bitPattern), "second moment, isa \(isa)")
        }
    }

    /// The row argmax against a naive loop (strict >, so the first maximum), on every ISA:
    /// widths below, at and across the 16 lanes, values on a coarse grid (many exact ties,
    /// the tied maximum sometimes in the tail), and −∞ rows.
    func testArgmaxRowsMatchesNaiveLoop() {
        for k in [1, 13, 16, 37, 100] {
            let m = 50
            var s = (0..<(m * k)).map { Float(($0 * 7919) % 5) }
            let h = (0..<k).map { Float(($0 * 31) % 3) }
            for j in 0..<k { s[j] = -.infinity }   // row 0: every value −∞
            var expected = [Int](repeating: 0, count: m)
            for i in 0..<m {
                var best = 0
                for j in 0..<k {
                    let v: Float = s[i * k + j] - h[j], b: Float = s[i * k + best] - h[best]
                    if v > b { best = j }
                }
                expected[i] = best
            }
            for isa in isas {
                var out = [Int](repeating: -1, count: m)
                replica_argmax_rows_isa(isa, s, h, m, k, &out)
                XCTAssertEqual(out, expected, "k \(k), isa \(isa)")
            }
        }
    }

    /// Full 16 × 16 tiles, ragged edges on both sides, leading dimensions wider than the
    /// matrix: every element lands where the loop puts it, and nothing outside is written.
    func testTransposeMatchesNaiveLoop() {
        for (rows, cols) in [(1, 1), (3, 40), (16, 16), (17, 33), (49, 128), (256, 9), (40, 3)] {
            let lda = cols + 3, ldb = rows + 5
            let a = (0..<(rows * lda)).map { Float($0) * 0.5 - 7 }
            var expected = [Float](repeating: -1, count: cols * ldb)
            for i in 0..<rows { for j in 0..<cols { expected[j * ldb + i] = a[i * lda + j] } }
            for isa in isas {
                var b = [Float](repeating: -1, count: cols * ldb)
                replica_transpose_isa(isa, a, rows, cols, lda, &b, ldb)
                XCTAssertEqual(b, expected, "\(rows) × \(cols), isa \(isa)")
            }
        }
    }

    /// Against a Double loop over the same eight lanes, on every ISA, for lengths around
    /// the vector width; and within n · 2⁻⁵³ (relative) of the plain sequential sum.
    func testSumSquaresMatchesLaneLoop() {
        for n in [0, 1, 7, 8, 9, 100, 1003] {
            let x = (0..<n).map { Float(sin(Double($0) * 1.7)) * 3 }
            var lanes = [Double](repeating: 0, count: 8), i = 0
            while i + 8 <= n { for l in 0..<8 { lanes[l] += Double(x[i + l]) * Double(x[i + l]) }; i += 8 }
            var expected = lanes.reduce(0, +)
            while i < n { expected += Double(x[i]) * Double(x[i]); i += 1 }
            let sequential = x.reduce(0.0) { $0 + Double($1) * Double($1) }
            for isa in isas {
                let got = replica_sum_squares_isa(isa, x, n)
                XCTAssertEqual(got.bitPattern, expected.bitPattern, "n \(n), isa \(isa)")
                XCTAssertEqual(got, sequential, accuracy: Double(n) * 0x1p-53 * sequential, "n \(n)")
            }
        }
    }

    /// The batch-norm plane sums against the same sixteen lanes written out in Swift (Float
    /// adds, lane 0…15, then the tail), on every ISA and for lengths around the width, with
    /// and without a ReLU mask; the input-gradient plane against the formula elementwise.
    func testPlaneSumsMatchLaneLoops() {
        func lanes(_ n: Int, _ term: (Int) -> Float) -> Float {
            var acc = [Float](repeating: 0, count: 16), i = 0
            while i + 16 <= n { for l in 0..<16 { acc[l] += term(i + l) }; i += 16 }
            var s: Float = 0
            for l in 0..<16 { s += acc[l] }
            while i < n { s += term(i); i += 1 }
            return s
        }
        for n in [0, 1, 9, 15, 16, 17, 49, 196, 784] {
            let x = (0..<n).map { Float(sin(Double($0) * 0.9)) * 2 + 0.5 }, g = (0..<n).map { Float(cos(Double($0) * 1.3)) }
            let mu: Float = 0.37
            let sum = lanes(n) { x[$0] }, sq = lanes(n) { let d = x[$0] - mu; return d * d }
            let sg = lanes(n) { g[$0] }, sgx = lanes(n) { g[$0] * (x[$0] - mu) }
            // The fused ReLU's mask: g passes where x·scale + shift > 0 with the product
            // rounded before the sum, as the forward pass computes it. With scale = 1/3
            // rounded and shift = −1, x = 3 gives 3·scale = 1 after rounding, so 0: blocked,
            // where a fused multiply-add would give +3·10⁻⁸ and let g through.
            let (scale, shift) = (Float(1.0 / 3), Float(-1))
            let xm = (0..<n).map { i -> Float in i % 4 == 1 ? 3 : x[i] * 2 - 1 }
            if n > 1 { XCTAssertTrue(xm[1] * scale + shift == 0 && shift.addingProduct(xm[1], scale) > 0) }
            let gm = (0..<n).map { xm[$0] * scale + shift > 0 ? g[$0] : 0 }
            XCTAssertTrue(n < 17 || (gm.contains(0) && gm.contains { $0 != 0 }))
            let msg = lanes(n) { gm[$0] }, msgx = lanes(n) { gm[$0] * (xm[$0] - mu) }
            let (inv, k, m, s1, s2): (Float, Float, Float, Float, Float) = (1.7, 0.3, Float(n), 0.25, -1.5)
            func dx(_ gg: [Float], _ xs: [Float]) -> [UInt32] { (0..<n).map { i in (k * (m * gg[i] - s1 - (xs[i] - mu) * inv * s2)).bitPattern } }
            for isa in isas {
                XCTAssertEqual(replica_plane_sum_isa(isa, x, n).bitPattern, sum.bitPattern, "n \(n), isa \(isa)")
                XCTAssertEqual(replica_plane_sqdev_isa(isa, x, n, mu).bitPattern, sq.bitPattern, "n \(n), isa \(isa)")
                var a: Float = .nan, b: Float = .nan
                replica_plane_grad_isa(isa, g, 0, scale, shift, x, n, mu, &a, &b)
                XCTAssertEqual([a.bitPattern, b.bitPattern], [sg.bitPattern, sgx.bitPattern], "n \(n), isa \(isa)")
                replica_plane_grad_isa(isa, g, 1, scale, shift, xm, n, mu, &a, &b)
                XCTAssertEqual([a.bitPattern, b.bitPattern], [msg.bitPattern, msgx.bitPattern], "masked, n \(n), isa \(isa)")
                var d = [Float](repeating: .nan, count: n)
                replica_plane_dx_isa(isa, g, 0, scale, shift, x, &d, n, mu, inv, k, m, s1, s2)
                XCTAssertEqual(d.map(\.bitPattern), dx(g, x), "dx, n \(n), isa \(isa)")
                replica_plane_dx_isa(isa, g, 1, scale, shift, xm, &d, n, mu, inv, k, m, s1, s2)
                XCTAssertEqual(d.map(\.bitPattern), dx(gm, xm), "masked dx, n \(n), isa \(isa)")
            }
        }
    }

    /// Row log-sum-exp and log softmax's gradient: the same bits on every ISA, within a few
    /// ulp of double-precision sums, and the infinite rows as PyTorch's logsumexp.
    func testLogSumExpRowsAgainstDouble() {
        for n in [1, 5, 10, 16, 17, 100, 4097] {
            let x = (0..<n).map { Float(sin(Double($0) * 0.7) * 6) }, g = (0..<n).map { Float(cos(Double($0) * 0.3)) }
            let m = Double(x.max()!), exact = m + Foundation.log(x.reduce(0.0) { $0 + Foundation.exp(Double($1) - m) })
            let y = x.map { $0 - Float(exact) }, sg = g.reduce(0.0) { $0 + Double($1) }
            let expectedGrad = (0..<n).map { Double(g[$0]) - Foundation.exp(Double(y[$0])) * sg }
            var first: (Float, [Float])?
            for isa in isas {
                var tmp = [Float](repeating: .nan, count: n), gx = [Float](repeating: .nan, count: n)
                let lse = replica_logsumexp_row_isa(isa, x, n, &tmp)
                XCTAssertEqual(Double(lse), exact, accuracy: 4e-7 * max(1, abs(exact)), "n \(n), isa \(isa)")
                // tmp holds exp(x − max), each the bits of the pointwise exp kernel (the tail too)
                let shifted = x.map { $0 - x.max()! }
                var e = shifted
                replica_map_isa(isa, REPLICA_MAP_EXP, shifted, &e, n)
                XCTAssertEqual(tmp.map(\.bitPattern), e.map(\.bitPattern), "exp terms, n \(n), isa \(isa)")
                replica_log_softmax_grad_row_isa(isa, g, y, &gx, n)
                if n < 16 {   // a row shorter than a vector: the sum runs in order, then g − exp(y)·Σg per element
                    var ey = y
                    replica_map_isa(isa, REPLICA_MAP_EXP, y, &ey, n)
                    let sum = g.reduce(Float(0), +)
                    XCTAssertEqual(gx.map(\.bitPattern), (0..<n).map { (g[$0] - ey[$0] * sum).bitPattern }, "grad bits, n \(n), isa \(isa)")
                }
                for i in 0..<n { XCTAssertEqual(Double(gx[i]), expectedGrad[i], accuracy: 1e-5 * max(1, abs(sg)), "n \(n), isa \(isa), i \(i)") }
                if let first {
                    XCTAssertEqual(lse.bitPattern, first.0.bitPattern, "n \(n): isa \(isa) differs from baseline")
                    XCTAssertEqual(gx.map(\.bitPattern), first.1.map(\.bitPattern), "n \(n): isa \(isa) differs from baseline")
                } else { first = (lse, gx) }
            }
        }
        for isa in isas {
            var tmp = [Float](repeating: 0, count: 3)
            XCTAssertEqual(replica_logsumexp_row_isa(isa, [-.infinity, -.infinity, -.infinity], 3, &tmp), -.infinity)
            XCTAssertEqual(replica_logsumexp_row_isa(isa, [1, .infinity, 2], 3, &tmp), .infinity)
            XCTAssertEqual(Double(replica_logsumexp_row_isa(isa, [-.infinity, 0, 0], 3, &tmp)), Foundation.log(2.0), accuracy: 1e-7)
        }
    }

    /// Binary cross-entropy on logits: the same bits on every ISA, the sum within float
    /// rounding of the double-precision formula, the gradient within a few ulp of it.
    func testBinaryCrossEntropyKernelsAgainstDouble() {
        for n in [0, 1, 7, 8, 9, 100, 1001] {
            let x = (0..<n).map { Float(sin(Double($0) * 0.37) * 12) }, t = (0..<n).map { Float($0 % 3 == 0 ? 1 : $0 % 3 == 1 ? 0 : 0.25) }
            let exact = (0..<n).reduce(0.0) { acc, i in
                let v = Double(x[i])
                return acc + max(v, 0) - v * Double(t[i]) + Foundation.log1p(Foundation.exp(-abs(v)))
            }
            var first: (Double, [Float])?
            for isa in isas {
                let total = replica_bce_logits_sum_isa(isa, x, t, n)
                XCTAssertEqual(total, exact, accuracy: 1e-6 * max(1, exact), "n \(n), isa \(isa)")
                var gx = [Float](repeating: .nan, count: n)
                replica_bce_logits_grad_isa(isa, x, t, &gx, n, 0.5)
                for i in 0..<n {
                    let expected = 0.5 * (1 / (1 + Foundation.exp(-Double(x[i]))) - Double(t[i]))
                    XCTAssertEqual(Double(gx[i]), expected, accuracy: 1e-6, "n \(n), isa \(isa), i \(i)")
                }
                if let first {
                    XCTAssertEqual(total.bitPattern, first.0.bitPattern, "n \(n): isa \(isa) differs from baseline")
                    XCTAssertEqual(gx.map(\.bitPattern), first.1.map(\.bitPattern), "n \(n): isa \(isa) differs from baseline")
                } else { first = (total, gx) }
            }
        }
    }
}
