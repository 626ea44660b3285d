import Baselines
import Foundation
import Harness
import TestSupport
import XCTest

/// Verdicts over seeds, name validation, derived code lists, ticks and the terminal summary.
/// Every expected value below was worked out by hand from the numbers in the test.
final class SeedsAndCompareTests: TempDirTestCase {
    func testMeanGapRuleAgainstHandWorkedVerdicts() {
        // measured 0.60, 0.62, 0.64: mean 0.62, sd 0.02 (n − 1), so 2·sd = 0.04.
        let m = [0.60, 0.62, 0.64]
        // ≥ 0.5 ± 0.05: gap +0.12 > max(0.05, 0.04) = 0.05.
        var d = MeanGapDecision(.atLeast(0.5, margin: 0.05), measured: m, against: [])
        XCTAssertEqual(d.verdict, .reproduced)
        XCTAssertEqual(d.gap, 0.12, accuracy: 1e-12)
        XCTAssertEqual(d.threshold, 0.05, accuracy: 1e-12)
        // ≥ 0.59 ± 0.01: gap +0.03 < max(0.01, 0.04) = 0.04: the seeds' spread decides.
        d = MeanGapDecision(.atLeast(0.59, margin: 0.01), measured: m, against: [])
        XCTAssertEqual(d.verdict, .inconclusive)
        XCTAssertEqual(d.threshold, 0.04, accuracy: 1e-12)
        // ≤ 0.5 ± 0.05: the same gap has the wrong sign.
        XCTAssertEqual(MeanGapDecision(.atMost(0.5, margin: 0.05), measured: m, against: []).verdict, .notReproduced)
        // above another row: against 0.50, 0.51, 0.52 (sd 0.01); pooled sd √((0.02² + 0.01²)/2)
        // = 0.015811, threshold 0.031623; gap +0.11.
        d = MeanGapDecision(.aboveArm("x", margin: 0.01), measured: m, against: [0.50, 0.51, 0.52])
        XCTAssertEqual(d.verdict, .reproduced)
        XCTAssertEqual(d.threshold, 0.0316228, accuracy: 1e-6)
        XCTAssertEqual(MeanGapDecision(.belowArm("x", margin: 0.01), measured: m, against: [0.50, 0.51, 0.52]).verdict, .notReproduced)
        // against 0.55, 0.60, 0.65 (sd 0.05): pooled √((0.0004 + 0.0025)/2) = 0.038079,
        // threshold 0.076158 > gap 0.02.
        d = MeanGapDecision(.aboveArm("x", margin: 0.01), measured: m, against: [0.55, 0.60, 0.65])
        XCTAssertEqual(d.verdict, .inconclusive)
        XCTAssertEqual(d.threshold, 0.0761577, accuracy: 1e-6)
        // One seed: sd 0, so the threshold is the margin (the single-seed rule).
        d = MeanGapDecision(.aboveArm("x", margin: 0.01), measured: [0.80], against: [0.785])
        XCTAssertEqual(d.verdict, .reproduced)
        XCTAssertEqual(d.threshold, 0.01)
        XCTAssertEqual(MeanGapDecision(.aboveArm("x", margin: 0.01), measured: [0.80], against: [0.795]).verdict, .inconclusive)
        // Nothing measured, or nothing to compare with: inconclusive.
        XCTAssertEqual(MeanGapDecision(.atLeast(0, margin: 0), measured: [], against: []).verdict, .inconclusive)
        XCTAssertEqual(MeanGapDecision(.aboveArm("x", margin: 0), measured: [1], against: []).verdict, .inconclusive)
    }

    func testPerSeedChecksMustHoldInEverySeed() {
        XCTAssertEqual(perSeedVerdict([.reproduced, .reproduced, .reproduced]), .reproduced)
        XCTAssertEqual(perSeedVerdict([.reproduced, .inconclusive, .reproduced]), .inconclusive)
        XCTAssertEqual(perSeedVerdict([.reproduced, .notReproduced, .inconclusive]), .notReproduced)
        XCTAssertEqual(perSeedVerdict([]), .inconclusive)
    }

    static let aggregateYAML = """
    experiment: toy
    title: toy
    family: toy
    dataset: toy.h5
    seed: 0
    config: {}
    arms: {standard: {}, slow: {}}
    profiles: {smoke: {}, default: {}}
    claims:
      - {id: A, paper_setting: s, paper_says: p, verified: true, our_setting: o, arm: standard, metric: test_top1, rule: {at_least: 0.5, margin: 0.05}}
      - {id: B, paper_setting: s, paper_says: p, verified: true, our_setting: o, arm: standard,
         checks: [{metric: test_top1, above_arm: slow, margin: 0.01}, {metric: loss, below_arm: slow, margin: 0.05, per_seed: true}]}
      - {id: C, paper_setting: s, paper_says: p, verified: true, our_setting: o, arm: standard, metric: test_top1, rule: {at_most: 0.5, margin: 0.05}}
    """

