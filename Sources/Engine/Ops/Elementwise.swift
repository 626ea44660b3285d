import CKernels
import Foundation

// Broadcasting arithmetic, unary math and activations.

/// Elements per chunk below which an elementwise loop stays on one thread.
let elementwiseGrain = 1 << 16

/// The broadcast shape of two shapes (NumPy rules), or a precondition failure naming both.
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
    let n = Swift.max(a.count, b.count)
    var out = [Int](repeating: 1, count: n)
    for i in 0..<n {
        let da = i < n - a.count ? 1 : a[i - (n - a.count)]
        let db = i < n - b.count ? 1 : b[i - (n - b.count)]
        precondition(da == db || da == 1 || db == 1, "shapes \(a) and \(b) do not broadcast")
        out[i] = da == 1 ? db : da
    }
    return out
}

/// Element strides of `shape` when broadcast to `target` (0 along broadcast axes).
func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
    let offset = target.count - shape.count
    var strides = [Int](repeating: 0, count: target.count)
    var s = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[i + offset] = shape[i] == 1 ? 0 : s
        s *= shape[i]
    }
    return strides
}

protocol BinaryKernel { static func apply(_ a: Float, _ b: Float) -> Float }
enum AddKernel: BinaryKernel { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b } }
enum SubKernel: BinaryKernel { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a - b } }
enum MulKernel: BinaryKernel { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b } }
enum DivKernel: BinaryKernel { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a / b } }

/// `out[i] = K(a[i], b[i])` with broadcasting; no history.
func broadcastKernel<K: BinaryKernel>(_ a: Tensor, _ b: Tensor, _: K.Type) -> Tensor {
    let shape = a.shape == b.shape ? a.shape : broadcastShape(a.shape, b.shape)
    let out = Tensor(shape: shape, zeroed: false)
    let pa = a.pointer, pb = b.pointer, po = out.pointer
    if a.count == out.count && b.count == out.count {
        Threads.parallelFor(out.count, grain: elementwiseGrain) { _, r in
            for i in r { po[i] = K.apply(pa[i], pb[i]) }
        }
        return out
    }
    if b.count == 1 && a.count == out.count {
        let s = pb[0]
        Threads.parallelFor(out.count, grain: elementwiseGrain) { _, r in
            for i in r { po[i] = K.apply(pa[i], s) }
        }
        return out
    }
    if a.count == 1 && b.count == out.count {
        let s = pa[0]
        Threads.parallelFor(out.count, grain: elementwiseGrain) { _, r in
            for i in r { po[i] = K.apply(s, pb[i]) }
        }
        return out
    }
    // General case: walk rows of the last axis with an odometer over the leading axes.
    let sa = broadcastStrides(a.shape, to: shape), sb = broadcastStrides(b.shape, to: shape)
    let rank = shape.count
    let inner = shape[rank - 1], ia = sa[rank - 1], ib = sb[rank - 1]
    let rows = out.count / Swift.max(inner, 1)
    Threads.parallelFor(rows, grain: Swift.max(1, elementwiseGrain / Swift.max(inner, 1))) { _, r in
        var index = [Int](repeating: 0, count: rank)
        var rem = r.lowerBound
        for d in stride(from: rank - 2, through: 0, by: -1) { index[d] = rem % shape[d]; rem /= shape[d] }
        for row in r {
            var oa = 0, ob = 0
            for d in 0..<(rank - 1) { oa += index[d] * sa[d]; ob += index[d] * sb[d] }
            let o = po + row * inner
            for j in 0..<inner { o[j] = K.apply(pa[oa + j * ia], pb[ob + j * ib]) }
            var d = rank - 2
            while d >= 0 { index[d] += 1; if index[d] < shape[d] { break }; index[d] = 0; d -= 1 }
        }
    }
    return out
}

