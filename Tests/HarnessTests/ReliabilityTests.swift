import Baselines
import Datasets
import Engine
import Evaluation
import Foundation
import Harness
import NN
import TestSupport
import XCTest

/// A one-parameter experiment whose weight turns NaN at a chosen epoch while its loss stays
/// finite: what a diverging run looks like to the runner once BN statistics blow up.
final class PoisonedExperiment: Experiment {
    struct Config: Codable { var epochs: Int; var poisonEpoch: Int }
    static let metrics: [Metric] = [.loss]
    let config: Config, layer: Linear, sgd: SGD
    init(config: Config, context: RunContext) throws {
        var rng = RNG(seed: context.seed)
        (self.config, layer) = (config, Linear(1, 1, rng: &rng))
        sgd = SGD(groups: layer.parameterGroups(learningRate: 0.1, weightDecay: 0))
    }
    var epochs: Int { config.epochs }
    var stepsPerEpoch: Int { 1 }
    var imagesPerStep: Int { 1 }
    var model: Module { layer }
    var optimizer: Optimizer { sgd }
    func trainEpoch(_ epoch: Int, step: (Double) throws -> Void) throws -> [String: Double] {
        if epoch + 1 == config.poisonEpoch { layer.weight.assign(Tensor([.nan], shape: [1, 1])) }
        try step(0.5)
        return [Metric.loss.key: 0.5]
    }
    func evaluate(epoch: Int, final: Bool) throws -> [String: Double] { [:] }
}

