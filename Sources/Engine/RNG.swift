import Foundation

/// A seeded pseudo-random generator (xoshiro256**) with independent derived streams.
///
/// Every stream of a run (initialization, data order, augmentation per sample, noise) is
/// derived from the run seed by name or number, not by consumption order, so adding a draw
/// in one stream never shifts another:
/// ```swift
/// let run = RNG(seed: 0)
/// var initRNG = run.derive("init")
/// var augment = run.derive("augment").derive(UInt64(sampleIndex))
/// ```
public struct RNG {
    private var s0, s1, s2, s3: UInt64
    /// The key this generator was seeded with; `derive` mixes it, not the current state.
    public let key: UInt64

    public init(seed: UInt64) {
        key = seed
        var sm = seed
        s0 = RNG.splitmix(&sm); s1 = RNG.splitmix(&sm); s2 = RNG.splitmix(&sm); s3 = RNG.splitmix(&sm)
    }

    /// An independent stream identified by `stream`.
    public func derive(_ stream: UInt64) -> RNG {
        var sm = key ^ 0x9E37_79B9_7F4A_7C15
        var mixed = RNG.splitmix(&sm)
        sm = mixed &+ stream &* 0xD1B5_4A32_D192_ED03
        mixed = RNG.splitmix(&sm)
        return RNG(seed: mixed)
    }

    /// An independent stream identified by a name (FNV-1a of its UTF-8 bytes).
    public func derive(_ name: String) -> RNG {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return derive(h)
    }

    private static func splitmix(_ x: inout UInt64) -> UInt64 {
        x &+= 0x9E37_79B9_7F4A_7C15
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.
    @inline(__always)
    public mutating func uniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Uniform in [low, high).
    public mutating func uniform(_ low: Float, _ high: Float) -> Float { low + (high - low) * uniform() }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniformDouble() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }

    /// Standard normal (Box–Muller on 53-bit uniforms; one draw per call, deterministic).
    public mutating func normal() -> Float {
        let u1 = 1.0 - uniformDouble()   // (0, 1]
        let u2 = uniformDouble()
        return Float((-2.0 * Foundation.log(u1)).squareRoot() * Foundation.cos(2.0 * Double.pi * u2))
    }

    public mutating func normal(mean: Float, std: Float) -> Float { mean + std * normal() }

    /// True with probability `p`.
    public mutating func bernoulli(_ p: Float) -> Bool { uniform() < p }

    /// Uniform integer in 0..<n without modulo bias (Lemire's method).
    public mutating func int(below n: Int) -> Int {
        precondition(n > 0, "int(below:) needs a positive bound")
        let bound = UInt64(n)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }

    /// A uniformly random permutation of 0..<n (Fisher–Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n > 1 { for i in stride(from: n - 1, to: 0, by: -1) { p.swapAt(i, int(below: i + 1)) } }
        return p
    }
}

extension Tensor {
    /// Standard-normal entries scaled by `std` and shifted by `mean`.
    public static func randn(_ shape: [Int], mean: Float = 0, std: Float = 1, rng: inout RNG, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(shape: shape, zeroed: false)
        for i in 0..<t.count { t.pointer[i] = mean + std * rng.normal() }
        t.requiresGrad = requiresGrad
        return t
    }

    /// Entries uniform in [low, high).
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, rng: inout RNG, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(shape: shape, zeroed: false)
        for i in 0..<t.count { t.pointer[i] = rng.uniform(low, high) }
        t.requiresGrad = requiresGrad
        return t
    }

    /// Entries 1 with probability `p`, else 0.
    public static func bernoulli(_ shape: [Int], p: Float, rng: inout RNG) -> Tensor {
        let t = Tensor(shape: shape, zeroed: false)
        for i in 0..<t.count { t.pointer[i] = rng.bernoulli(p) ? 1 : 0 }
        return t
    }
}
