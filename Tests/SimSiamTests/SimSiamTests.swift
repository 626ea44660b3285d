import Datasets
import Engine
import Evaluation
import Foundation
import Harness
import NN
import Representation
import SimSiam
import TestSupport
import XCTest

final class SimSiamLossTests: XCTestCase {
    func testNegativeCosineClosedForms() {
        let p = Tensor([1, 2, 2, 3, 0, 4], shape: [2, 3])
        XCTAssertEqual(negativeCosine(p, p).item, -1, accuracy: 1e-6)
        XCTAssertEqual(negativeCosine(p, p * -2).item, 1, accuracy: 1e-6)
        XCTAssertEqual(negativeCosine(p, p * 7.5).item, -1, accuracy: 1e-6)   // scale-invariant
        // Row 1: (1,2,2)·(2,−1,0) = 0; row 2: (3,0,4)·(0,1,0) = 0 → D = 0.
        XCTAssertEqual(negativeCosine(p, Tensor([2, -1, 0, 0, 1, 0], shape: [2, 3])).item, 0, accuracy: 1e-6)
        // By hand: cos((1,0),(1,1)) = 1/√2, cos((0,1),(1,1)) = 1/√2, cos((1,0),(0,1)) = 0.
        let p1 = Tensor([1, 0], shape: [1, 2]), p2 = Tensor([0, 1], shape: [1, 2])
        let z1 = Tensor([1, 1], shape: [1, 2]), z2 = Tensor([0, 1], shape: [1, 2])
        // ½·D(p1, z2) + ½·D(p2, z1) = ½·0 + ½·(−1/√2)
        XCTAssertEqual(simsiamLoss(p1: p1, p2: p2, z1: z1, z2: z2).item, -0.5 / Float(2).squareRoot(), accuracy: 1e-6)
    }

    func testStopGradientBlocksTheTargetPath() throws {
        var rng = RNG(seed: 4)
        let leaves = (0..<4).map { _ in Tensor.randn([5, 6], rng: &rng, requiresGrad: true) }
        for stop in [true, false] {
            for l in leaves { l.grad = nil }
            simsiamLoss(p1: leaves[0], p2: leaves[1], z1: leaves[2], z2: leaves[3], stopGradient: stop).backward()
            let value = { withoutGradients { simsiamLoss(p1: leaves[0], p2: leaves[1], z1: leaves[2], z2: leaves[3]).item } }
            for (i, l) in leaves.enumerated() {
                let numeric = numericGradient(l, value)
                if stop && i >= 2 {   // z is only a target: no gradient reaches it
                    XCTAssertTrue(l.grad?.array.allSatisfy { $0 == 0 } ?? true, "z\(i - 1) got a gradient through sg")
                    XCTAssertGreaterThan(numeric.map(abs).max() ?? 0, 1e-3)   // although the loss does depend on it
                } else {
                    let g = try XCTUnwrap(l.grad, "leaf \(i), stopGradient \(stop): no gradient").array
                    for (a, b) in zip(g, numeric) { XCTAssertEqual(a, b, accuracy: 2e-3, "leaf \(i), stopGradient \(stop)") }
                }
            }
        }
    }
}