extension Tensor {
    /// Sums a broadcast gradient back to `shape` (the inverse of broadcasting).
    public func sumTo(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        var t = self
        let offset = rank - target.count
        for axis in 0..<rank where axis < offset || target[axis - offset] == 1 && shape[axis] != 1 {
            t = t.sum(axis: axis, keepDims: true)
        }
        return t.reshaped(target)
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor {
        result(broadcastKernel(a, b, AddKernel.self), [a, b]) { g in [g.sumTo(a.shape), g.sumTo(b.shape)] }
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        result(broadcastKernel(a, b, SubKernel.self), [a, b]) { g in [g.sumTo(a.shape), (-g).sumTo(b.shape)] }
    }

    public static func * (a: Tensor, b: Tensor) -> Tensor {
        result(broadcastKernel(a, b, MulKernel.self), [a, b]) { g in
            [a.requiresGrad ? (g * b).sumTo(a.shape) : nil, b.requiresGrad ? (g * a).sumTo(b.shape) : nil]
        }
    }

    public static func / (a: Tensor, b: Tensor) -> Tensor {
        result(broadcastKernel(a, b, DivKernel.self), [a, b]) { g in
            [a.requiresGrad ? (g / b).sumTo(a.shape) : nil,
             b.requiresGrad ? (-(g * a) / (b * b)).sumTo(b.shape) : nil]
        }
    }

    public static func + (a: Tensor, s: Float) -> Tensor { a.affine(1, s) }
    public static func + (s: Float, a: Tensor) -> Tensor { a.affine(1, s) }
    public static func - (a: Tensor, s: Float) -> Tensor { a.affine(1, -s) }
    public static func - (s: Float, a: Tensor) -> Tensor { a.affine(-1, s) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.affine(s, 0) }
    public static func * (s: Float, a: Tensor) -> Tensor { a.affine(s, 0) }
    public static func / (a: Tensor, s: Float) -> Tensor { a.affine(1 / s, 0) }
    public static func / (s: Float, a: Tensor) -> Tensor { Tensor.full([], s) / a }
    public static prefix func - (a: Tensor) -> Tensor { a.affine(-1, 0) }

    /// `scale * self + shift`.
    public func affine(_ scale: Float, _ shift: Float) -> Tensor {
        let out = Tensor(shape: shape, zeroed: false)
        let p = pointer, o = out.pointer
        Threads.parallelFor(count, grain: elementwiseGrain) { _, r in
            for i in r { o[i] = scale * p[i] + shift }
        }
        return Tensor.result(out, [self]) { g in [scale == 1 ? g : g.affine(scale, 0)] }
    }
}

// MARK: - Unary ops

/// A pointwise function and its derivative, written from the input `x` and output `y`.
protocol UnaryKernel {
    static func forward(_ x: Float, _ p: Float) -> Float
    static func derivative(_ x: Float, _ y: Float, _ p: Float) -> Float
    /// The vectorised C kernel (a `REPLICA_MAP_*` of CKernels) that computes `forward` over
    /// an array, where there is one; the scalar `forward` then documents it and serves tests.
    static var vectorized: Int32? { get }
}

extension UnaryKernel { static var vectorized: Int32? { nil } }

extension Tensor {
    /// Applies `K` pointwise; `p` is an optional parameter (exponent, slope, bound).
    func unary<K: UnaryKernel>(_: K.Type, _ p: Float = 0) -> Tensor {
        let out = Tensor(shape: shape, zeroed: false)
        let x = pointer, y = out.pointer
        if let fn = K.vectorized {
            Threads.parallelFor(count, grain: elementwiseGrain) { _, r in replica_map(fn, x + r.lowerBound, y + r.lowerBound, r.count) }
        } else {
            Threads.parallelFor(count, grain: elementwiseGrain) { _, r in
                for i in r { y[i] = K.forward(x[i], p) }
            }
        }
        let ys = out.storage
        return Tensor.result(out, [self]) { g in
            let gx = Tensor(shape: g.shape, zeroed: false)
            let gp = g.pointer, gxp = gx.pointer, x = self.pointer, y = ys.pointer
            if K.self == SoftplusKernel.self {
                Threads.parallelFor(g.count, grain: elementwiseGrain) { _, r in
                    replica_softplus_grad(x + r.lowerBound, gp + r.lowerBound, gxp + r.lowerBound, r.count)
                }
            } else {
                Threads.parallelFor(g.count, grain: elementwiseGrain) { _, r in
                    for i in r { gxp[i] = gp[i] * K.derivative(x[i], y[i], p) }
                }
            }
            return [gx]
        }
    }

    public func exp() -> Tensor { unary(ExpKernel.self) }
    public func log() -> Tensor { unary(LogKernel.self) }
    public func sqrt() -> Tensor { unary(SqrtKernel.self) }
    /// `self` raised to a constant exponent.
    public func pow(_ exponent: Float) -> Tensor {
        exponent == 2 ? unary(SquareKernel.self) : unary(PowKernel.self, exponent)
    }
    public func abs() -> Tensor { unary(AbsKernel.self) }
    public func relu() -> Tensor { unary(ReluKernel.self) }
    public func leakyRelu(_ slope: Float = 0.01) -> Tensor { unary(LeakyReluKernel.self, slope) }
    public func sigmoid() -> Tensor { unary(SigmoidKernel.self) }
    public func tanh() -> Tensor { unary(TanhKernel.self) }
    /// `log(1 + exp(x))`, computed stably.
    public func softplus() -> Tensor { unary(SoftplusKernel.self) }

