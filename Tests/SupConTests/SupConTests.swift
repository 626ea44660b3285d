import Engine
import Evaluation
import Foundation
import Harness
import NN
import Representation
import SimCLR
import SupCon
import TestSupport
import XCTest

final class SupConExperimentTests: TempDirTestCase {
    /// SimCLR's smoke run first: SupCon imports its τ = 0.2 arm from the same results folder.
    func testSmokeProfileImportsTheSimCLRArmAndDecidesEveryClaim() throws {
        let simclr = try smokeRun(SimCLRExperiment.self, "simclr", arms: ["tau_0.2"])
        let s = try smokeRun(SupConExperiment.self, "supcon")
        XCTAssertEqual(s.arms.map(\.name), ["l_out", "l_in", "cross_entropy"])
        let imported = try XCTUnwrap(s.references.first { $0.name == "simclr tau_0.2" })
        XCTAssertEqual(imported.metrics["linear_top1"], simclr.arms[0].metrics["linear_top1"])   // read, not retrained
        XCTAssertEqual(s.imports.first?["arm"] as? String, "tau_0.2")
        let c2b = try XCTUnwrap(s.claimResults.first { $0.claim.id == "C-SUP2b" })
        XCTAssertEqual(c2b.checks[0].against, simclr.arms[0].metrics["linear_top1"])
        for a in s.arms {
            XCTAssertEqual(a.steps * a.imagesPerStep, simclr.arms[0].steps * simclr.arms[0].imagesPerStep, a.name)   // equal budgets
            XCTAssertNotNil(a.metrics["linear_top1"], a.name)
        }
        XCTAssertEqual(s.arms[0].metrics["anchors_without_positives"], 0)   // 64 views of 10 classes: every anchor has one
        XCTAssertNotNil(s.arms[2].metrics["test_top1"])                    // cross-entropy: its own classifier too
        XCTAssertNil(s.arms[2].metrics["anchors_without_positives"])
        let table = try String(contentsOfFile: dir + "/results/supcon/smoke/table.md", encoding: .utf8)
        XCTAssertTrue(table.contains("imported row *simclr tau_0.2*: arm `tau_0.2`"), table)
    }

    func testAMissingImportLeavesItsClaimInconclusive() throws {
        let s = try smokeRun(SupConExperiment.self, "supcon", arms: ["l_out"])
        XCTAssertNil(s.references.first { $0.name == "simclr tau_0.2" })
        XCTAssertEqual(s.claimResults.first { $0.claim.id == "C-SUP2b" }?.verdict, .inconclusive)
    }

    func testAnImportTrainedForAnotherBudgetIsRefused() throws {
        _ = try smokeRun(SimCLRExperiment.self, "simclr", arms: ["tau_0.2"], overrides: [("epochs", 2)])
        XCTAssertThrowsError(try smokeRun(SupConExperiment.self, "supcon", arms: ["l_out"])) { e in
            XCTAssertTrue("\(e)".contains("import 'simclr tau_0.2'") && "\(e)".contains("equal budgets"), "\(e)")
        }
    }

    func testParityRuleWithAnOffset() {
        // SupCon ≥ CE − 0.3 points: 0.800 vs 0.802 holds, 0.795 vs 0.802 goes the other way.
        let rule = ClaimRule.aboveArm("ce", margin: 0, offset: -0.003)
        XCTAssertEqual(rule.verdict(0.800, arms: ["ce": 0.802]), .reproduced)
        XCTAssertEqual(rule.verdict(0.795, arms: ["ce": 0.802]), .notReproduced)
        // Over seeds: mean gap −0.002 + 0.003 = 0.001 against 2 × pooled sd 0.01 → inconclusive.
        let d = MeanGapDecision(rule, measured: [0.79, 0.80, 0.81], against: [0.792, 0.802, 0.812])
        XCTAssertEqual(d.gap, 0.001, accuracy: 1e-12)
        XCTAssertEqual(d.threshold, 0.02, accuracy: 1e-12)
        XCTAssertEqual(d.verdict, .inconclusive)
    }

    func testBadValuesNameTheirKey() throws {
        for (key, value, expected) in [("temperature", 0 as Any, "config.temperature"), ("head_dimension", 0 as Any, "config.head_dimension"),
                                       ("views", 1 as Any, "config.views"), ("batch_size", 1 as Any, "config.batch_size"),
                                       ("loss", "both" as Any, "loss")] {
            XCTAssertThrowsError(try smokeRun(SupConExperiment.self, "supcon", arms: ["l_out"], overrides: [(key, value)])) { e in
                XCTAssertTrue("\(e)".contains(expected), "\(key): \(e)")
            }
        }
    }
}
