import Engine
import TestSupport
import XCTest

/// A finite-difference check for every differentiable op the engine exports.
final class GradientTests: XCTestCase {
    func testBroadcastArithmetic() {
        let pairs: [([Int], [Int])] = [([3, 4], [3, 4]), ([3, 4], [4]), ([2, 1, 5], [3, 1]), ([1], [2, 3]), ([2, 3, 4], [2, 1, 4]), ([], [3])]
        for (i, (sa, sb)) in pairs.enumerated() {
            let a = randn(sa, seed: UInt64(i)), b = awayFromZero(sb, seed: UInt64(100 + i), margin: 0.5)
            checkGradients([a, b]) { $0[0] + $0[1] }
            checkGradients([a, b]) { $0[0] - $0[1] }
            checkGradients([a, b]) { $0[0] * $0[1] }
            checkGradients([a, b], eps: 1e-3) { $0[0] / $0[1] }
        }
    }

    func testScalarArithmetic() {
        let a = awayFromZero([3, 5], seed: 1, margin: 0.5)
        checkGradients([a]) { 2 * $0[0] + 1 }
        checkGradients([a]) { 3 - $0[0] / 4 }
        checkGradients([a]) { -$0[0] - 0.5 }
        checkGradients([a], eps: 1e-3) { 1.5 / $0[0] }
    }

    func testUnaryMath() {
        let x = randn([4, 5], seed: 2)
        let positive = uniform([4, 5], low: 0.5, high: 2, seed: 3)
        checkGradients([x]) { $0[0].exp() }
        checkGradients([positive], eps: 1e-3) { $0[0].log() }
        checkGradients([positive], eps: 1e-3) { $0[0].sqrt() }
        checkGradients([positive], eps: 1e-3) { $0[0].pow(1.7) }
        checkGradients([x]) { $0[0].pow(2) }
        checkGradients([positive], eps: 1e-3) { $0[0].pow(-0.5) }
        let k = awayFromZero([4, 5], seed: 4)
        checkGradients([k]) { $0[0].abs() }
        checkGradients([k]) { $0[0].clamp(min: -0.5, max: 0.55) }
        checkGradients([k]) { $0[0].clamp(min: 0.05) }
    }

    func testActivations() {
        let k = awayFromZero([6, 7], seed: 5)
        checkGradients([k]) { $0[0].relu() }
        checkGradients([k]) { $0[0].leakyRelu(0.2) }
        let x = randn([6, 7], seed: 6)
        checkGradients([x]) { $0[0].sigmoid() }
        checkGradients([x]) { $0[0].tanh() }
        checkGradients([leaf(x * 5)]) { $0[0].softplus() }
    }

    func testReductions() {
        let x = randn([3, 4, 5], seed: 7)
        for axis in [0, 1, 2, -1] {
            checkGradients([x]) { $0[0].sum(axis: axis) }
            checkGradients([x]) { $0[0].sum(axis: axis, keepDims: true) }
            checkGradients([x]) { $0[0].mean(axis: axis) }
            checkGradients([x]) { $0[0].logsumexp(axis: axis) }
        }
        checkGradients([x]) { $0[0].sum() }
        checkGradients([x]) { $0[0].mean() }
        checkGradients([x]) { $0[0].sum(axes: [0, 2]) }
        checkGradients([x]) { $0[0].mean(axes: [1, 2], keepDims: true) }
        checkGradients([x]) { $0[0].logsumexp(axes: [0, 2]) }
        let d = distinct([3, 4, 5], seed: 8)
        for axis in [0, 1, 2] { checkGradients([d]) { $0[0].max(axis: axis) } }
        checkGradients([d]) { $0[0].max(axes: [1, 2]) }
        checkGradients([d]) { $0[0].max() }
    }

    func testMatmul() {
        checkGradients([randn([3, 5], seed: 9), randn([5, 4], seed: 10)]) { $0[0].matmul($0[1]) }
        checkGradients([randn([2, 3, 5], seed: 11), randn([2, 5, 4], seed: 12)]) { $0[0].matmul($0[1]) }
        checkGradients([randn([4, 6], seed: 13), randn([3, 6], seed: 14), randn([3], seed: 15)]) {
            linear($0[0], weight: $0[1], bias: $0[2])
        }
        checkGradients([randn([4, 6], seed: 16), randn([3, 6], seed: 17)]) { linear($0[0], weight: $0[1], bias: nil) }
        // Large enough to take the two-thread split path of gemm.
        withThreads(2) {
            checkGradients([randn([130, 129], seed: 18), randn([129, 131], seed: 19)], eps: 1e-2, rtol: 3e-2, atol: 1e-2) {
                $0[0].matmul($0[1]).slice(axis: 0, 0..<3)
            }
        }
    }

