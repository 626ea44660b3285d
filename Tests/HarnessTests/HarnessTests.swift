import Baselines
import Datasets
import Engine
import Foundation
import Harness
import TestSupport
import XCTest

let experimentYAML = """
experiment: supervised
title: test
family: toy
dataset: DATASET
seed: 3
evaluation:
  knn: {every: 1, k: 10, temperature: 0.1}
config:
  training: {width: lite, epochs: 3, batch_size: 16, learning_rate: 0.05, momentum: 0.9, weight_decay: 0.0005, flip: true, max_shift: 1}
  per_class: null
arms:
  standard: {}
  slow: {training: {learning_rate: 0.001}}
profiles:
  smoke: {training: {epochs: 2}}
  default: {}
claims:
  - {id: C1, paper_setting: toy, paper_says: "≥ 50%", verified: true, our_setting: toy, arm: standard, metric: test_top1, rule: {at_least: 0.5, margin: 0.05}}
  - {id: C2, paper_setting: toy, paper_says: "faster learns more", verified: false, our_setting: toy, arm: standard, metric: test_top1, rule: {above_arm: slow, margin: 0.0}}
"""

final class HarnessTests: TempDirTestCase {
    /// Three classes of 28×28 images: a bright bar in a class-specific third of the image,
    /// written to `dir`/toy.h5.
    static func toyDataset(in dir: String) throws -> String {
        var rng = RNG(seed: 1)
        func set(_ n: Int) -> ImageSet {
            var pixels: [UInt8] = [], labels: [Int] = []
            for i in 0..<n {
                let y = i % 3
                labels.append(y)
                for r in 0..<28 { for _ in 0..<28 { pixels.append(r / 10 == y ? UInt8(150 + rng.int(below: 100)) : UInt8(rng.int(below: 60))) } }
            }
            return ImageSet(pixels: pixels, labels: labels, height: 28, width: 28, channels: 1)
        }
        let path = dir + "/toy.h5"
        try DatasetFile.write(path, name: "toy", classes: ["a", "b", "c"], splits: ["train": set(96), "test": set(30)])
        return path
    }

    static func toyFile(in dir: String, _ yaml: String = experimentYAML) throws -> ExperimentFile {
        try ExperimentFile(yaml: yaml.replacingOccurrences(of: "DATASET", with: try toyDataset(in: dir)), path: "experiments/test.yaml")
    }

    /// The toy experiment's smoke profile, quietly, into `dir`/toy-run.
    static func toyRun(in dir: String) throws -> RunSummary {
        var o = RunOptions()
        (o.profile, o.resultsRoot, o.log) = ("smoke", dir + "/toy-run", { _ in })
        guard let s = try runExperiment(SupervisedExperiment.self, file: try toyFile(in: dir), options: o) else { throw RunError("interrupted") }
        return s
    }

    func toyDataset() throws -> String { try Self.toyDataset(in: dir) }
    func file(_ yaml: String = experimentYAML) throws -> ExperimentFile { try Self.toyFile(in: dir, yaml) }
    func options(_ sub: String) -> RunOptions { quietOptions(sub) }

