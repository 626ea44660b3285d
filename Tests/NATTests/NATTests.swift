import Engine
import Foundation
import Harness
import NAT
import TestSupport
import XCTest

final class NATPieceTests: XCTestCase {
    func testTargetsAreUnitNoiseOrOneHot() {
        let (n, d) = (4000, 8)
        let noise = natTargets(count: n, dimension: d, oneHot: false, rng: RNG(seed: 1))
        var mean = [Double](repeating: 0, count: d)
        for j in 0..<n {
            let row = noise[(j * d)..<((j + 1) * d)]
            XCTAssertEqual(row.reduce(0) { $0 + Double($1 * $1) }, 1, accuracy: 1e-5)
            for (t, v) in row.enumerated() { mean[t] += Double(v) / Double(n) }
        }
        // Uniform on the sphere: each coordinate has mean 0 and variance 1/d, so the mean of
        // n draws has sd 1/√(nd) ≈ 0.0056; 4 sd.
        for m in mean { XCTAssertEqual(m, 0, accuracy: 0.023) }
        let hot = natTargets(count: 10, dimension: 4, oneHot: true, rng: RNG(seed: 1))
        for j in 0..<10 { XCTAssertEqual(Array(hot[(j * 4)..<((j + 1) * 4)]), (0..<4).map { $0 == j % 4 ? 1 : 0 }) }
    }

    /// The Hungarian reassignment against every permutation of 5 targets.
    func testReassignMaximizesAlignmentLikeBruteForce() {
        var rng = RNG(seed: 2)
        let (b, d) = (5, 3)
        let f = (0..<(b * d)).map { _ in rng.normal() }, c = (0..<(b * d)).map { _ in rng.normal() }
        func score(_ σ: [Int]) -> Double { (0..<b).reduce(0.0) { s, i in s + (0..<d).reduce(0.0) { $0 + Double(f[i * d + $1] * c[σ[i] * d + $1]) } } }
        func permutations(_ a: [Int]) -> [[Int]] { a.count <= 1 ? [a] : a.indices.flatMap { i in permutations(Array(a[..<i] + a[(i + 1)...])).map { [a[i]] + $0 } } }
        let best = permutations(Array(0..<b)).map(score).max()!
        let σ = reassign(f, targets: c, rows: b, dimension: d)
        XCTAssertEqual(Set(σ), Set(0..<b))   // a permutation: each target keeps exactly one owner
        XCTAssertEqual(score(σ), best, accuracy: 1e-5)
        // Outputs equal to their own targets: nothing moves.
        XCTAssertEqual(reassign(c, targets: c, rows: b, dimension: d), Array(0..<b))
    }
}

final class NATExperimentTests: TempDirTestCase {
    func testSmokeProfileRunsEveryArm() throws {
        let s = try smokeRun(NATExperiment.self, "nat")
        XCTAssertEqual(s.arms.map(\.name), ["period1", "period3", "never", "one_hot"])
        for a in s.arms {
            XCTAssertEqual(a.steps, 3 * (200 / 32), a.name)
            for h in a.history { XCTAssertEqual(h["alignment"]!, 1 - h["loss"]! / 2, accuracy: 1e-9, a.name) }
            let reassigned = a.history.map { $0["reassigned_fraction"] != nil }
            switch a.name {
            case "period1": XCTAssertEqual(reassigned, [true, true, true])
            case "never": XCTAssertEqual(reassigned, [false, false, false]); XCTAssertNil(a.metrics["hungarian_share"])
            default: XCTAssertEqual(reassigned, [true, false, false], a.name)
            }
            for k in ["knn_top1", "linear_top1", "kmeans_nmi", "loss", "alignment"] { XCTAssertNotNil(a.metrics[k], "\(a.name) \(k)") }
        }
        let p1 = s.arms[0].metrics
        XCTAssertEqual(p1["reassigned_change"]!, s.arms[0].history[2]["reassigned_fraction"]! - s.arms[0].history[0]["reassigned_fraction"]!, accuracy: 1e-12)
        XCTAssertGreaterThan(p1["hungarian_share"]!, 0)
        XCTAssertEqual(s.claimResults.map(\.claim.id), ["C-NAT0", "C-NAT1a", "C-NAT1b"])
    }

    func testRunsAreReproducible() throws {
        let timing: Set<String> = ["epoch_seconds", "hungarian_seconds", "hungarian_share"]
        let a = try smokeRun(NATExperiment.self, "nat", arms: ["period1"]).arms[0]
        let b = try smokeRun(NATExperiment.self, "nat", arms: ["period1"]).arms[0]
        XCTAssertEqual(a.metrics.filter { !timing.contains($0.key) }, b.metrics.filter { !timing.contains($0.key) })
        XCTAssertEqual(a.history.map { $0.filter { !timing.contains($0.key) } }, b.history.map { $0.filter { !timing.contains($0.key) } })
    }

    func testBadValuesNameTheirKey() throws {
        for (key, value, expected) in [("period", -1 as Any, "config.period"), ("dimension", 0 as Any, "config.dimension"),
                                       ("targets", "uniform" as Any, "targets"), ("reduction", "max" as Any, "reduction"),
                                       ("batch_size", 1 as Any, "config.batch_size"), ("learning_rate", -0.1 as Any, "config.learning_rate")] {
            XCTAssertThrowsError(try smokeRun(NATExperiment.self, "nat", arms: ["period3"], overrides: [(key, value)])) { e in
                XCTAssertTrue("\(e)".contains(expected), "\(key): \(e)")
            }
        }
    }
}
