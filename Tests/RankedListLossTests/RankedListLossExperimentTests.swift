import Engine
import Foundation
import Harness
import RankedListLoss
import TestSupport
import XCTest

final class RankedListLossExperimentTests: TempDirTestCase {
    func testSmokeProfileRunsEveryArmOnTheClassDisjointSplit() throws {
        let s = try smokeRun(RankedListLossExperiment.self, "ranked-list-loss")
        XCTAssertEqual(s.arms.map(\.name), ["rll", "contrastive", "contrastive_neg1", "triplet_semihard", "triplet_batchhard", "multi_similarity",
                                           "rll_m0", "rll_tn0", "rll_tn20", "rll_alpha_1.0", "rll_alpha_1.4", "rll_autodiff"])
        let keys = ["loss", "recall_at_1", "recall_at_2", "recall_at_4", "recall_at_8", "map_at_r", "r_precision", "kmeans_nmi"]
        for a in s.arms {
            // 5 training classes × 40 images (per_class 40) in batches of 5 × 4: 10 steps.
            XCTAssertEqual(a.steps, 10, a.name)
            for k in keys { XCTAssertNotNil(a.metrics[k], "\(a.name) \(k)") }
            let r = (1...8).compactMap { a.metrics["recall_at_\($0)"] }
            XCTAssertEqual(r, r.sorted(), "\(a.name): Recall@K grows with K")
        }
        XCTAssertEqual(Set(s.references.map(\.name)), ["raw pixels", "untrained network"])
        XCTAssertEqual(s.claimResults.map(\.claim.id), ["C-RLL1", "C-RLL2", "C-RLL3", "C-RLL4", "C-RLL5"])
    }

    func testRunsAreReproducible() throws {
        let a = try smokeRun(RankedListLossExperiment.self, "ranked-list-loss", arms: ["rll", "multi_similarity"]).arms
        let b = try smokeRun(RankedListLossExperiment.self, "ranked-list-loss", arms: ["rll", "multi_similarity"]).arms
        XCTAssertEqual(a.map(\.metrics), b.map(\.metrics))
        XCTAssertEqual(a.map(\.history), b.map(\.history))
    }

    func testBadValuesNameTheirKey() throws {
        for (key, value, expected) in [("classes_per_batch", 6 as Any, "config.classes_per_batch"), ("test_classes", [4, 5] as Any, "config.test_classes"),
                                       ("ranked_list.margin", -0.1 as Any, "config.ranked_list.margin"), ("ranked_list.alpha", 0.3 as Any, "config.ranked_list.alpha"),
                                       ("ranked_list.gradient", "pml" as Any, "gradient"), ("loss", "arcface" as Any, "loss"),
                                       ("triplet.mining", "hardest" as Any, "mining"), ("images_per_class", 0 as Any, "config.images_per_class"),
                                       ("test_classes", [5, 11] as Any, "no images of class 11")] {
            XCTAssertThrowsError(try smokeRun(RankedListLossExperiment.self, "ranked-list-loss", arms: ["rll"], overrides: [(key, value)])) { e in
                XCTAssertTrue("\(e)".contains(expected), "\(key): \(e)")
            }
        }
    }
}