    /// Three per-seed summaries written by hand (as the runner writes them), folded into one.
    func testAggregateOfHandWrittenSeedSummaries() throws {
        let file = try ExperimentFile(yaml: Self.aggregateYAML, path: "experiments/toy.yaml")
        let top1 = [0.60, 0.62, 0.64], slow = [0.50, 0.51, 0.52], lossVerdicts = ["reproduced", "reproduced", "inconclusive"]
        var folders: [String] = []
        for seed in 0..<3 {
            func check(_ m: Double, _ a: Double?, _ v: String) -> [String: Any] { ["measured": m, "against": a ?? NSNull(), "verdict": v] }
            let summary: [String: Any] = [
                "profile": "default", "arm_order": ["standard", "slow"],
                "provenance": ["seed": seed, "git_commit": "c\(seed)", "threads": 2],
                "arms": ["standard": ["metrics": ["test_top1": top1[seed], "loss": 1.0 + Double(seed)]], "slow": ["metrics": ["test_top1": slow[seed]]]],
                "references": ["random init": ["test_top1": 0.3]],
                "claims": [["id": "A", "verdict": "reproduced", "checks": [check(top1[seed], nil, "reproduced")]],
                           ["id": "B", "verdict": lossVerdicts[seed], "checks": [check(top1[seed], slow[seed], "reproduced"), check(1, 2, lossVerdicts[seed])]],
                           ["id": "C", "verdict": "not reproduced", "checks": [check(top1[seed], nil, "not reproduced")]]],
            ]
            let folder = dir + "/seed\(seed)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try JSONSerialization.data(withJSONObject: summary).write(to: URL(fileURLWithPath: folder + "/summary.json"))
            folders.append(folder)
        }
        let aggregate = try SeedAggregate(file: file, folders: folders)
        let stats = try XCTUnwrap(aggregate.stats("standard")["test_top1"])
        XCTAssertEqual(stats.mean, 0.62, accuracy: 1e-12)
        XCTAssertEqual(stats.sd, 0.02, accuracy: 1e-12)
        XCTAssertEqual([stats.min, stats.max], [0.60, 0.64])
        XCTAssertEqual(stats.n, 3)
        XCTAssertEqual(aggregate.stats("random init", reference: true)["test_top1"]?.sd, 0)
        let claims = aggregate.claims
        XCTAssertEqual(claims.map(\.verdict), [.reproduced, .inconclusive, .notReproduced])
        // B: the mean-gap check holds (gap 0.11 > 0.0316), the per-seed one fails in seed 2.
        XCTAssertEqual(claims[1].checks.map(\.verdict), [.reproduced, .inconclusive])
        XCTAssertNil(claims[1].checks[1].decision)
        XCTAssertEqual(claims[1].perSeed, [.reproduced, .reproduced, .inconclusive])

        try aggregate.write(to: dir + "/agg")
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/agg/summary.json"))) as? [String: Any])
        XCTAssertEqual(json["n"] as? Int, 3)
        XCTAssertEqual(json["seeds"] as? [Int], [0, 1, 2])
        XCTAssertEqual((json["claims"] as? [[String: Any]])?.map { $0["verdict"] as? String }, ["reproduced", "inconclusive", "not reproduced"])
        let table = try String(contentsOfFile: dir + "/agg/table.md", encoding: .utf8)
        XCTAssertTrue(table.contains("| 0.62 ± 0.02 |"), table)
        XCTAssertTrue(table.contains("max(margin, 2 × pooled seed sd"), table)
    }