    func testShapeOps() {
        let x = randn([2, 3, 4], seed: 20)
        checkGradients([x]) { $0[0].reshaped([4, -1]) }
        checkGradients([x]) { $0[0].flattened() }
        checkGradients([x]) { $0[0].permuted([2, 0, 1]) }
        checkGradients([x]) { $0[0].transposed() }
        checkGradients([x]) { $0[0].transposed(0, 2) }
        checkGradients([x]) { $0[0].slice(axis: 1, 1..<3) }
        checkGradients([x]) { $0[0].split(axis: 2, sizes: [1, 3])[1] }
        let y = randn([2, 2, 4], seed: 21)
        checkGradients([x, y]) { Tensor.concat([$0[0], $0[1]], axis: 1) }
        checkGradients([x]) { $0[0].indexSelect(axis: 1, [2, 0, 2, 1]) }
        checkGradients([x]) { $0[0].gather(axis: 2, index: [0, 3, 1, 1, 2, 0, 3, 3, 0, 1, 2, 2], indexShape: [2, 3, 2]) }
    }

    func testConv2d() {
        // Every stride/padding combination the backbones use, odd sizes, with and without bias.
        let cases: [(n: Int, c: Int, h: Int, w: Int, o: Int, k: Int, s: Int, p: Int)] = [
            (4, 2, 5, 5, 3, 3, 1, 1),   // convnet4 block
            (3, 3, 7, 6, 4, 3, 2, 1),   // strided 3×3 (bench / ResNet)
            (2, 2, 6, 6, 3, 4, 2, 1),   // FactorVAE encoder
            (5, 3, 5, 5, 2, 1, 2, 0),   // ResNet shortcut 1×1 stride 2
            (2, 1, 5, 7, 2, 3, 1, 0),   // no padding
            (6, 2, 3, 3, 3, 3, 1, 1),   // tiny maps: several samples per GEMM group
            (3, 1, 23, 23, 2, 3, 1, 1), // 529 output pixels: one sample per group (no packing)
            (7, 2, 4, 4, 2, 3, 1, 1),   // 3 threads: chunks of 2, 2, 3 samples, groups of 2 with a remainder
            (3, 2, 3, 4, 3, 1, 1, 1),   // 1 × 1 with padding: the corner outputs see no input
            (4, 3, 7, 7, 5, 3, 2, 1),   // R2's last layer in small (7 × 7 → 4 × 4)
        ]
        // Threads 1, 2, 3: one chunk, even chunks, uneven chunks (weight-gradient partials
        // reduced over each); both conv paths.
        forEachConvPath { _ in
            for t in cases {
                for threads in [1, 2, 3] {
                    withThreads(threads) {
                        let x = randn([t.n, t.c, t.h, t.w], seed: 30), w = randn([t.o, t.c, t.k, t.k], seed: 31), b = randn([t.o], seed: 32)
                        checkGradients([x, w, b]) { conv2d($0[0], weight: $0[1], bias: $0[2], stride: t.s, padding: t.p) }
                        checkGradients([x, w]) { conv2d($0[0], weight: $0[1], stride: t.s, padding: t.p) }
                    }
                }
            }
        }
    }

    func testConvTranspose2d() {
        let cases: [(n: Int, cin: Int, h: Int, w: Int, cout: Int, k: Int, s: Int, p: Int, op: Int)] = [
            (2, 3, 4, 4, 2, 4, 2, 1, 0),   // FactorVAE decoder
            (3, 2, 3, 5, 3, 3, 1, 1, 0),
            (2, 2, 3, 3, 2, 3, 2, 1, 1),   // output padding
            (5, 2, 2, 2, 2, 3, 2, 0, 0),   // several samples per group
            (3, 1, 23, 23, 1, 3, 1, 1, 0), // 529 input pixels: one sample per group
            (7, 2, 3, 3, 2, 3, 1, 1, 0),   // 3 threads: uneven chunks, groups with a remainder
        ]
        for t in cases {
            for threads in [1, 2, 3] {
                withThreads(threads) {
                    let x = randn([t.n, t.cin, t.h, t.w], seed: 40), w = randn([t.cin, t.cout, t.k, t.k], seed: 41), b = randn([t.cout], seed: 42)
                    checkGradients([x, w, b]) { convTranspose2d($0[0], weight: $0[1], bias: $0[2], stride: t.s, padding: t.p, outputPadding: t.op) }
                }
            }
        }
    }

