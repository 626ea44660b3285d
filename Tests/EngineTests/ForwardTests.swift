import Engine
import TestSupport
import XCTest

/// Forward values against independent computations: naive loops and hand-worked numbers.
final class ForwardTests: XCTestCase {
    func naiveConv(_ x: Tensor, _ w: Tensor, _ b: Tensor?, s: Int, p: Int) -> [Float] {
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (o, k) = (w.shape[0], w.shape[2])
        let ho = (h + 2 * p - k) / s + 1, wo = (wd + 2 * p - k) / s + 1
        let X = x.array, W = w.array, B = b?.array
        var out = [Float](repeating: 0, count: n * o * ho * wo)
        for i in 0..<n { for oc in 0..<o { for y in 0..<ho { for xx in 0..<wo {
            var acc = Double(B?[oc] ?? 0)
            for ic in 0..<c { for ki in 0..<k { for kj in 0..<k {
                let iy = y * s - p + ki, ix = xx * s - p + kj
                if iy >= 0 && iy < h && ix >= 0 && ix < wd {
                    acc += Double(W[((oc * c + ic) * k + ki) * k + kj]) * Double(X[((i * c + ic) * h + iy) * wd + ix])
                }
            } } }
            out[((i * o + oc) * ho + y) * wo + xx] = Float(acc)
        } } } }
        return out
    }

    func testConv2dMatchesNaiveLoops() {
        let cases: [(n: Int, c: Int, h: Int, o: Int, k: Int, s: Int, p: Int)] = [
            (8, 1, 28, 16, 3, 1, 1), (8, 16, 14, 32, 3, 1, 1), (16, 8, 3, 8, 3, 1, 1), (9, 3, 9, 5, 3, 2, 1),
            (7, 4, 8, 6, 4, 2, 1), (10, 4, 7, 6, 1, 2, 0), (3, 2, 6, 3, 3, 1, 0),
            (3, 2, 4, 3, 1, 1, 1),      // 1 × 1 with padding: the corner outputs see no input
            (5, 16, 7, 24, 3, 2, 1),    // R2's last layer in small: 7 × 7 → 4 × 4
        ]
        forEachConvPath { path in
            for t in cases {
                for threads in [1, 2] {
                    withThreads(threads) {
                        let x = randn([t.n, t.c, t.h, t.h], seed: 1, requiresGrad: false)
                        let w = randn([t.o, t.c, t.k, t.k], seed: 2, requiresGrad: false), b = randn([t.o], seed: 3, requiresGrad: false)
                        let y = conv2d(x, weight: w, bias: b, stride: t.s, padding: t.p)
                        assertClose(y.array, naiveConv(x, w, b, s: t.s, p: t.p), tol: 1e-4)
                        let plain = conv2d(x, weight: w, stride: t.s, padding: t.p)
                        assertClose(plain.array, naiveConv(x, w, nil, s: t.s, p: t.p), tol: 1e-4)
                    }
                }
            }
        }
    }

