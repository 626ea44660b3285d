import CKernels
import Foundation
import XCTest

/// The C im2col / col2im plane kernels on every instruction set this machine has, against
/// the plain loops written here, over small geometries (rows of 1–9 values, kernels 1–4,
/// strides 1–3, padding 0–2): equal to the bit.
final class ConvKernelTests: XCTestCase {
    let isas = Array(0...Int(replica_dots_best_isa())).map(Int32.init)

    func geometries() -> [(h: Int, w: Int, k: Int, s: Int, p: Int, ho: Int, wo: Int)] {
        var out: [(Int, Int, Int, Int, Int, Int, Int)] = []
        for h in [1, 2, 5, 9] { for w in [1, 3, 8, 9, 17, 33] { for k in 1...4 { for s in 1...3 { for p in 0...2 {
            let ho = (h + 2 * p - k) / s + 1, wo = (w + 2 * p - k) / s + 1
            if h + 2 * p >= k && w + 2 * p >= k { out.append((h, w, k, s, p, ho, wo)) }
        } } } } }
        return out
    }

    func testIm2colPlaneMatchesThePlainLoopOnEveryISA() {
        var seed: UInt64 = 1
        for g in geometries() {
            let ph = g.h + 2 * g.p, pw = g.w + 2 * g.p, ld = g.ho * g.wo + 3
            let plane = (0..<(ph * pw)).map { _ -> Float in seed = seed &* 6364136223846793005 &+ 1; return Float(Int(seed >> 40) % 1000) / 7 }
            var expected = [Float](repeating: -1, count: g.k * g.k * ld)
            for ki in 0..<g.k { for kj in 0..<g.k { for oy in 0..<g.ho { for ox in 0..<g.wo {
                expected[(ki * g.k + kj) * ld + oy * g.wo + ox] = plane[(oy * g.s + ki) * pw + kj + ox * g.s]
            } } } }
            for isa in isas {
                var got = [Float](repeating: -1, count: expected.count)   // the gap between rows stays untouched
                replica_im2col_plane_isa(isa, plane, pw, Int32(g.k), Int32(g.k), Int32(g.s), Int32(g.ho), Int32(g.wo), &got, ld)
                XCTAssertEqual(got, expected, "isa \(isa), geometry \(g)")
            }
        }
    }

    func testCol2imPlaneAddsInThePlainLoopsOrderOnEveryISA() {
        var seed: UInt64 = 2
        func value() -> Float { seed = seed &* 6364136223846793005 &+ 1; return Float(Int(seed >> 33) % 2_000_001 - 1_000_000) / 3e5 }
        for g in geometries() {
            let ld = g.ho * g.wo + 2
            let col = (0..<(g.k * g.k * ld)).map { _ in value() }, start = (0..<(g.h * g.w)).map { _ in value() }
            var expected = start
            for ki in 0..<g.k { for kj in 0..<g.k { for oy in 0..<g.ho { for ox in 0..<g.wo {
                let y = oy * g.s - g.p + ki, x = ox * g.s - g.p + kj
                if y >= 0 && y < g.h && x >= 0 && x < g.w { expected[y * g.w + x] += col[(ki * g.k + kj) * ld + oy * g.wo + ox] }
            } } } }
            for isa in isas {
                var got = start
                replica_col2im_plane_isa(isa, col, ld, &got, Int32(g.h), Int32(g.w), Int32(g.k), Int32(g.k), Int32(g.s), Int32(g.p), Int32(g.ho), Int32(g.wo))
                XCTAssertEqual(got.map(\.bitPattern), expected.map(\.bitPattern), "isa \(isa), geometry \(g)")
            }
        }
    }
}