    func testPooling() {
        let d = distinct([2, 3, 7, 6], seed: 50)
        checkGradients([d]) { $0[0].maxPool2d(kernel: 2) }
        checkGradients([distinct([1, 2, 4, 36], seed: 52)]) { $0[0].maxPool2d(kernel: 2) }   // the vector path
        checkGradients([d]) { $0[0].maxPool2d(kernel: 3, stride: 2, padding: 1) }
        let x = randn([2, 3, 7, 6], seed: 51)
        checkGradients([x]) { $0[0].avgPool2d(kernel: 2) }
        checkGradients([x]) { $0[0].avgPool2d(kernel: 3, stride: 2, padding: 1) }
        checkGradients([x]) { $0[0].globalAveragePool() }
    }

    func testBatchNorm() {
        for shape in [[6, 4], [3, 4, 5], [4, 3, 3, 5]] {
            let c = shape[1]
            let x = randn(shape, seed: 60), gamma = randn([c], seed: 61), beta = randn([c], seed: 62)
            checkGradients([x, gamma, beta], eps: 1e-2, rtol: 3e-2, atol: 3e-3) {
                batchNorm($0[0], weight: $0[1], bias: $0[2], runningMean: nil, runningVar: nil, training: true)
            }
            checkGradients([x]) {   // affine = false, as SimSiam's projector output
                batchNorm($0[0], weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true)
            }
            let rm = randn([c], seed: 63, requiresGrad: false), rv = uniform([c], low: 0.5, high: 2, seed: 64, requiresGrad: false)
            checkGradients([x, gamma, beta]) {
                batchNorm($0[0], weight: $0[1], bias: $0[2], runningMean: rm, runningVar: rv, training: false)
            }
        }
    }

    /// The fused batch norm + ReLU equals the composition bit for bit, forward and backward.
    func testFusedBatchNormReLUEqualsTheComposition() {
        for training in [true, false] {
            let x = randn([4, 3, 5, 5], seed: 65), gamma = randn([3], seed: 66), beta = randn([3], seed: 67)
            let rm = randn([3], seed: 68, requiresGrad: false), rv = uniform([3], low: 0.5, high: 2, seed: 69, requiresGrad: false)
            let (rm2, rv2) = (rm.copy(), rv.copy())
            let r = randn([4, 3, 5, 5], seed: 70, requiresGrad: false)
            let fused = batchNorm(x, weight: gamma, bias: beta, runningMean: rm, runningVar: rv, training: training, relu: true)
            fused.backward(r)
            let (gx, gg, gb) = (x.grad!.array, gamma.grad!.array, beta.grad!.array)
            for t in [x, gamma, beta] { t.grad = nil }
            let plain = batchNorm(x, weight: gamma, bias: beta, runningMean: rm2, runningVar: rv2, training: training).relu()
            plain.backward(r)
            XCTAssertEqual(fused.array, plain.array)
            XCTAssertEqual(gx, x.grad!.array)
            XCTAssertEqual(gg, gamma.grad!.array)
            XCTAssertEqual(gb, beta.grad!.array)
            XCTAssertEqual(rm.array, rm2.array)
            XCTAssertTrue(fused.array.contains(0) && fused.array.contains { $0 > 0 })
        }
    }