    /// `conv2d(…, then:)` is evaluation-mode batch norm (and ReLU) of the convolution, bit
    /// for bit, on both paths, with and without a bias; and against the formula on the
    /// naive convolution.
    func testConv2dThenAffineIsBatchNormOfTheConvolution() {
        let cases: [(n: Int, c: Int, h: Int, o: Int, s: Int)] = [(6, 3, 9, 5, 1), (9, 8, 8, 16, 2), (5, 16, 7, 24, 2)]
        forEachConvPath { _ in
            for t in cases { for threads in [1, 2] { for relu in [false, true] { for withBias in [false, true] {
                withThreads(threads) {
                    let x = randn([t.n, t.c, t.h, t.h], seed: 21, requiresGrad: false), w = randn([t.o, t.c, 3, 3], seed: 22, requiresGrad: false)
                    let b = withBias ? randn([t.o], seed: 23, requiresGrad: false) : nil
                    let gamma = randn([t.o], seed: 24, requiresGrad: false), beta = randn([t.o], seed: 25, requiresGrad: false)
                    let mean = randn([t.o], seed: 26, requiresGrad: false), variance = Tensor(randn([t.o], seed: 27).array.map { $0 * $0 + 0.1 }, shape: [t.o])
                    let affine = ChannelAffine(runningMean: mean, runningVar: variance, weight: gamma, bias: beta, eps: 1e-5, relu: relu)
                    let fused = withoutGradients { conv2d(x, weight: w, bias: b, stride: t.s, padding: 1, then: affine) }
                    let apart = batchNorm(conv2d(x, weight: w, bias: b, stride: t.s, padding: 1), weight: gamma, bias: beta,
                                          runningMean: mean, runningVar: variance, training: false, relu: relu)
                    XCTAssertEqual(fused.array, apart.array, "\(t) threads \(threads) relu \(relu) bias \(withBias)")
                    let conv = naiveConv(x, w, b, s: t.s, p: 1), pixels = conv.count / (t.n * t.o)
                    let G = gamma.array, B = beta.array, M = mean.array, V = variance.array
                    let expected = conv.indices.map { i -> Float in
                        let ch = (i / pixels) % t.o
                        let v = (conv[i] - M[ch]) / (V[ch] + 1e-5).squareRoot() * G[ch] + B[ch]
                        return relu ? max(v, 0) : v
                    }
                    assertClose(fused.array, expected, tol: 1e-4)
                }
            } } } }
        }
    }

    func testConvTranspose2dMatchesNaiveScatter() {
        let cases: [(n: Int, cin: Int, h: Int, cout: Int, k: Int, s: Int, p: Int, op: Int)] = [
            (4, 8, 4, 4, 4, 2, 1, 0), (9, 3, 2, 2, 3, 2, 0, 0), (3, 2, 5, 3, 3, 1, 1, 0), (5, 2, 3, 2, 3, 2, 1, 1),
        ]
        for t in cases {
            for threads in [1, 2] {
                withThreads(threads) {
                    let x = randn([t.n, t.cin, t.h, t.h], seed: 4, requiresGrad: false)
                    let w = randn([t.cin, t.cout, t.k, t.k], seed: 5, requiresGrad: false), b = randn([t.cout], seed: 6, requiresGrad: false)
                    let y = convTranspose2d(x, weight: w, bias: b, stride: t.s, padding: t.p, outputPadding: t.op)
                    let ho = (t.h - 1) * t.s - 2 * t.p + t.k + t.op
                    XCTAssertEqual(y.shape, [t.n, t.cout, ho, ho])
                    var expected = [Double](repeating: 0, count: t.n * t.cout * ho * ho)
                    let X = x.array, W = w.array, B = b.array
                    for i in 0..<t.n { for ci in 0..<t.cin { for iy in 0..<t.h { for ix in 0..<t.h {
                        for co in 0..<t.cout { for ki in 0..<t.k { for kj in 0..<t.k {
                            let oy = iy * t.s - t.p + ki, ox = ix * t.s - t.p + kj
                            if oy >= 0 && oy < ho && ox >= 0 && ox < ho {
                                expected[((i * t.cout + co) * ho + oy) * ho + ox] +=
                                    Double(X[((i * t.cin + ci) * t.h + iy) * t.h + ix]) * Double(W[((ci * t.cout + co) * t.k + ki) * t.k + kj])
                            }
                        } } }
                    } } } }
                    for i in 0..<t.n { for co in 0..<t.cout { for q in 0..<(ho * ho) { expected[(i * t.cout + co) * ho * ho + q] += Double(B[co]) } } }
                    assertClose(y.array, expected.map(Float.init), tol: 1e-4)
                }
            }
        }
    }