    func testUnknownMetricsAndRowsAreErrorsNamingTheFileAndKey() throws {
        let file = try ExperimentFile(yaml: Self.aggregateYAML.replacingOccurrences(of: "metric: loss", with: "metric: lossy"), path: "experiments/toy.yaml")
        XCTAssertThrowsError(try file.validate(metrics: [.testTop1, .loss], references: [])) { e in
            XCTAssertEqual("\(e)", "experiments/toy.yaml: claims[1].checks[1].metric: unknown metric 'lossy' (known: loss, test_top1)")
        }
        let rows = try ExperimentFile(yaml: Self.aggregateYAML.replacingOccurrences(of: "above_arm: slow", with: "above_arm: random"), path: "experiments/toy.yaml")
        XCTAssertThrowsError(try rows.validate(metrics: [.testTop1, .loss], references: ["random init"])) { e in
            XCTAssertEqual("\(e)", "experiments/toy.yaml: claims[1].checks[0]: no arm or reference row 'random' (have: random init, slow, standard)")
        }
        let board = try ExperimentFile(yaml: Self.aggregateYAML.replacingOccurrences(of: "profiles: {smoke: {}, default: {}}",
            with: "profiles: {smoke: {}, default: {}, leaderboard: {}}\nleaderboard: {arm: standard, metrics: [test_top1, knn_top5]}"), path: "experiments/toy.yaml")
        XCTAssertThrowsError(try board.validate(metrics: [.testTop1, .loss], references: [])) { e in
            XCTAssertEqual("\(e)", "experiments/toy.yaml: leaderboard.metrics[1]: unknown metric 'knn_top5' (known: loss, test_top1)")
        }
        XCTAssertNoThrow(try ExperimentFile(yaml: Self.aggregateYAML, path: "experiments/toy.yaml").validate(metrics: [.testTop1, .loss], references: []))
    }

    /// An imported row is a row claims may name; a malformed entry names its index.
    func testImportsAreRowsClaimsCanNameAndMalformedOnesNameTheKey() throws {
        let named = Self.aggregateYAML.replacingOccurrences(of: "above_arm: slow", with: "above_arm: other fast")
        XCTAssertThrowsError(try ExperimentFile(yaml: named, path: "experiments/toy.yaml").validate(metrics: [.testTop1, .loss], references: [])) { e in
            XCTAssertTrue("\(e)".contains("no arm or reference row 'other fast'"), "\(e)")
        }
        let file = try ExperimentFile(yaml: named + "\nimports: [{row: other fast, experiment: other, arm: fast}]\n", path: "experiments/toy.yaml")
        XCTAssertEqual(file.imports.map { [$0.row, $0.experiment, $0.arm] }, [["other fast", "other", "fast"]])
        XCTAssertNoThrow(try file.validate(metrics: [.testTop1, .loss], references: []))
        for bad in ["imports: {row: x}", "imports: [{row: x, experiment: other}]", "imports: [{row: x, experiment: other, arm: a, seed: 1}]"] {
            XCTAssertThrowsError(try ExperimentFile(yaml: Self.aggregateYAML + "\n" + bad + "\n", path: "experiments/toy.yaml")) { e in
                XCTAssertTrue("\(e)".hasPrefix("experiments/toy.yaml: ") && "\(e)".contains("imports"), "\(e)")
            }
        }
    }

    /// Every real experiment file names only metrics and rows its method reports.
    func testTheRealExperimentFilesValidate() throws {
        let supervised = try ExperimentFile(path: repositoryRoot + "/experiments/supervised.yaml")
        XCTAssertNoThrow(try supervised.validate(metrics: SupervisedExperiment.metrics + [.epoch, .knnTop1], references: SupervisedExperiment.referenceNames))
    }

    /// The code a result depends on is read from Package.swift, not kept by hand: SimSiam's
    /// closure, worked out from the manifest's dependency lists.
    func testCodePathsAreTheTargetClosureOfTheRealManifest() throws {
        let manifest = try String(contentsOfFile: repositoryRoot + "/Package.swift", encoding: .utf8)
        XCTAssertEqual(targetClosure("SimSiam", manifest: manifest),
                       ["CBLAS", "CHDF5", "CKernels", "CMPI", "CPNG", "CZLib", "Datasets", "Engine", "Evaluation", "HDF5IO", "HDF5Shim", "Harness",
                        "MPIShim", "NN", "PNGShim", "Representation", "SimSiam"])
        XCTAssertEqual(targetClosure("Engine", manifest: manifest), ["CBLAS", "CKernels", "CMPI", "Engine", "MPIShim"])
        XCTAssertFalse(targetClosure("Baselines", manifest: manifest).contains("SimSiam"))
        XCTAssertEqual(moduleName(of: SupervisedExperiment.self), "Baselines")
        for yaml in try FileManager.default.contentsOfDirectory(atPath: repositoryRoot + "/experiments") where yaml.hasSuffix(".yaml") {
            let text = try String(contentsOfFile: repositoryRoot + "/experiments/" + yaml, encoding: .utf8)
            XCTAssertFalse(text.split(separator: "\n").contains { $0.hasPrefix("code:") }, "\(yaml) keeps a hand-written code list")
        }
    }