    /// Batch norm + ReLU + 2 × 2 max-pool fused (training) equals the composition bit for
    /// bit, forward and backward: odd sizes (a row and a column the pool skips), the 8-wide
    /// vector path, and several planes per thread; its gradients match finite differences.
    func testFusedBatchNormReLUMaxPoolEqualsTheComposition() {
        for shape in [[4, 3, 5, 5], [2, 2, 4, 36], [5, 2, 6, 7]] {
            let c = shape[1]
            let x = randn(shape, seed: 71), gamma = randn([c], seed: 72), beta = randn([c], seed: 73)
            let rm = randn([c], seed: 74, requiresGrad: false), rv = uniform([c], low: 0.5, high: 2, seed: 75, requiresGrad: false)
            let (rm2, rv2) = (rm.copy(), rv.copy())
            let fused = batchNorm(x, weight: gamma, bias: beta, runningMean: rm, runningVar: rv, training: true, relu: true, maxPool2x2: true)
            XCTAssertEqual(fused.shape, [shape[0], c, shape[2] / 2, shape[3] / 2])
            let r = randn(fused.shape, seed: 76, requiresGrad: false)
            fused.backward(r)
            let (gx, gg, gb) = (x.grad!.array, gamma.grad!.array, beta.grad!.array)
            for t in [x, gamma, beta] { t.grad = nil }
            let plain = batchNorm(x, weight: gamma, bias: beta, runningMean: rm2, runningVar: rv2, training: true, relu: true).maxPool2d(kernel: 2)
            plain.backward(r)
            XCTAssertEqual(fused.array.map(\.bitPattern), plain.array.map(\.bitPattern), "\(shape)")
            XCTAssertEqual(gx.map(\.bitPattern), x.grad!.array.map(\.bitPattern), "\(shape)")
            XCTAssertEqual(gg.map(\.bitPattern), gamma.grad!.array.map(\.bitPattern), "\(shape)")
            XCTAssertEqual(gb.map(\.bitPattern), beta.grad!.array.map(\.bitPattern), "\(shape)")
            XCTAssertEqual(rm.array, rm2.array)
            XCTAssertTrue(fused.array.contains(0) && fused.array.contains { $0 > 0 })
        }
        // γ and β well away from 0, so that ±ε crosses the ReLU's kink at one value at most.
        checkGradients([distinct([3, 2, 5, 6], seed: 77, spacing: 0.5), Tensor([1.3, -0.8], shape: [2], requiresGrad: true),
                        Tensor([0.3, -0.2], shape: [2], requiresGrad: true)]) {
            batchNorm($0[0], weight: $0[1], bias: $0[2], runningMean: nil, runningVar: nil, training: true, relu: true, maxPool2x2: true)
        }
    }

    func testNormalizeAndDropout() {
        let x = randn([5, 6], seed: 70)
        checkGradients([x]) { $0[0].l2Normalized(axis: 1) }
        checkGradients([x]) { $0[0].l2Normalized(axis: 0) }
        // Dropout is x · mask / (1 − p) for a fixed mask: replay the same stream each call.
        checkGradients([x]) { var rng = RNG(seed: 7); return dropout($0[0], p: 0.3, training: true, rng: &rng) }
    }

    func testLosses() {
        let logits = randn([5, 4], seed: 80)
        checkGradients([logits]) { $0[0].logSoftmax(axis: 1) }
        checkGradients([randn([3, 4, 2], seed: 81)]) { $0[0].logSoftmax(axis: 1) }
        checkGradients([logits]) { crossEntropy($0[0], labels: [0, 3, 1, 1, 2]) }
        checkGradients([logits]) { crossEntropy($0[0], labels: [0, 3, 1, 1, 2], reduction: .sum) }
        let targets = uniform([5, 4], low: 0, high: 1, seed: 82, requiresGrad: false)
        checkGradients([leaf(logits * 3)]) { binaryCrossEntropyWithLogits($0[0], targets: targets) }
        checkGradients([logits]) { binaryCrossEntropyWithLogits($0[0], targets: targets, reduction: .sum) }
        let other = randn([5, 4], seed: 83)
        checkGradients([logits, other]) { meanSquaredError($0[0], $0[1]) }
        checkGradients([logits, other]) { meanSquaredError($0[0], $0[1], reduction: .sum) }
    }

    /// A composite graph where tensors feed several paths (gradient accumulation inside
    /// backward). Stop-gradient has no finite-difference counterpart; AutogradTests covers it.
    func testCompositeGraph() {
        let x = randn([4, 3], seed: 90), w = randn([3, 3], seed: 91)
        checkGradients([x, w]) { t in
            let h = t[0].matmul(t[1])
            return (h.tanh() * h + h.sigmoid() * t[0]).l2Normalized(axis: 1)
        }
    }
}