final class SimSiamNetworkTests: XCTestCase {
    func testArchitectureAndKeys() {
        var rng = RNG(seed: 0)
        let net = SimSiamNetwork(width: .lite, inputChannels: 1, dimension: 512, predictorHidden: 128, withPredictor: true, rng: &rng)
        let shapes = Dictionary(uniqueKeysWithValues: net.stateDict().map { ($0.key, $0.tensor.shape) })
        XCTAssertEqual(shapes["projector.0.weight"], [512, 128])
        XCTAssertNil(shapes["projector.0.bias"])
        XCTAssertEqual(shapes["projector.1.weight"], [512])
        XCTAssertEqual(shapes["projector.3.weight"], [512, 512])
        XCTAssertNil(shapes["projector.4.weight"])           // output BN without affine parameters
        XCTAssertEqual(shapes["projector.4.running_var"], [512])
        XCTAssertEqual(shapes["predictor.0.weight"], [128, 512])
        XCTAssertEqual(shapes["predictor.3.weight"], [512, 128])
        XCTAssertEqual(shapes["predictor.3.bias"], [512])    // no BN on the predictor's output
        XCTAssertNil(shapes["predictor.4.running_mean"])
        let x = Tensor.randn([4, 1, 28, 28], rng: &rng)
        let (z, p) = net(x)
        XCTAssertEqual(z.shape, [4, 512]); XCTAssertEqual(p.shape, [4, 512])
        let bare = SimSiamNetwork(width: .lite, inputChannels: 1, dimension: 64, predictorHidden: 16, withPredictor: false, rng: &rng)
        XCTAssertFalse(bare.stateDict().contains { $0.key.hasPrefix("predictor") })
        let (z2, p2) = bare(x)
        XCTAssertEqual(z2.array, p2.array)   // h = identity
    }

    func testPixelStatisticsOfAKnownSet() {
        // Values 0 and 255 in equal numbers: mean 0.5, std 0.5.
        let set = ImageSet(pixels: [0, 255, 0, 255, 255, 0, 255, 0], labels: [0, 1], height: 2, width: 2, channels: 1)
        let (m, s) = pixelStatistics(set)
        XCTAssertEqual(m, 0.5, accuracy: 1e-6); XCTAssertEqual(s, 0.5, accuracy: 1e-6)
    }
}

/// The experiment on small files: Fashion-MNIST's real smoke profile, a CIFAR-format file,
/// and the optimizer's treatment of the predictor.
final class SimSiamExperimentTests: TempDirTestCase {
    func smoke(dataset: String? = nil, arms: [String]? = nil, overrides: [(String, Any)] = []) throws -> RunSummary {
        try smokeRun(SimSiamExperiment.self, "simsiam", dataset: dataset, arms: arms, overrides: overrides)
    }

    /// The reference rows come back from the cache when the inputs are the same (a planted
    /// value proves they were read, not recomputed) and are recomputed when a key changes.
    func testReferenceRowsAreReusedFromTheCacheAndRecomputedWhenTheKeyChanges() throws {
        let first = try smoke(arms: ["baseline"])
        let cacheDir = dir + "/results/.cache/references"
        let files = try FileManager.default.contentsOfDirectory(atPath: cacheDir)
        XCTAssertEqual(files.count, 1)
        let path = cacheDir + "/" + files[0]
        var rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [[String: Any]])
        XCTAssertEqual(rows.map { $0["name"] as? String }, ["raw pixels", "random init", "supervised"])
        var metrics = try XCTUnwrap(rows[0]["metrics"] as? [String: String])
        metrics["knn_top1"] = String((0.123 as Double).bitPattern, radix: 16)
        rows[0]["metrics"] = metrics
        try JSONSerialization.data(withJSONObject: rows).write(to: URL(fileURLWithPath: path))

        let second = try smoke(arms: ["baseline"])
        XCTAssertEqual(second.references[0].metrics["knn_top1"], 0.123)
        XCTAssertEqual(second.references[1].metrics, first.references[1].metrics)   // bit-exact round trip
        XCTAssertEqual(second.arms[0].metrics, first.arms[0].metrics)