    /// Limits values to `[min, max]`; the gradient passes where the input is inside the
    /// closed interval (as PyTorch's clamp).
    public func clamp(min low: Float = -.infinity, max high: Float = .infinity) -> Tensor {
        let out = Tensor(shape: shape, zeroed: false)
        let x = pointer, y = out.pointer
        Threads.parallelFor(count, grain: elementwiseGrain) { _, r in
            for i in r { y[i] = Swift.min(Swift.max(x[i], low), high) }
        }
        return Tensor.result(out, [self]) { g in
            let gx = Tensor(shape: g.shape, zeroed: false)
            for i in 0..<g.count { gx.pointer[i] = (x[i] >= low && x[i] <= high) ? g.pointer[i] : 0 }
            return [gx]
        }
    }
}

enum ExpKernel: UnaryKernel {
    static var vectorized: Int32? { REPLICA_MAP_EXP }
    @inline(__always) static func forward(_ x: Float, _ p: Float) -> Float { Foundation.exp(x) }
    @inline(__always) static func derivative(_ x: Float, _ y: Float, _ p: Float) -> Float { y }
}
enum LogKernel: UnaryKernel {
    static var vectorized: Int32? { REPLICA_MAP_LOG }
    @inline(__always) static func forward(_ x: Float, _ p: Float) -> Float { Foundation.log(x) }
    @inline(__always) static func derivative(_ x: Float, _ y: Float, _ p: Float) -> Float { 1 / x }
}
enum SqrtKernel: UnaryKernel {
    @inline(__always) static func forward(_ x: Float, _ p: Float) -> Float { x.squareRoot() }
    @inline(__always) static func derivative(_ x: Float, _ y: Float, _ p: Float) -> Float { 0.5 / y }
}
enum SquareKernel: UnaryKernel {
    @inline(__always) static func forward(_ x: Float, _ p: Float) -> Float { x * x }
    @inline(__always) static func derivative(_ x: Float, _ y: Float, _ p: Float) -> Float { 2 * x }
}
enum PowKernel: UnaryKernel {
    @inline(__always) static func forward(_ x: Float, _ p: Float) -> Float { Foundation.pow(x, p) }
    @inline(__always) static func derivative(_ x: Float, _ y: Float, _ p: Float) -> Float { p * Foundation.pow(x, p - 1) }
}
enum AbsKernel: UnaryKernel {
    @inline(__always) static func forward(_ x: Float, _ p: Float) -> Float { Swift.abs(x) }
    @inline(__always) static func derivative(_ x: Float, _ y: Float, _ p: Float) -> Float { x > 0 ? 1 : (x < 0 ? -1 : 0) }
}
enum ReluKernel: UnaryKernel {
    @inline(__always) static func forward(_ x: Float, _ p: Float) -> Float { x > 0 ? x : 0 }
    @inline(__always) static func derivative(_ x: Float, _ y: Float, _ p: Float) -> Float { x > 0 ? 1 : 0 }
}
enum LeakyReluKernel: UnaryKernel {
    @inline(__always) static func forward(_ x: Float, _ p: Float) -> Float { x > 0 ? x : p * x }
    @inline(__always) static func derivative(_ x: Float, _ y: Float, _ p: Float) -> Float { x > 0 ? 1 : p }
}
enum SigmoidKernel: UnaryKernel {
    static var vectorized: Int32? { REPLICA_MAP_SIGMOID }
    @inline(__always) static func forward(_ x: Float, _ p: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
    @inline(__always) static func derivative(_ x: Float, _ y: Float, _ p: Float) -> Float { y * (1 - y) }
}
enum TanhKernel: UnaryKernel {
    static var vectorized: Int32? { REPLICA_MAP_TANH }
    @inline(__always) static func forward(_ x: Float, _ p: Float) -> Float { Foundation.tanh(x) }
    @inline(__always) static func derivative(_ x: Float, _ y: Float, _ p: Float) -> Float { 1 - y * y }
}
enum SoftplusKernel: UnaryKernel {
    static var vectorized: Int32? { REPLICA_MAP_SOFTPLUS }
    @inline(__always) static func forward(_ x: Float, _ p: Float) -> Float { Swift.max(x, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(x))) }
    @inline(__always) static func derivative(_ x: Float, _ y: Float, _ p: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
}