    func testARunWritesEveryResultFileWithClaimsAndProvenance() throws {
        let summary = try XCTUnwrap(try runExperiment(SupervisedExperiment.self, file: try file(), options: options("a")))
        let folder = dir + "/a/supervised/smoke"
        for name in ["summary.json", "table.md", "metrics.csv", "curves.svg", "checkpoints/standard.h5", "checkpoints/slow.h5"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/" + name), name)
        }
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/summary.json"))) as? [String: Any])
        XCTAssertEqual(json["experiment"] as? String, "supervised")
        XCTAssertEqual((json["provenance"] as? [String: Any])?["seed"] as? Int, 3)
        XCTAssertNotNil((json["dataset"] as? [String: Any])?["sha256"] as? String)
        let claims = try XCTUnwrap(json["claims"] as? [[String: Any]])
        XCTAssertEqual(claims.map { $0["id"] as? String }, ["C1", "C2"])
        let measured = try XCTUnwrap(claims[0]["measured"] as? Double)
        XCTAssertEqual(claims[0]["verdict"] as? String, ClaimRule.atLeast(0.5, margin: 0.05).verdict(measured, arms: [:]).rawValue)
        let arms = try XCTUnwrap(json["arms"] as? [String: Any])
        XCTAssertEqual(Set(arms.keys), ["standard", "slow"])
        XCTAssertNotNil(((arms["standard"] as? [String: Any])?["metrics"] as? [String: Any])?["knn_top1"])
        XCTAssertNotNil((json["references"] as? [String: Any])?["raw pixels"])
        let table = try String(contentsOfFile: folder + "/table.md", encoding: .utf8)
        XCTAssertTrue(table.contains("| C2 | toy | faster learns more (unverified) |"))
        XCTAssertTrue(table.contains("## Provenance"))
        let csv = try String(contentsOfFile: folder + "/metrics.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv[0], "arm,epoch,knn_top1,loss,test_top1")   // the kNN monitor runs every epoch here
        XCTAssertEqual(csv.count, 1 + 2 + 2)   // two arms × two smoke epochs
        XCTAssertTrue(try String(contentsOfFile: folder + "/curves.svg", encoding: .utf8).hasPrefix("<svg"))
        XCTAssertEqual(summary.arms[0].history.count, 2)
        // The leaderboard and ledger gather it.
        let readme = try compareResults(root: dir + "/a")
        XCTAssertTrue(readme.contains("## All runs: toy"))
        XCTAssertTrue(readme.contains("| supervised | smoke | C1 |"))
    }

    /// Stop after one epoch, resume: the final numbers are bit-identical to one uninterrupted run.
    func testResumeAfterACheckpointIsBitIdentical() throws {
        let f = try file()
        var whole = options("whole")
        whole.arms = ["standard"]
        let full = try XCTUnwrap(try runExperiment(SupervisedExperiment.self, file: f, options: whole))
        var part = options("part")
        part.arms = ["standard"]
        part.stopAfterEpoch = 1
        XCTAssertNil(try runExperiment(SupervisedExperiment.self, file: f, options: part))
        part.stopAfterEpoch = nil
        part.resume = true
        let resumed = try XCTUnwrap(try runExperiment(SupervisedExperiment.self, file: f, options: part))
        XCTAssertEqual(resumed.arms[0].metrics, full.arms[0].metrics)
        XCTAssertEqual(resumed.arms[0].history, full.arms[0].history)
        XCTAssertEqual(resumed.arms[0].metrics["test_top1"].map(\.bitPattern), full.arms[0].metrics["test_top1"].map(\.bitPattern))
        // Resuming with another configuration is refused.
        part.overrides = [try parseOverride("training.learning_rate=0.2")]
        XCTAssertThrowsError(try runExperiment(SupervisedExperiment.self, file: f, options: part)) { e in
            XCTAssertTrue("\(e)".contains("another configuration"), "\(e)")
        }
    }

    func testUnknownKeysAndWrongTypesNameTheKey() throws {
        var o = options("bad")
        o.overrides = [try parseOverride("training.epoch=3")]
        XCTAssertThrowsError(try runExperiment(SupervisedExperiment.self, file: try file(), options: o)) { e in
            XCTAssertEqual("\(e)", "experiments/test.yaml: unknown key 'config.training.epoch'")
        }
        o.overrides = [try parseOverride("training.epochs=many")]
        XCTAssertThrowsError(try runExperiment(SupervisedExperiment.self, file: try file(), options: o)) { e in
            XCTAssertEqual("\(e)", "experiments/test.yaml: key 'config.training.epochs': expected Int")
        }
        XCTAssertThrowsError(try file(experimentYAML + "\nextra: 1\n")) { e in
            XCTAssertTrue("\(e)".hasPrefix("experiments/test.yaml: unknown key 'extra'"), "\(e)")
        }
        XCTAssertThrowsError(try file(experimentYAML.replacingOccurrences(of: "rule: {at_least: 0.5", with: "rule: {at_leest: 0.5"))) { e in
            XCTAssertTrue("\(e)".contains("claims[0].rule"), "\(e)")
        }
        XCTAssertThrowsError(try file(experimentYAML.replacingOccurrences(of: "  smoke: {training: {epochs: 2}}\n", with: ""))) { e in
            XCTAssertTrue("\(e)".contains("the 'smoke' profile is missing"), "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/bad/supervised/smoke/summary.json"))
    }

    /// A claim with several checks: equal-steps values come from the other arm's history at
    /// the claim arm's last epoch, reference rows can be named like arms, and the verdict is
    /// the conjunction.
    func testMultiCheckClaims() throws {
        let yaml = experimentYAML + """

          - id: C3
            paper_setting: toy
            paper_says: "slow learns less at equal steps, raw pixels beat it"
            verified: true
            our_setting: toy
            arm: slow
            checks:
              - {metric: test_top1, below_arm: standard, equal_steps: true, margin: 0.0}
              - {metric: knn_top1, below_arm: raw pixels, margin: 0.0}
              - {metric: knn_top1, at_most: 2.0}
        """
        var o = options("multi")
        o.overrides = [("training.epochs", 3)]
        o.arms = nil
        let summary = try XCTUnwrap(try runExperiment(SupervisedExperiment.self, file: try file(yaml), options: o))
        let standard = summary.arms[0], slow = summary.arms[1]
        let r = summary.claimResults[2]
        XCTAssertEqual(r.checks.count, 3)
        XCTAssertEqual(r.checks[0].against, standard.history[slow.history.count - 1]["test_top1"])
        XCTAssertEqual(r.checks[0].measured, slow.metrics["test_top1"])
        let rawPixels = try XCTUnwrap(summary.references.first { $0.name == "raw pixels" })
        XCTAssertEqual(r.checks[1].against, rawPixels.metrics["knn_top1"])
        // Margin 0: below is reproduced, above is not, equal is inconclusive (written out,
        // not through ClaimRule); at_most 2 holds for any accuracy.
        func below(_ m: Double?, _ a: Double?) throws -> Verdict {
            let (m, a) = (try XCTUnwrap(m), try XCTUnwrap(a))
            return m < a ? .reproduced : m > a ? .notReproduced : .inconclusive
        }
        let verdicts = [try below(slow.metrics["test_top1"], standard.history[slow.history.count - 1]["test_top1"]),
                        try below(slow.metrics["knn_top1"], rawPixels.metrics["knn_top1"]), Verdict.reproduced]
        XCTAssertEqual(r.checks.map(\.verdict), verdicts)
        XCTAssertEqual(r.verdict, verdicts.contains(.notReproduced) ? .notReproduced : verdicts.contains(.inconclusive) ? .inconclusive : .reproduced)
        XCTAssertTrue(r.measuredText.hasPrefix("slow: test_top1 = "), r.measuredText)
        XCTAssertTrue(r.measuredText.contains("(standard at equal steps = "), r.measuredText)
        // Malformed check lists name the claim and the check.
        for (bad, message) in [("      - {metric: knn_top1, at_most: 2.0}", "claims[2].checks[2]: unknown key 'color'"),
                               ("    arm: slow", "claims[2]: give either metric and rule, or checks")] {
            let broken = bad.hasPrefix("      -") ? yaml.replacingOccurrences(of: bad, with: "      - {metric: knn_top1, at_most: 2.0, color: red}")
                                                 : yaml.replacingOccurrences(of: bad, with: bad + "\n    metric: knn_top1")
            XCTAssertThrowsError(try file(broken)) { XCTAssertTrue("\($0)".contains(message), "\($0)") }
        }
    }

    /// An empty list stays a list and an empty mapping a mapping through the file, the profile
    /// and `--set`; a mapping where a list belongs names the key.
    func testEmptyListsAndMappingsKeepTheirKind() throws {
        struct Lists: Codable { var xs: [Int]; var names: [String: Int] }
        let yaml = """
        experiment: e
        family: f
        dataset: d
        seed: 0
        config: {xs: [], names: {}}
        arms: {a: {}, b: {xs: [1, 2]}, c: {xs: []}}
        profiles: {smoke: {xs: [3]}, default: {}}
        claims: []
        """
        let f = try ExperimentFile(yaml: yaml, path: "e.yaml")
        func xs(_ arm: String, _ profile: String, _ set: [String] = []) throws -> [Int] {
            try decodeConfig(Lists.self, from: try f.resolved(arm: arm, profile: profile, overrides: set.map(parseOverride)), file: "e.yaml").xs
        }
        XCTAssertEqual(try xs("a", "default"), [])
        XCTAssertEqual(try xs("b", "default"), [1, 2])
        XCTAssertEqual(try xs("a", "smoke"), [3])
        XCTAssertEqual(try xs("c", "smoke"), [])
        XCTAssertEqual(try xs("b", "default", ["xs=[]"]), [])
        XCTAssertEqual(try decodeConfig(Lists.self, from: try f.resolved(arm: "a", profile: "default", overrides: []), file: "e.yaml").names, [:])
        XCTAssertThrowsError(try ExperimentFile(yaml: yaml.replacingOccurrences(of: "claims: []", with: "claims: {x: 1}"), path: "e.yaml")) { e in
            XCTAssertEqual("\(e)", "e.yaml: key 'claims': expected a list")
        }
        XCTAssertThrowsError(try decodeConfig(Lists.self, from: try f.resolved(arm: "a", profile: "default", overrides: [try parseOverride("names=[]")]), file: "e.yaml")) { e in
            XCTAssertTrue("\(e)".hasPrefix("e.yaml: key 'config.names': expected"), "\(e)")
        }
    }

    func testANonFiniteLossStopsWithAClearMessage() throws {
        var o = options("nan")
        o.arms = ["standard"]
        o.overrides = [try parseOverride("training.learning_rate=1e30")]
        XCTAssertThrowsError(try runExperiment(SupervisedExperiment.self, file: try file(), options: o)) { e in
            XCTAssertTrue("\(e)".contains("arm 'standard', epoch 1, step"), "\(e)")
            XCTAssertTrue("\(e)".contains("the loss is"), "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/nan/supervised/smoke/summary.json"))
    }

    /// The real experiment file's smoke profile on the real data (`make data` builds it).
    func testTheSupervisedExperimentFileRunsItsSmokeProfile() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: root + "/data/fashion-mnist.h5") else { throw XCTSkip("data/fashion-mnist.h5 is missing: `make data` builds it") }
        let spec = try ExperimentFile(path: root + "/experiments/supervised.yaml")
        var o = options("real")
        o.dataset = root + "/data/fashion-mnist.h5"
        let start = Date()
        let summary = try XCTUnwrap(try runExperiment(SupervisedExperiment.self, file: spec, options: o))
        XCTAssertLessThan(Date().timeIntervalSince(start), 60)   // a smoke profile stays under a minute
        XCTAssertGreaterThan(try XCTUnwrap(summary.arms[0].metrics["test_top1"]), 0.3)   // 10 classes: chance is 0.1
        XCTAssertNotNil(summary.arms[0].metrics["knn_top1"])
        XCTAssertEqual(summary.claimResults.map(\.claim.id), ["C-BASE1"])
    }

    func testVerdictRulesAndMargins() {
        XCTAssertEqual(ClaimRule.atLeast(0.9, margin: 0.01).verdict(0.92, arms: [:]), .reproduced)
        XCTAssertEqual(ClaimRule.atLeast(0.9, margin: 0.01).verdict(0.905, arms: [:]), .inconclusive)
        XCTAssertEqual(ClaimRule.atLeast(0.9, margin: 0.01).verdict(0.88, arms: [:]), .notReproduced)
        XCTAssertEqual(ClaimRule.atMost(0.1, margin: 0.02).verdict(0.05, arms: [:]), .reproduced)
        XCTAssertEqual(ClaimRule.atMost(0.1, margin: 0.02).verdict(0.2, arms: [:]), .notReproduced)
        XCTAssertEqual(ClaimRule.belowArm("baseline", margin: 0.01).verdict(0.70, arms: ["baseline": 0.80]), .reproduced)
        XCTAssertEqual(ClaimRule.belowArm("baseline", margin: 0.01).verdict(0.805, arms: ["baseline": 0.80]), .inconclusive)
        XCTAssertEqual(ClaimRule.aboveArm("random", margin: 0.01).verdict(0.75, arms: ["random": 0.80]), .notReproduced)
        XCTAssertEqual(ClaimRule.aboveArm("missing", margin: 0).verdict(0.75, arms: [:]), .inconclusive)
        XCTAssertEqual(ClaimRule.atLeast(0.9, margin: 0).verdict(.nan, arms: [:]), .inconclusive)
        XCTAssertEqual(ClaimRule.atMost(0.1, margin: 0.02).verdict(0.11, arms: [:]), .inconclusive)
        XCTAssertEqual(ClaimRule.aboveArm("random", margin: 0.01).verdict(0.85, arms: ["random": 0.80]), .reproduced)
        XCTAssertEqual(ClaimRule.belowArm("baseline", margin: 0.01).verdict(0.85, arms: ["baseline": 0.80]), .notReproduced)
    }
}
