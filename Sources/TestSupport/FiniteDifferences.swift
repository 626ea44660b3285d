import Engine
import XCTest

/// Compares backward() with central finite differences of `L = Σ f(inputs) ⊙ R` for a fixed
/// random R (the projection is summed in Double so only the op's own rounding remains).
public func checkGradients(_ inputs: [Tensor], eps: Float = 1e-2, rtol: Float = 2e-2, atol: Float = 2e-3,
                    file: StaticString = #filePath, line: UInt = #line, _ f: ([Tensor]) -> Tensor) {
    for t in inputs { t.grad = nil }
    let y = f(inputs)
    var rng = RNG(seed: 12345)
    let r = Tensor.randn(y.shape, rng: &rng)
    XCTAssertTrue(y.requiresGrad, "output does not require grad", file: file, line: line)
    y.backward(r)
    let rv = r.array.map(Double.init)
    func loss() -> Double {
        withoutGradients { zip(f(inputs).array, rv).reduce(0.0) { $0 + Double($1.0) * $1.1 } }
    }
    for (k, t) in inputs.enumerated() where t.requiresGrad {
        guard let g = t.grad else { XCTFail("input \(k) got no gradient", file: file, line: line); continue }
        XCTAssertEqual(g.shape, t.shape, file: file, line: line)
        var worst: (Int, Float, Float)? = nil
        for i in 0..<t.count {
            let v = t.pointer[i]
            t.pointer[i] = v + eps; let lp = loss()
            t.pointer[i] = v - eps; let lm = loss()
            t.pointer[i] = v
            let numeric = Float((lp - lm) / Double(2 * eps)), analytic = g.pointer[i]
            if Swift.abs(numeric - analytic) > atol + rtol * Swift.max(Swift.abs(numeric), Swift.abs(analytic)) {
                if worst == nil { worst = (i, analytic, numeric) }
            }
        }
        if let (i, a, n) = worst {
            XCTFail("input \(k) \(t.shape) element \(i): analytic \(a), numeric \(n)", file: file, line: line)
        }
    }
}

/// Random values in ±[margin, 1]: away from the kinks of relu, abs, max and clamp.
public func awayFromZero(_ shape: [Int], seed: UInt64, margin: Float = 0.1) -> Tensor {
    var rng = RNG(seed: seed)
    let t = Tensor.uniform(shape, low: margin, high: 1, rng: &rng)
    for i in 0..<t.count where rng.bernoulli(0.5) { t.pointer[i] = -t.pointer[i] }
    t.requiresGrad = true
    return t
}

/// A fresh leaf holding the values of `t`.
public func leaf(_ t: Tensor) -> Tensor {
    let c = t.copy()
    c.requiresGrad = true
    return c
}

public func randn(_ shape: [Int], seed: UInt64, requiresGrad: Bool = true) -> Tensor {
    var rng = RNG(seed: seed)
    return Tensor.randn(shape, rng: &rng, requiresGrad: requiresGrad)
}

public func uniform(_ shape: [Int], low: Float, high: Float, seed: UInt64, requiresGrad: Bool = true) -> Tensor {
    var rng = RNG(seed: seed)
    return Tensor.uniform(shape, low: low, high: high, rng: &rng, requiresGrad: requiresGrad)
}

/// Distinct values (a shuffled ramp), so maxima are unique and well separated.
public func distinct(_ shape: [Int], seed: UInt64, spacing: Float = 0.05) -> Tensor {
    var rng = RNG(seed: seed)
    let n = shape.reduce(1, *)
    let values = rng.permutation(n).map { Float($0) * spacing - Float(n) * spacing / 2 }
    return Tensor(values, shape: shape, requiresGrad: true)
}

public func assertClose(_ a: [Float], _ b: [Float], tol: Float = 1e-4, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "sizes differ", file: file, line: line)
    for (i, (x, y)) in zip(a, b).enumerated() where Swift.abs(x - y) > tol * Swift.max(1, Swift.abs(y)) {
        XCTFail("element \(i): \(x) vs expected \(y)", file: file, line: line)
        return
    }
}

/// Runs `body` with the engine's thread count set to `n`.
public func withThreads(_ n: Int, _ body: () throws -> Void) rethrows {
    let previous = Threads.count
    Threads.count = n
    defer { Threads.count = previous }
    try body()
}

/// Central differences of a scalar function of `t`'s elements, evaluated in Float.
public func numericGradient(_ t: Tensor, eps: Float = 1e-2, _ f: () -> Float) -> [Float] {
    (0..<t.count).map { i in
        let v = t.pointer[i]
        t.pointer[i] = v + eps; let up = f()
        t.pointer[i] = v - eps; let down = f()
        t.pointer[i] = v
        return (up - down) / (2 * eps)
    }
}

/// Runs `body` once with conv2d on each of its paths (`Kernels.ConvPath`), for tests that
/// hold every path to the same independent values.
public func forEachConvPath(_ body: (Kernels.ConvPath) throws -> Void) rethrows {
    let previous = Kernels.convPath
    defer { Kernels.convPath = previous }
    for path in [Kernels.ConvPath.im2col, .taps] { Kernels.convPath = path; try body(path) }
}