final class ReliabilityTests: TempDirTestCase {
    func poisonedFile(epochs: Int, poison: Int) throws -> ExperimentFile {
        let data = dir + "/any.bin"
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: data))
        return try ExperimentFile(yaml: """
            experiment: poisoned
            title: poisoned
            family: toy
            dataset: \(data)
            seed: 0
            config: {epochs: \(epochs), poison_epoch: \(poison)}
            arms: {only: {}}
            profiles: {smoke: {}, default: {}}
            claims: []
            """, path: "experiments/poisoned.yaml")
    }

    /// The state goes non-finite in epoch 3: no checkpoint of it is written, and the stop
    /// names epoch 2's, which holds finite values.
    func testANonFiniteStateIsNeverCheckpointed() throws {
        XCTAssertThrowsError(try runExperiment(PoisonedExperiment.self, file: try poisonedFile(epochs: 4, poison: 3), options: quietOptions("p"))) { e in
            XCTAssertTrue("\(e)".contains("arm 'only', epoch 3: 'weight' is no longer finite"), "\(e)")
            XCTAssertTrue("\(e)".contains("The last good checkpoint is \(self.dir!)/p/poisoned/smoke/checkpoints/only.h5 (epoch 2)"), "\(e)")
        }
        let path = dir + "/p/poisoned/smoke/checkpoints/only.h5"
        var rng = RNG(seed: 9)
        let m = Linear(1, 1, rng: &rng)
        let meta = try Checkpoint.load(into: m, from: path)
        XCTAssertEqual(meta.epoch, 2)
        XCTAssertTrue(m.weight.array.allSatisfy(\.isFinite))
        // Poisoned in the first epoch: there is none to name.
        XCTAssertThrowsError(try runExperiment(PoisonedExperiment.self, file: try poisonedFile(epochs: 2, poison: 1), options: quietOptions("q"))) { e in
            XCTAssertTrue("\(e)".contains("No checkpoint was written"), "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/q/poisoned/smoke/checkpoints/only.h5"))
    }

    /// Interrupted after every possible epoch and resumed: metrics.csv is byte-identical to
    /// one uninterrupted run, and so is summary.json but for wall time, memory and date.
    func testResumedRunsWriteByteIdenticalResults() throws {
        let file = try HarnessTests.toyFile(in: dir)
        var whole = quietOptions("whole")
        whole.overrides = [("training.epochs", 3)]
        try XCTUnwrap(try runExperiment(SupervisedExperiment.self, file: file, options: whole))
        for stop in 1...2 {
            var part = quietOptions("part\(stop)")
            part.overrides = whole.overrides
            part.stopAfterEpoch = stop
            XCTAssertNil(try runExperiment(SupervisedExperiment.self, file: file, options: part))
            (part.stopAfterEpoch, part.resume) = (nil, true)
            try XCTUnwrap(try runExperiment(SupervisedExperiment.self, file: file, options: part))
            let a = dir + "/whole/supervised/smoke", b = dir + "/part\(stop)/supervised/smoke"
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: a + "/metrics.csv")), try Data(contentsOf: URL(fileURLWithPath: b + "/metrics.csv")))
            XCTAssertEqual(try timeless(a + "/summary.json"), try timeless(b + "/summary.json"))
        }
    }

    /// summary.json without the fields that measure the run itself (seconds, memory, date).
    func timeless(_ path: String) throws -> String {
        func strip(_ v: Any) -> Any {
            if let d = v as? [String: Any] {
                return d.filter { !["seconds", "peak_rss_mb", "date"].contains($0.key) }.mapValues(strip)
            }
            if let a = v as? [Any] { return a.map(strip) }
            return v
        }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
        return String(decoding: try JSONSerialization.data(withJSONObject: strip(json), options: [.sortedKeys]), as: UTF8.self)
    }

    func testYAMLSyntaxErrorsAreOneLineWithLineAndColumn() {
        XCTAssertThrowsError(try ExperimentFile(yaml: "experiment: x\nconfig: {a: [1, 2}\n", path: "experiments/x.yaml")) { e in
            let text = "\(e)"
            XCTAssertFalse(text.contains("\n"), text)
            XCTAssertTrue(text.hasPrefix("experiments/x.yaml: not valid YAML at line 2, column "), text)
        }
    }

    /// A type error in `config` is caught even when the profile being run overrides the key.
    func testTheFileIsTypeCheckedAsWritten() throws {
        let yaml = experimentYAML.replacingOccurrences(of: "batch_size: 16,", with: "batch_size: many,")
            .replacingOccurrences(of: "smoke: {training: {epochs: 2}}", with: "smoke: {training: {epochs: 2, batch_size: 16}}")
            .replacingOccurrences(of: "  default: {}\n", with: "  default: {training: {batch_size: 16}}\n")
        XCTAssertThrowsError(try runExperiment(SupervisedExperiment.self, file: try HarnessTests.toyFile(in: dir, yaml), options: quietOptions("t"))) { e in
            XCTAssertTrue("\(e)".contains("key 'config.training.batch_size': expected Int"), "\(e)")
            XCTAssertTrue("\(e)".contains("as written"), "\(e)")
        }
    }

    func testNonFiniteOverridesAreRefused() {
        for raw in ["nan", "inf", "-inf", "infinity"] {   // what Double(_:) reads as non-finite; ".nan" stays a string
            XCTAssertThrowsError(try parseOverride("training.learning_rate=\(raw)")) { e in
                XCTAssertTrue("\(e)".contains("key 'training.learning_rate': expected a finite number"), "\(e)")
            }
        }
        XCTAssertEqual(try parseOverride("training.learning_rate=0.5").1 as? Double, 0.5)
    }

    /// Images smaller than convnet4 takes are refused before training, naming the file and
    /// both sizes.
    func testImagesTooSmallForTheBackboneAreRefused() throws {
        let small = dir + "/small.h5"
        let set = sampleSet(count: 30, h: 15, w: 15)
        try DatasetFile.write(small, name: "small", classes: ["a", "b", "c"], splits: ["train": set, "test": set])
        let file = try ExperimentFile(yaml: experimentYAML.replacingOccurrences(of: "DATASET", with: small), path: "experiments/test.yaml")
        XCTAssertThrowsError(try runExperiment(SupervisedExperiment.self, file: file, options: quietOptions("s"))) { e in
            XCTAssertEqual("\(e)", "\(small): images are 15×15, but convnet4 needs at least 16×16")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/s/supervised/smoke/checkpoints/standard.h5"))
    }

    /// Pooling and convolution count windows as PyTorch does: none when the window does not
    /// fit (integer division alone would give one for a 1-pixel side).
    func testWindowCountsAreExact() {
        // floor((size + 2p − k)/s) + 1 when size + 2p ≥ k, else 0.
        for (size, k, s, p, expected) in [(1, 2, 2, 0, 0), (2, 2, 2, 0, 1), (3, 2, 2, 0, 1), (7, 2, 2, 0, 3), (28, 2, 2, 0, 14),
                                          (2, 3, 2, 0, 0), (2, 3, 2, 1, 1), (5, 3, 1, 1, 5), (5, 3, 2, 1, 3), (0, 1, 1, 0, 0)] {
            XCTAssertEqual(windowCount(size, kernel: k, stride: s, padding: p), expected, "size \(size), k \(k), s \(s), p \(p)")
        }
        // 16 is the smallest side convnet4's four pools keep a pixel of; 15 loses it.
        var side = 16
        for _ in 0..<4 { side = windowCount(side, kernel: 2, stride: 2, padding: 0) }
        XCTAssertEqual(side, 1)
        side = 15
        for _ in 0..<4 { side = windowCount(side, kernel: 2, stride: 2, padding: 0) }
        XCTAssertEqual(side, 0)
        XCTAssertEqual(ConvNet4.minimumInputSize, 16)
    }
}

final class BoundsModeTests: XCTestCase {
    /// `make test` turns the kernels' bounds checks on through the environment.
    func testBoundsChecksFollowTheEnvironment() {
        XCTAssertEqual(Kernels.boundsChecks, ProcessInfo.processInfo.environment["REPLICA_BOUNDS_CHECKS"] == "1")
    }
}
