import Engine
import NN
import TestSupport
import XCTest

/// State-dict keys, shapes and order as PyTorch's (the expected lists were printed by
/// PyTorch 2.13 for the equivalent nn.Module definitions).
final class ModuleTests: XCTestCase {
    func testConvNet4KeysAndShapesMatchPyTorch() {
        var rng = RNG(seed: 0)
        let m = ConvNet4(width: .lite, rng: &rng)
        let expected: [(String, [Int])] = [
            ("layers.0.weight", [16, 1, 3, 3]), ("layers.1.weight", [16]), ("layers.1.bias", [16]), ("layers.1.running_mean", [16]),
            ("layers.1.running_var", [16]), ("layers.1.num_batches_tracked", []), ("layers.4.weight", [32, 16, 3, 3]),
            ("layers.5.weight", [32]), ("layers.5.bias", [32]), ("layers.5.running_mean", [32]), ("layers.5.running_var", [32]),
            ("layers.5.num_batches_tracked", []), ("layers.8.weight", [64, 32, 3, 3]), ("layers.9.weight", [64]),
            ("layers.9.bias", [64]), ("layers.9.running_mean", [64]), ("layers.9.running_var", [64]),
            ("layers.9.num_batches_tracked", []), ("layers.12.weight", [128, 64, 3, 3]), ("layers.13.weight", [128]),
            ("layers.13.bias", [128]), ("layers.13.running_mean", [128]), ("layers.13.running_var", [128]),
            ("layers.13.num_batches_tracked", []),
        ]
        let got = m.stateDict()
        XCTAssertEqual(got.map(\.key), expected.map(\.0))
        XCTAssertEqual(got.map(\.tensor.shape), expected.map(\.1))
        XCTAssertEqual(m.namedBuffers().count, 12)
        XCTAssertEqual(m.featureCount, 128)
        XCTAssertEqual(m(Tensor.zeros([2, 1, 28, 28])).shape, [2, 128])
        XCTAssertEqual(m(Tensor.zeros([2, 1, 32, 32])).shape, [2, 128])   // 32 → 2×2, then averaged
    }

    func testResNet18KeysMatchPyTorch() {
        var rng = RNG(seed: 0)
        let m = ResNet18(rng: &rng)
        let keys = m.stateDict().map(\.key)
        XCTAssertEqual(keys.count, 120)
        XCTAssertEqual(m.parameterCount, 11_168_832)
        XCTAssertEqual(Array(keys.prefix(20)), [
            "stem.0.weight", "stem.1.weight", "stem.1.bias", "stem.1.running_mean", "stem.1.running_var", "stem.1.num_batches_tracked",
            "layers.0.conv1.weight", "layers.0.bn1.weight", "layers.0.bn1.bias", "layers.0.bn1.running_mean", "layers.0.bn1.running_var",
            "layers.0.bn1.num_batches_tracked", "layers.0.conv2.weight", "layers.0.bn2.weight", "layers.0.bn2.bias",
            "layers.0.bn2.running_mean", "layers.0.bn2.running_var", "layers.0.bn2.num_batches_tracked", "layers.1.conv1.weight",
            "layers.1.bn1.weight"])
        XCTAssertEqual(keys.filter { $0.contains("shortcut") }.count, 18)
        XCTAssertTrue(keys.contains("layers.6.shortcut.1.num_batches_tracked"))
    }

    func testFactorVAEShapes() {
        var rng = RNG(seed: 0)
        let enc = factorVAEEncoder(latents: 10, rng: &rng), dec = factorVAEDecoder(latents: 10, rng: &rng)
        XCTAssertEqual(enc(Tensor.zeros([3, 1, 64, 64])).shape, [3, 20])
        XCTAssertEqual(dec(Tensor.zeros([3, 10])).shape, [3, 1, 64, 64])
        XCTAssertEqual(dec.stateDict().first?.key, "0.weight")
        XCTAssertEqual(dec.stateDict().last?.key, "11.bias")   // ConvTranspose2d(32, 1) is module 11 of 0…11
        XCTAssertEqual(dec.stateDict().last(where: { $0.key.hasSuffix("weight") })?.tensor.shape, [32, 1, 4, 4])   // IOHW
    }