        let third = try smoke(arms: ["baseline"], overrides: [("references.bn_statistics_batches", 3)])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cacheDir).count, 2)
        XCTAssertEqual(third.references[0].metrics["knn_top1"], first.references[0].metrics["knn_top1"])   // recomputed
    }

    func testSmokeProfileOnFashionMNIST() throws {
        let s = try smoke()
        XCTAssertEqual(s.arms.map(\.name), ["baseline", "no_stop_gradient", "no_predictor", "frozen_predictor"])
        XCTAssertEqual(s.arms.map(\.history.count), [2, 1, 1, 1])   // failure arms run their own budget
        for a in s.arms {
            func metric(_ k: String) throws -> Double { try XCTUnwrap(a.metrics[k], "\(a.name) lacks \(k)") }
            // 10 classes (chance 0.1); even two epochs on 200 images are far above it.
            for k in ["knn_top1", "linear_top1"] { XCTAssertGreaterThan(try metric(k), 0.3, "\(a.name) \(k)") }
            for k in ["kmeans_nmi", "kmeans_ami"] { XCTAssertTrue((0.05...1).contains(try metric(k)), "\(a.name) \(k)") }
            XCTAssertTrue((-1...1).contains(try metric("loss")), a.name)                     // a mean of negative cosines
            XCTAssertTrue((1...512).contains(try metric("effective_rank")), a.name)           // d = 512
            XCTAssertEqual(try metric("loss"), a.history.last?["loss"])                        // the last epoch's value
            XCTAssertEqual(try metric("std_sqrt_d_min"), a.history.compactMap { $0["std_sqrt_d"] }.min())
        }
        XCTAssertEqual(s.references.map(\.name), ["raw pixels", "random init", "supervised"])
        for r in s.references { XCTAssertGreaterThan(try XCTUnwrap(r.metrics["knn_top1"]), 0.3, r.name) }
        XCTAssertEqual(s.claimResults.map(\.claim.id), ["C-SS0", "C-SS1", "C-SS2a", "C-SS2b"])
        // C-SS1's equal-steps checks read the baseline's epoch-1 row.
        let c1 = s.claimResults[1]
        XCTAssertEqual(c1.checks[0].against, s.arms[0].history[0]["loss"])
        XCTAssertEqual(try XCTUnwrap(c1.checks.last).against, s.references[1].metrics["knn_top1"])
        let out = dir + "/results/simsiam/smoke"
        for f in ["summary.json", "table.md", "metrics.csv", "curves.svg", "augmented-pairs.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/\(f)"), f)
        }
        let png = try PNGImage(contentsOf: out + "/augmented-pairs.png")
        XCTAssertEqual(png.channels, 1)
        XCTAssertTrue(try String(contentsOfFile: out + "/curves.svg", encoding: .utf8).contains("std_sqrt_d"))
    }

    func testCIFARFormatFile() throws {
        // 10 classes × 24 training and 5 test images in CIFAR-10's binary format (3073-byte
        // records), converted as `replica data cifar10` does, then the smoke profile on it.
        var rng = RNG(seed: 9)
        func record(_ label: Int) -> [UInt8] {
            [UInt8(label)] + (0..<3072).map { i in UInt8(clamping: (i / 1024 == label % 3 ? 120 : 20) + label * 10 + rng.int(below: 40)) }
        }
        let raw = dir + "/cifar-10-batches-bin"
        try FileManager.default.createDirectory(atPath: raw, withIntermediateDirectories: true)
        for b in 1...5 { try Data((0..<48).flatMap { record($0 % 10) }).write(to: URL(fileURLWithPath: "\(raw)/data_batch_\(b).bin")) }
        try Data((0..<50).flatMap { record($0 % 10) }).write(to: URL(fileURLWithPath: raw + "/test_batch.bin"))
        let (splits, classes) = try CIFAR10.read(directory: raw)
        let path = dir + "/cifar10.h5"
        try DatasetFile.write(path, name: "cifar10", classes: classes, splits: splits)

        let s = try smoke(dataset: path, arms: ["baseline", "no_predictor"], overrides: [("references.supervised", "none")])
        XCTAssertEqual(s.arms.count, 2)
        XCTAssertNotNil(s.arms[0].metrics["linear_top1"])
        let out = dir + "/results/simsiam/smoke-cifar10"   // another dataset: its own folder
        let summary = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))) as? [String: Any])
        XCTAssertEqual((summary["dataset"] as? [String: Any])?["path"] as? String, path)
        XCTAssertEqual(summary["family"] as? String, "fashion-mnist / convnet4-lite / self-supervised [cifar10]")
        XCTAssertEqual(try PNGImage(contentsOf: out + "/augmented-pairs.png").channels, 3)
    }

    func testPredictorArms() throws {
        var rng = RNG(seed: 2)
        let set = ImageSet(pixels: (0..<(64 * 784)).map { _ in UInt8(rng.int(below: 256)) }, labels: (0..<64).map { $0 % 4 },
                           height: 28, width: 28, channels: 1)
        let path = dir + "/noise.h5"
        try DatasetFile.write(path, name: "noise", classes: ["a", "b", "c", "d"], splits: ["train": set, "test": set])
        let file = try ExperimentFile(path: "experiments/simsiam.yaml")
        func experiment(_ arm: String) throws -> SimSiamExperiment {
            let resolved = try file.resolved(arm: arm, profile: "smoke", overrides: [("per_class", NSNull()), ("batch_size", 16)])
            let config = try decodeConfig(SimSiamExperiment.Config.self, from: resolved, file: file.path)
            return try SimSiamExperiment(config: config, context: RunContext(experiment: "simsiam", arm: arm, profile: "smoke", dataset: path, seed: 0,
                                                                             output: dir, log: { _ in }))
        }
        // Frozen: the predictor's weights do not move, the backbone's do.
        let frozen = try experiment("frozen_predictor")
        let before = Dictionary(uniqueKeysWithValues: frozen.model.stateDict().map { ($0.key, $0.tensor.array) })
        _ = try frozen.trainEpoch(0) { _ in }
        let after = Dictionary(uniqueKeysWithValues: frozen.model.stateDict().map { ($0.key, $0.tensor.array) })
        XCTAssertEqual(before["predictor.0.weight"], after["predictor.0.weight"])
        XCTAssertEqual(before["predictor.3.bias"], after["predictor.3.bias"])
        XCTAssertNotEqual(before["backbone.layers.0.weight"], after["backbone.layers.0.weight"])
        XCTAssertFalse(frozen.optimizer.groups.flatMap(\.parameters).contains { $0.key.hasPrefix("predictor") })
        // Trained: lr = 0.05·16/256 for everything at step 0; after a step the predictor keeps it, the rest decays.
        let baseline = try experiment("baseline")
        let sgd = baseline.optimizer
        let predictorGroup = try XCTUnwrap(sgd.groups.firstIndex { $0.parameters.contains { $0.key.hasPrefix("predictor.") } })
        let otherGroup = try XCTUnwrap(sgd.groups.firstIndex { $0.parameters.contains { $0.key.hasPrefix("backbone.") } })
        XCTAssertEqual(sgd.learningRate(group: predictorGroup), 0.05 * 16 / 256, accuracy: 1e-9)
        XCTAssertEqual(sgd.learningRate(group: otherGroup), 0.05 * 16 / 256, accuracy: 1e-9)
        _ = try baseline.trainEpoch(0) { _ in }
        XCTAssertEqual(sgd.learningRate(group: predictorGroup), 0.05 * 16 / 256, accuracy: 1e-9)
        XCTAssertLessThan(sgd.learningRate(group: otherGroup), 0.05 * 16 / 256 * 0.99)
    }

    func testOutOfRangeValuesAreRejectedWithTheirKey() throws {
        for (key, value, expected) in [("batch_size", 1 as Any, "config.batch_size"), ("augmentation.crop_scale", [0.5, 0.2] as Any, "config.augmentation.crop_scale"),
                                       ("augmentation.jitter_p", 1.5 as Any, "config.augmentation.jitter_p")] {
            XCTAssertThrowsError(try smoke(dataset: nil, arms: ["baseline"], overrides: [(key, value)])) { e in
                XCTAssertTrue("\(e)".contains(expected), "\(e)")
            }
        }
    }
}
