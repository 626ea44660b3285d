import DeepCluster
import Engine
import Evaluation
import Foundation
import Harness
import TestSupport
import XCTest

final class DeepClusterKMeansTests: XCTestCase {
    /// faiss's split by hand: cluster 0 is empty; the scan takes cluster 0 with probability
    /// (0 − 1)/(n − k) < 0 (never) and cluster 1 with (5 − 1)/(6 − 3) > 1 (always), so the
    /// result does not depend on the draws.
    func testSplitEmptyClusterByHand() {
        var centroids: [Float] = [0, 0, 2, 4, 7, 7], counts: [Double] = [0, 5, 1]
        var rng = RNG(seed: 1)
        XCTAssertEqual(splitEmptyClusters(&centroids, counts: &counts, dimension: 2, points: 6, rng: &rng), 1)
        let e: Float = 1 / 1024
        XCTAssertEqual(centroids, [2 * (1 + e), 4 * (1 - e), 2 * (1 - e), 4 * (1 + e), 7, 7])
        XCTAssertEqual(counts, [2.5, 2.5, 1])
    }

    func testKMeansFindsSeparatedBlobsAndSplitsEmptyClusters() {
        var rng = RNG(seed: 3), x: [Float] = [], truth: [Int] = []
        for i in 0..<300 { let b = i % 3; x += [Float(b * 10) + 0.3 * rng.normal(), Float(b % 2 * 10) + 0.3 * rng.normal()]; truth.append(b) }
        let r = deepClusterKMeans(x, count: 300, dimension: 2, k: 3, iterations: 20, rng: RNG(seed: 4))
        XCTAssertEqual(normalizedMutualInformation(truth, r.assignments), 1, accuracy: 1e-9)
        // Two distinct points, 50 copies each, k = 3: some initial centroids coincide, one
        // cluster loses every tie and is split; the two points still end in different clusters.
        let dup = [Float](repeating: 0, count: 100) + [Float](repeating: 5, count: 100)
        let s = deepClusterKMeans(dup, count: 100, dimension: 2, k: 3, iterations: 5, rng: RNG(seed: 5))
        XCTAssertGreaterThan(s.splits, 0)
        XCTAssertNotEqual(s.assignments[0], s.assignments[99])
    }

    /// Sizes 1, 10 and 89 (and one empty cluster) with 100 draws: quota ⌊100/3⌋ + 1 = 34 per
    /// non-empty cluster, 102 drawn, cut to 100 after the shuffle.
    func testUniformSamplerQuotas() {
        let assignments = [0] + [Int](repeating: 1, count: 10) + [Int](repeating: 3, count: 89)
        let drawn = uniformOverClusters(assignments, clusters: 4, count: 100, rng: RNG(seed: 6))
        XCTAssertEqual(drawn.count, 100)
        let per = Dictionary(grouping: drawn) { assignments[$0] }.mapValues(\.count)
        XCTAssertNil(per[2])
        for c in [0, 1, 3] { XCTAssertTrue((32...34).contains(per[c]!), "cluster \(c): \(per[c]!)") }
        let big = drawn.filter { assignments[$0] == 3 }
        XCTAssertEqual(Set(big).count, big.count)   // drawn without replacement from the large cluster
        XCTAssertEqual(Set(drawn.filter { assignments[$0] == 1 }).count, 10)   // 34 draws with replacement from 10 hit every one here
    }
}

final class DeepClusterExperimentTests: TempDirTestCase {
    func testSmokeProfileRunsBothArmsWithTheirCurves() throws {
        let s = try smokeRun(DeepClusterExperiment.self, "deepcluster")
        XCTAssertEqual(s.arms.map(\.name), ["k100", "k10"])
        for a in s.arms {
            XCTAssertEqual(a.steps, 4 * (200 / 32), a.name)
            XCTAssertNil(a.history[0]["nmi_previous"], a.name)   // no previous assignment at the first epoch
            XCTAssertNotNil(a.history[1]["nmi_previous"], a.name)
            for h in a.history { XCTAssertLessThanOrEqual(h["cluster_seconds"]!, h["epoch_seconds"]!) }
            let m = a.metrics
            for k in ["knn_top1", "linear_top1", "kmeans_nmi", "nmi_labels", "nmi_previous", "nmi_labels_gain", "nmi_labels_rises",
                      "nmi_previous_rise", "nmi_previous_flattening", "largest_cluster", "clustering_share"] { XCTAssertNotNil(m[k], "\(a.name) \(k)") }
            let labels = a.history.map { $0["nmi_labels"]! }, previous = a.history.compactMap { $0["nmi_previous"] }
            XCTAssertEqual(m["nmi_labels_gain"]!, labels.last! - labels.first!, accuracy: 1e-12)
            XCTAssertEqual(m["nmi_previous_rise"]!, previous.last! - previous.first!, accuracy: 1e-12)
            XCTAssertEqual(m["nmi_previous_flattening"]!, (previous[1] - previous[0]) - (previous[2] - previous[1]), accuracy: 1e-12)   // one change in each half
        }
        XCTAssertEqual(s.claimResults.map(\.claim.id), ["C-DC1", "C-DC2", "C-DC3"])
    }

    func testRunsAreReproducible() throws {
        let timing: Set<String> = ["cluster_seconds", "epoch_seconds", "clustering_share"]
        let a = try smokeRun(DeepClusterExperiment.self, "deepcluster", arms: ["k10"]).arms[0]
        let b = try smokeRun(DeepClusterExperiment.self, "deepcluster", arms: ["k10"]).arms[0]
        XCTAssertEqual(a.metrics.filter { !timing.contains($0.key) }, b.metrics.filter { !timing.contains($0.key) })
    }

    func testBadValuesNameTheirKey() throws {
        for (key, value, expected) in [("clusters", 1 as Any, "config.clusters"), ("clusters", 5000 as Any, "config.clusters"),
                                       ("pca_dimension", 200 as Any, "config.pca_dimension"), ("kmeans_iterations", 0 as Any, "config.kmeans_iterations"),
                                       ("learning_rate", -1 as Any, "config.learning_rate"), ("uniform_sampling", "yes" as Any, "uniform_sampling"),
                                       ("cluster", 10 as Any, "cluster")] {
            XCTAssertThrowsError(try smokeRun(DeepClusterExperiment.self, "deepcluster", arms: ["k10"], overrides: [(key, value)])) { e in
                XCTAssertTrue("\(e)".contains(expected), "\(key): \(e)")
            }
        }
    }
}