    /// A user who clones the repository has only the repository: no file may point outside it.
    func testNoFileOutsideResultsReferToTheSharedFolder() throws {
        let needle = "shared" + "/"
        let root = URL(fileURLWithPath: repositoryRoot)
        let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)!
        var hits: [String] = []
        for case let url as URL in files {
            let rel = String(url.path.dropFirst(root.path.count + 1))
            if rel.hasPrefix(".") || rel.hasPrefix("results") || rel.hasPrefix("data") || rel.contains("/.") { continue }
            guard ["swift", "yaml", "md", "py"].contains(url.pathExtension), let text = try? String(contentsOf: url, encoding: .utf8) else { continue }
            if text.contains(needle) { hits.append(rel) }
        }
        XCTAssertEqual(hits, [])
    }

    func testTicksFallOnRoundValues() {
        XCTAssertEqual(niceTicks(0.7426, 0.7823), [0.74, 0.75, 0.76, 0.77, 0.78, 0.79])
        XCTAssertEqual(niceTicks(0, 2340, integers: true), [0, 1000, 2000, 3000])
        XCTAssertEqual(niceTicks(1, 1), [0.5, 0.75, 1.0, 1.25, 1.5])   // a flat series gets a band around it
        XCTAssertEqual(niceTicks(-0.93, -0.27), [-1.0, -0.8, -0.6, -0.4, -0.2])
    }

    /// The terminal summary of a real run: no line wider than asked, cut lines end with "…".
    func testTheClaimsSummaryFitsTheTerminalWidth() throws {
        let summary = try HarnessTests.toyRun(in: dir)
        for width in [100, 48] {
            let lines = summary.claimsSummary(width: width).split(separator: "\n")
            XCTAssertEqual(lines.first, "claims (1 seed):")
            XCTAssertTrue(lines.allSatisfy { $0.count <= width }, "\(lines)")
            XCTAssertTrue(lines.dropFirst().allSatisfy { $0.hasPrefix("C1") || $0.hasPrefix("C2") || $0.hasPrefix(" ") })
        }
        XCTAssertTrue(summary.claimsSummary(width: 48).contains("…"))
    }

    /// The leaderboard profile of the toy experiment, then `compare`: a ranked table with the
    /// budget and the reference rows.
    func testCompareRanksTheLeaderboardRows() throws {
        let yaml = experimentYAML.replacingOccurrences(of: "profiles:\n", with: "leaderboard: {arm: standard, metrics: [test_top1, knn_top1]}\nprofiles:\n")
            .replacingOccurrences(of: "  default: {}\n", with: "  default: {}\n  leaderboard: {training: {epochs: 1}}\n")
        let file = try HarnessTests.toyFile(in: dir, yaml)
        try runLeaderboard(SupervisedExperiment.self, file: file, options: quietOptions("r"))
        let readme = try compareResults(root: dir + "/r")
        XCTAssertTrue(readme.contains("## Leaderboard at equal budget: toy"), readme)
        XCTAssertTrue(readme.contains("| rank | method | arm | test_top1 | knn_top1 | epochs | steps | images seen | commit | |"), readme)
        XCTAssertTrue(readme.contains("| 1 | supervised | standard | "), readme)
        XCTAssertTrue(readme.contains("| | *raw pixels* | (supervised) | "), readme)
        XCTAssertTrue(readme.contains(" | 1 | 6 | 96 | "), readme)   // 1 epoch of 96 images at batch 16: 6 steps
    }

    /// `--seeds` on the toy experiment: one folder per seed and the aggregate beside them.
    func testSeedsRunEachSeedAndWriteTheAggregate() throws {
        let file = try HarnessTests.toyFile(in: dir)
        let aggregate = try XCTUnwrap(try runSeeds(SupervisedExperiment.self, file: file, options: quietOptions("r"), seeds: [3, 4]))
        XCTAssertEqual(aggregate.folders.map { ($0 as NSString).lastPathComponent }, ["smoke", "smoke-seed4"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/r/supervised/smoke-seeds2/table.md"))
        let seeds = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/r/supervised/smoke-seeds2/summary.json"))) as? [String: Any]
        XCTAssertEqual(seeds?["seeds"] as? [Int], [3, 4])
        XCTAssertThrowsError(try runSeeds(SupervisedExperiment.self, file: file, options: quietOptions("r"), seeds: [3, 3])) { e in
            XCTAssertTrue("\(e)".contains("--seeds"), "\(e)")
        }
    }
}