    func testDefaultInitializationBounds() {
        var rng = RNG(seed: 1)
        let l = Linear(400, 300, rng: &rng)
        let bound: Float = 1 / 20
        XCTAssertTrue(l.weight.array.allSatisfy { Swift.abs($0) <= bound })
        let values = l.weight.array.map(Double.init)
        let std = (values.map { $0 * $0 }.reduce(0, +) / Double(values.count)).squareRoot()
        XCTAssertEqual(std, Double(bound) / 3.0.squareRoot(), accuracy: 0.001)   // U(−b, b) has std b/√3
        // Conv: fan_in = 8 · 3 · 3 = 72, so U(−1/√72, 1/√72), std 1/√216: bounded on both sides,
        // and spread (an all-zero or constant weight would fail the std and the mean).
        let conv = Conv2d(8, 4, kernel: 3, rng: &rng)
        let w = conv.weight.array.map(Double.init)
        XCTAssertTrue(w.allSatisfy { Swift.abs($0) <= 1 / 72.0.squareRoot() })
        let mean = w.reduce(0, +) / Double(w.count), convStd = (w.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(w.count)).squareRoot()
        XCTAssertEqual(convStd, 1 / 216.0.squareRoot(), accuracy: 0.15 / 216.0.squareRoot())   // 288 draws
        XCTAssertEqual(mean, 0, accuracy: 0.02)
    }

    func testTrainEvalFreezeAndBatchCounter() throws {
        var rng = RNG(seed: 2)
        let m = ConvNet4(width: .lite, rng: &rng)
        _ = m(Tensor.randn([4, 1, 28, 28], rng: &rng))
        let bn = try XCTUnwrap(m.stateDict().first { $0.key == "layers.1.num_batches_tracked" }).tensor
        XCTAssertEqual(bn.item, 1)
        m.eval()
        _ = m(Tensor.randn([4, 1, 28, 28], rng: &rng))
        XCTAssertEqual(bn.item, 1)   // evaluation leaves statistics alone
        m.freeze(["layers.0", "layers.5"])
        XCTAssertFalse(try XCTUnwrap(m.namedParameters().first { $0.key == "layers.0.weight" }).tensor.requiresGrad)
        XCTAssertFalse(try XCTUnwrap(m.namedParameters().first { $0.key == "layers.5.bias" }).tensor.requiresGrad)
        XCTAssertTrue(try XCTUnwrap(m.namedParameters().first { $0.key == "layers.4.weight" }).tensor.requiresGrad)
        XCTAssertEqual(m.trainableParameters().count, 12 - 3)
        m.unfreeze()
        XCTAssertEqual(m.trainableParameters().count, 12)
    }

    /// The random-init control's BN statistics: the plain average of the batches' means and
    /// unbiased variances (PyTorch's momentum=None), whatever the statistics were before.
    /// Evaluation without gradients fuses conv → batch norm (→ ReLU) in Sequential and in
    /// ResNet's blocks; the values are those of the layers one by one.
    func testFusedEvaluationIsLayerByLayer() {
        var rng = RNG(seed: 3)
        let seq = Sequential([Conv2d(2, 8, kernel: 3, padding: 1, rng: &rng), BatchNorm(8), ReLU(),
                              Conv2d(8, 4, kernel: 3, stride: 2, padding: 1, bias: false, rng: &rng), BatchNorm(4), MaxPool2d(2)])
        let resnet = ResNet18(inputChannels: 2, rng: &rng)
        for model in [seq, resnet] as [Module & UnaryLayer] {
            for case let bn as BatchNorm in model.modules() {   // statistics that are not the initial 0 and 1
                let c = bn.runningMean.count
                bn.runningMean.assign(Tensor.randn([c], rng: &rng)); bn.runningVar.assign(Tensor.uniform([c], low: 0.5, high: 1.5, rng: &rng))
                bn.weight!.assign(Tensor.randn([c], rng: &rng)); bn.bias!.assign(Tensor.randn([c], rng: &rng))
            }
            model.eval()
        }
        let x = Tensor.randn([3, 2, 16, 16], rng: &rng)
        var h = x
        for layer in seq.layers { h = layer(h) }   // one at a time, gradients on: nothing fused
        XCTAssertEqual(withoutGradients { seq(x) }.array, h.array)
        XCTAssertEqual(withoutGradients { resnet(x) }.array, resnet(x).array)
    }