    /// The engine's GEMM in all four transpositions, on shapes on both sides of the rule
    /// that sends large products to BLIS (where it is loaded), with alpha, beta and leading
    /// dimensions wider than the matrices, against a Double loop.
    func testGemmEveryTranspositionAcrossLibraries() {
        let shapes = [(5, 7, 3), (64, 300, 80), (300, 64, 80), (257, 260, 33), (70, 90, 20), (40, 200, 150)]
        XCTAssertTrue(shapes.contains { gemmUsesBLIS($0.0, $0.1, $0.2) } && shapes.contains { !gemmUsesBLIS($0.0, $0.1, $0.2) })
        for (m, n, k) in shapes {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                let (lda, ldb, ldc) = ((ta ? m : k) + 3, (tb ? k : n) + 2, n + 5)
                let a = (0..<((ta ? k : m) * lda)).map { Float(sin(Double($0) * 0.37)) }
                let b = (0..<((tb ? n : k) * ldb)).map { Float(cos(Double($0) * 0.11)) }
                let c0 = (0..<(m * ldc)).map { Float(($0 % 17) - 8) * 0.25 }
                var c = c0
                a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                    gemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.5, a: ap.baseAddress!, lda: lda,
                         b: bp.baseAddress!, ldb: ldb, beta: -2, c: cp.baseAddress!, ldc: ldc)
                } } }
                var worst = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        var s = 0.0
                        for q in 0..<k { s += Double(ta ? a[q * lda + i] : a[i * lda + q]) * Double(tb ? b[j * ldb + q] : b[q * ldb + j]) }
                        worst = max(worst, abs(0.5 * s - 2 * Double(c0[i * ldc + j]) - Double(c[i * ldc + j])))
                    }
                    for j in n..<ldc { XCTAssertEqual(c[i * ldc + j], c0[i * ldc + j], "gemm wrote past n") }
                }
                XCTAssertLessThan(worst, 1e-4, "gemm \(m)×\(n)×\(k) transA \(ta) transB \(tb)")
            }
        }
    }

    func testMatmulMatchesNaiveLoops() {
        for (m, k, n) in [(3, 4, 5), (130, 70, 150), (1, 9, 1)] {
            for threads in [1, 2] {
                withThreads(threads) {
                    let a = randn([m, k], seed: 7, requiresGrad: false), b = randn([k, n], seed: 8, requiresGrad: false)
                    let A = a.array, B = b.array
                    var expected = [Float](repeating: 0, count: m * n)
                    for i in 0..<m { for j in 0..<n { var s = 0.0; for q in 0..<k { s += Double(A[i * k + q]) * Double(B[q * n + j]) }; expected[i * n + j] = Float(s) } }
                    assertClose(a.matmul(b).array, expected)
                    let bias = randn([n], seed: 9, requiresGrad: false)
                    let lin = linear(a, weight: b.transposed(), bias: bias)
                    assertClose(lin.array, (0..<(m * n)).map { expected[$0] + bias.array[$0 % n] })
                }
            }
        }
    }

    func testBroadcastingValues() {
        let a = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]), b = Tensor([10, 20, 30], shape: [3]), c = Tensor([100, 200], shape: [2, 1])
        XCTAssertEqual((a + b).array, [11, 22, 33, 14, 25, 36])
        XCTAssertEqual((a * c).array, [100, 200, 300, 800, 1000, 1200])
        XCTAssertEqual((c - b).array, [90, 80, 70, 190, 180, 170])
        XCTAssertEqual((c - b).shape, [2, 3])
        XCTAssertEqual((a / 2).array, [0.5, 1, 1.5, 2, 2.5, 3])
        XCTAssertEqual((1 - a).array, [0, -1, -2, -3, -4, -5])
    }

    func testReductionAndShapeValues() {
        let x = Tensor((0..<24).map(Float.init), shape: [2, 3, 4])
        XCTAssertEqual(x.sum(axis: 1).array, [12, 15, 18, 21, 48, 51, 54, 57])
        XCTAssertEqual(x.sum(axes: [0, 2]).array, [60, 92, 124])
        XCTAssertEqual(x.mean().item, 11.5)
        XCTAssertEqual(x.max(axis: 2).array, [3, 7, 11, 15, 19, 23])
        XCTAssertEqual(x.permuted([2, 0, 1]).array.prefix(6), [0, 4, 8, 12, 16, 20])
        XCTAssertEqual(x.transposed(0, 1).shape, [3, 2, 4])
        XCTAssertEqual(x.slice(axis: 2, 1..<3).array.prefix(4), [1, 2, 5, 6])
        XCTAssertEqual(Tensor.concat([x, x], axis: 0).shape, [4, 3, 4])
        XCTAssertEqual(x.indexSelect(axis: 1, [2, 0]).array.prefix(8), [8, 9, 10, 11, 0, 1, 2, 3])
        let lse = Tensor([1, 2, 3], shape: [3]).logsumexp(axis: 0).item
        XCTAssertEqual(lse, Float(Foundation.log(Foundation.exp(1.0) + Foundation.exp(2.0) + Foundation.exp(3.0))), accuracy: 1e-6)
        // Stable for large inputs where a naive exp overflows.
        XCTAssertEqual(Tensor([1000, 1000], shape: [2]).logsumexp(axis: 0).item, 1000 + Float(Foundation.log(2.0)), accuracy: 1e-3)
    }

    func testPoolingMatchesLoops() {
        // 38 wide: 2×2 max pooling's vector path (8 outputs at a time) plus its scalar tail.
        for (H, W) in [(7, 6), (9, 38)] {
            let x = randn([2, 3, H, W], seed: 10, requiresGrad: false)
            let X = x.array
            for (k, s, p) in [(2, 2, 0), (3, 2, 1), (3, 1, 1)] {
                let ho = (H + 2 * p - k) / s + 1, wo = (W + 2 * p - k) / s + 1
                var mx = [Float](), av = [Float]()
                for plane in 0..<6 { for y in 0..<ho { for xx in 0..<wo {
                    var m = -Float.infinity, a: Float = 0
                    for ky in 0..<k { for kx in 0..<k {
                        let iy = y * s - p + ky, ix = xx * s - p + kx
                        if iy >= 0 && iy < H && ix >= 0 && ix < W { let v = X[plane * H * W + iy * W + ix]; m = Swift.max(m, v); a += v }
                    } }
                    mx.append(m); av.append(a / Float(k * k))
                } } }
                XCTAssertEqual(x.maxPool2d(kernel: k, stride: s, padding: p).array, mx)
                assertClose(x.avgPool2d(kernel: k, stride: s, padding: p).array, av, tol: 1e-6)
            }
        }
        // Ties: the gradient goes to the first maximum in row-major order, on both paths.
        for w in [4, 32] {
            let ones = Tensor.ones([1, 1, 2, w], requiresGrad: true)
            ones.maxPool2d(kernel: 2).sum().backward()
            let expected: [Float] = (0..<(2 * w)).map { $0 < w && $0 % 2 == 0 ? 1 : 0 }
            XCTAssertEqual(ones.grad!.array, expected)
        }
        let x = randn([2, 3, 7, 6], seed: 10, requiresGrad: false), X = x.array
        // 7 → 3 with floor mode, as convnet4's third pooling.
        XCTAssertEqual(x.maxPool2d(kernel: 2).shape, [2, 3, 3, 3])
        let gap = x.globalAveragePool()
        XCTAssertEqual(gap.shape, [2, 3])
        assertClose(gap.array, (0..<6).map { pl in X[(pl * 42)..<(pl * 42 + 42)].reduce(0, +) / 42 }, tol: 1e-6)
    }

    /// [N, C] batch norm (the row-wise path) against a Double loop, with more channels than
    /// threads and a width that is no multiple of a vector: output, running statistics and
    /// the input gradient dx = γ/σ · (g − mean(g) − x̂ · mean(g x̂)).
    func testBatchNormRowsAgainstDoubleLoop() {
        let (n, c) = (50, 37)
        let x = randn([n, c], seed: 70), gamma = randn([c], seed: 71), beta = randn([c], seed: 72)
        let g = randn([n, c], seed: 73, requiresGrad: false)
        let rm = Tensor.zeros([c]), rv = Tensor.ones([c])
        let y = batchNorm(x, weight: gamma, bias: beta, runningMean: rm, runningVar: rv, training: true)
        (y * g).sum().backward()
        let X = x.array.map(Double.init), G = g.array.map(Double.init), Y = y.array, DX = x.grad!.array
        for ch in 0..<c {
            let col = (0..<n).map { X[$0 * c + ch] }, gcol = (0..<n).map { G[$0 * c + ch] }
            let mean = col.reduce(0, +) / Double(n)
            let variance = col.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)
            let sigma = (variance + 1e-5).squareRoot(), w = Double(gamma.array[ch])
            let xhat = col.map { ($0 - mean) / sigma }
            let meanG = gcol.reduce(0, +) / Double(n)
            let meanGX = zip(gcol, xhat).map { $0 * $1 }.reduce(0, +) / Double(n)
            for i in 0..<n {
                XCTAssertEqual(Double(Y[i * c + ch]), w * xhat[i] + Double(beta.array[ch]), accuracy: 2e-5)
                XCTAssertEqual(Double(DX[i * c + ch]), w / sigma * (gcol[i] - meanG - xhat[i] * meanGX), accuracy: 2e-4)
            }
            XCTAssertEqual(Double(rm.array[ch]), 0.1 * mean, accuracy: 1e-6)
            XCTAssertEqual(Double(rv.array[ch]), 0.9 + 0.1 * variance * Double(n) / Double(n - 1), accuracy: 1e-5)
        }
    }

    /// Hand-worked batch norm: one channel holds 1, 2, 3, 4 (mean 2.5, biased variance 1.25,
    /// unbiased 5/3); the other 0, 0, 0, 4 (mean 1, variance 3, unbiased 4).
    func testBatchNormTrainAndEval() {
        let x = Tensor([1, 0, 2, 0, 3, 0, 4, 4], shape: [4, 2])
        let gamma = Tensor([2, 1], shape: [2]), beta = Tensor([0.5, -1], shape: [2])
        let rm = Tensor.zeros([2]), rv = Tensor.ones([2])
        let y = batchNorm(x, weight: gamma, bias: beta, runningMean: rm, runningVar: rv, training: true)
        let s0 = Float(1 / (1.25 + 1e-5).squareRoot()), s1 = Float(1 / (3 + 1e-5).squareRoot())
        assertClose(y.array, [2 * -1.5 * s0 + 0.5, -1 * s1 - 1, 2 * -0.5 * s0 + 0.5, -1 * s1 - 1,
                              2 * 0.5 * s0 + 0.5, -1 * s1 - 1, 2 * 1.5 * s0 + 0.5, 3 * s1 - 1], tol: 1e-5)
        // running = 0.9·running + 0.1·batch, with the unbiased variance.
        assertClose(rm.array, [0.25, 0.1], tol: 1e-6)
        assertClose(rv.array, [0.9 + 0.1 * 5 / 3, 0.9 + 0.1 * 4], tol: 1e-6)
        // Evaluation uses the running estimates and leaves them alone.
        let e = batchNorm(x, weight: gamma, bias: beta, runningMean: rm, runningVar: rv, training: false)
        let r0 = 1 / (rv.array[0] + 1e-5).squareRoot(), r1 = 1 / (rv.array[1] + 1e-5).squareRoot()
        assertClose(e.array, [2 * (1 - 0.25) * r0 + 0.5, (0 - 0.1) * r1 - 1, 2 * (2 - 0.25) * r0 + 0.5, (0 - 0.1) * r1 - 1,
                              2 * (3 - 0.25) * r0 + 0.5, (0 - 0.1) * r1 - 1, 2 * (4 - 0.25) * r0 + 0.5, (4 - 0.1) * r1 - 1], tol: 1e-5)
        assertClose(rm.array, [0.25, 0.1], tol: 1e-6)
        // 4-D: statistics over N, H, W per channel.
        let x4 = randn([3, 2, 4, 5], seed: 11, requiresGrad: false)
        let y4 = batchNorm(x4, weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true)
        let Y = y4.array
        for c in 0..<2 {
            var vals: [Double] = []
            for n in 0..<3 { let start = (n * 2 + c) * 20; vals += Y[start..<(start + 20)].map(Double.init) }
            let mean: Double = vals.reduce(0, +) / 60
            let variance: Double = vals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 60
            XCTAssertEqual(mean, 0, accuracy: 1e-5)
            XCTAssertEqual(variance, 1, accuracy: 1e-3)
        }
    }

    func testCrossEntropyMatchesLogSumExpForm() {
        let logits = randn([6, 5], seed: 12, requiresGrad: false)
        let labels = [0, 4, 2, 2, 1, 3]
        let L = logits.array
        var expected = 0.0
        for i in 0..<6 {
            let row = (0..<5).map { Double(L[i * 5 + $0]) }
            expected += Foundation.log(row.map { Foundation.exp($0) }.reduce(0, +)) - row[labels[i]]
        }
        XCTAssertEqual(Double(crossEntropy(logits, labels: labels).item), expected / 6, accuracy: 1e-5)
        XCTAssertEqual(Double(crossEntropy(logits, labels: labels, reduction: .sum).item), expected, accuracy: 1e-4)
    }

    func testBCEAndMSEAgainstFormulas() {
        let x = Tensor([-30, -1, 0, 2, 40], shape: [5]), t = Tensor([0, 1, 0.5, 1, 0], shape: [5])
        // −[t·log σ(x) + (1 − t)·log(1 − σ(x))], written with log1p for the extremes.
        let expected = zip(x.array, t.array).map { (v, y) -> Double in
            let v = Double(v), y = Double(y)
            return y * Foundation.log1p(Foundation.exp(-v)) + (1 - y) * Foundation.log1p(Foundation.exp(v))
        }
        XCTAssertEqual(Double(binaryCrossEntropyWithLogits(x, targets: t).item), expected.reduce(0, +) / 5, accuracy: 1e-5)
        let a = Tensor([1, 2, 3], shape: [3]), b = Tensor([2, 0, 3], shape: [3])
        XCTAssertEqual(meanSquaredError(a, b).item, 5.0 / 3, accuracy: 1e-6)
        XCTAssertEqual(meanSquaredError(a, b, reduction: .sum).item, 5)
    }

    func testActivationValues() {
        let x = Tensor([-2, -0.5, 0, 0.5, 2], shape: [5])
        XCTAssertEqual(x.relu().array, [0, 0, 0, 0.5, 2])
        XCTAssertEqual(x.leakyRelu(0.1).array, [-0.2, -0.05, 0, 0.5, 2])
        assertClose(x.sigmoid().array, x.array.map { 1 / (1 + Foundation.exp(-$0)) }, tol: 1e-6)
        assertClose(x.softplus().array, x.array.map { Foundation.log(1 + Foundation.exp($0)) }, tol: 1e-6)
        XCTAssertEqual(Tensor([100], shape: [1]).softplus().item, 100)   // no overflow
        XCTAssertEqual(x.clamp(min: -1, max: 1).array, [-1, -0.5, 0, 0.5, 1])
        let n = Tensor([3, 4, 0, 0], shape: [2, 2]).l2Normalized(axis: 1)
        XCTAssertEqual(n.array, [0.6, 0.8, 0, 0])   // the zero row stays zero (eps)
    }

    func testDropoutStatistics() {
        var rng = RNG(seed: 3)
        let x = Tensor.ones([100_000])
        let y = dropout(x, p: 0.25, training: true, rng: &rng)
        let kept = y.array.filter { $0 != 0 }
        XCTAssertEqual(Double(kept.count) / 100_000, 0.75, accuracy: 0.01)
        XCTAssertTrue(kept.allSatisfy { Swift.abs($0 - 4.0 / 3) < 1e-6 })
        XCTAssertTrue(dropout(x, p: 0.25, training: false, rng: &rng) === x)
    }
}