    /// Training fuses conv → batch norm → ReLU → 2 × 2 max-pool in Sequential; the values,
    /// the gradients and the running statistics are those of the layers one by one.
    func testFusedTrainingIsLayerByLayer() {
        func model() -> Sequential {
            var rng = RNG(seed: 4)
            return Sequential([Conv2d(2, 8, kernel: 3, padding: 1, bias: false, rng: &rng), BatchNorm(8), ReLU(), MaxPool2d(2),
                               Conv2d(8, 4, kernel: 3, padding: 1, bias: false, rng: &rng), BatchNorm(4), ReLU(), MaxPool2d(2)])
        }
        let (fused, plain) = (model(), model())
        var rng = RNG(seed: 5)
        let x = Tensor.randn([3, 2, 15, 16], rng: &rng), r = Tensor.randn([3, 4, 3, 4], rng: &rng)
        let y = fused(x)
        var h = x
        for layer in plain.layers { h = layer(h) }   // one at a time: nothing fused
        XCTAssertEqual(y.shape, [3, 4, 3, 4])
        XCTAssertEqual(y.array.map(\.bitPattern), h.array.map(\.bitPattern))
        y.backward(r); h.backward(r)
        XCTAssertEqual(fused.namedParameters().count, 6)
        for ((name, a), (_, b)) in zip(fused.namedParameters(), plain.namedParameters()) {
            XCTAssertEqual(a.grad!.array.map(\.bitPattern), b.grad!.array.map(\.bitPattern), name)
        }
        for ((name, a), (_, b)) in zip(fused.namedBuffers(), plain.namedBuffers()) { XCTAssertEqual(a.array, b.array, name) }
    }

    func testRecomputedBatchNormStatisticsAreThePlainAverage() {
        var rng = RNG(seed: 5)
        let bn = BatchNorm(2)
        let model = Sequential([bn])
        _ = model(Tensor.randn([8, 2, 3, 3], mean: 4, std: 3, rng: &rng))   // stale statistics to be forgotten
        let batches = (0..<3).map { b in Tensor.randn([4, 2, 3, 3], mean: Float(b), std: Float(b + 1), rng: &rng) }
        model.recomputeBatchNormStatistics(batches) { model($0) }
        for ch in 0..<2 {
            var means: [Double] = [], vars: [Double] = []
            for x in batches {
                let v = (0..<4).flatMap { i in (0..<9).map { Double(x.array[(i * 2 + ch) * 9 + $0]) } }
                let m = v.reduce(0, +) / 36
                means.append(m); vars.append(v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / 35)
            }
            XCTAssertEqual(Double(bn.runningMean.array[ch]), means.reduce(0, +) / 3, accuracy: 1e-5)
            XCTAssertEqual(Double(bn.runningVar.array[ch]), vars.reduce(0, +) / 3, accuracy: 1e-4)
        }
        XCTAssertEqual(bn.numBatchesTracked.item, 3)
        XCTAssertEqual(bn.momentum, 0.1)       // restored
        XCTAssertFalse(bn.isTraining)          // left in evaluation mode
    }

    func testLoadRejectsWrongShapesAndKeys() {
        var rng = RNG(seed: 3)
        let lite = ConvNet4(width: .lite, rng: &rng), standard = ConvNet4(width: .standard, rng: &rng)
        let state = Dictionary(uniqueKeysWithValues: lite.stateDict().map { ($0.key, $0.tensor) })
        XCTAssertThrowsError(try standard.load(state)) { e in
            XCTAssertEqual(e as? ModuleError, .shapeMismatch(key: "layers.0.weight", expected: [32, 1, 3, 3], found: [16, 1, 3, 3]))
        }
        var extra = state
        extra["head.weight"] = Tensor.zeros([1])
        XCTAssertThrowsError(try lite.load(extra)) { XCTAssertEqual($0 as? ModuleError, .unexpectedKey("head.weight")) }
    }
}
