import Engine
import Evaluation
import Foundation
import Harness
import NN
import PCL
import TestSupport
import XCTest

/// Rows of `t` as Double vectors.
private func rows(_ t: Tensor) -> [[Double]] {
    let (n, d) = (t.shape[0], t.shape[1]), a = t.array
    return (0..<n).map { i in (0..<d).map { Double(a[i * d + $0]) } }
}

private func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

private func unitRows(_ n: Int, _ d: Int, seed: UInt64) -> Tensor {
    var rng = RNG(seed: seed)
    return Tensor.randn([n, d], rng: &rng).l2Normalized(axis: 1).detached()
}

final class PCLLossTests: XCTestCase {
    /// InfoNCE against a per-row loop in Double: −log(e^{q·k/τ} / (e^{q·k/τ} + Σ_j e^{q·queue_j/τ})).
    func testInfoNCEMatchesNaiveLoop() {
        let (q, k, queue) = (unitRows(5, 4, seed: 1), unitRows(5, 4, seed: 2), unitRows(8, 4, seed: 3))
        for τ in [0.07, 0.2, 1.0] {
            var expected = 0.0
            for (qi, ki) in zip(rows(q), rows(k)) {
                let positive = exp(dot(qi, ki) / τ)
                expected -= log(positive / (positive + rows(queue).map { exp(dot(qi, $0) / τ) }.reduce(0, +)))
            }
            XCTAssertEqual(Double(infoNCE(q, keys: k, queue: queue, temperature: Float(τ)).item), expected / 5, accuracy: 1e-4 * expected, "τ \(τ)")
        }
    }

    /// Identical queries, keys and queue entries: every logit is equal and InfoNCE = ln(r + 1).
    func testInfoNCEPlateau() {
        let u = Tensor([Float](repeating: 0.5, count: 4 * 4), shape: [4, 4]), queue = Tensor([Float](repeating: 0.5, count: 12 * 4), shape: [12, 4])
        XCTAssertEqual(Double(infoNCE(u, keys: u, queue: queue, temperature: 0.2).item), log(13), accuracy: 1e-5)
    }

    /// ProtoNCE against a per-row loop: −log(e^{q·c_s/φ_s} / Σ_j e^{q·c_j/φ_j}), with φ differing per prototype.
    func testProtoNCEMatchesNaiveLoop() {
        let (q, c) = (unitRows(6, 3, seed: 4), unitRows(4, 3, seed: 5))
        let φ: [Float] = [0.1, 0.3, 0.2, 0.05], clusters = [0, 3, 1, 1, 2, 0]
        let p = Prototypes(centroids: c, concentration: φ, assignments: [], empty: 0)
        var expected = 0.0
        for (i, qi) in rows(q).enumerated() {
            let logits = rows(c).enumerated().map { dot(qi, $0.element) / Double(φ[$0.offset]) }
            expected -= logits[clusters[i]] - log(logits.map(exp).reduce(0, +))
        }
        XCTAssertEqual(Double(protoNCE(q, p, clusters: clusters).item), expected / 6, accuracy: 1e-4 * expected)
    }

    func testGradientsByFiniteDifferences() {
        let (k, queue, c) = (unitRows(4, 5, seed: 6), unitRows(6, 5, seed: 7), unitRows(3, 5, seed: 8))
        let p = Prototypes(centroids: c, concentration: [0.3, 0.5, 0.4], assignments: [], empty: 0)
        checkGradients([awayFromZero([4, 5], seed: 9)], eps: 1e-3, rtol: 1e-2, atol: 1e-3) {
            infoNCE($0[0].l2Normalized(axis: 1), keys: k, queue: queue, temperature: 0.5)
        }
        checkGradients([awayFromZero([4, 5], seed: 10)], eps: 1e-3, rtol: 1e-2, atol: 1e-3) {
            protoNCE($0[0].l2Normalized(axis: 1), p, clusters: [2, 0, 1, 2])
        }
    }

    /// φ by hand (α = 10, τ = 0.2). Clusters 0–3 have two members at distances d each, so
    /// φ = 2d / (2 ln 12) = d / ln 12; cluster 4 has one member and cluster 5 none, so both
    /// take the largest, 4 / ln 12. In units of 1/ln 12: [1, 2, 3, 4, 4, 4]; P10 (position
    /// 0.5) = 1.5, P90 (position 4.5) = 4; clipped [1.5, 2, 3, 4, 4, 4], mean 18.5/6; the
    /// unit cancels in the rescale φ ← τ φ / mean.
    func testConcentrationByHand() {
        let distances: [Float] = [1, 1, 2, 2, 3, 3, 4, 4, 9], assignments = [0, 0, 1, 1, 2, 2, 3, 3, 4]
        let φ = concentration(distances: distances, assignments: assignments, clusters: 6, alpha: 10, temperature: 0.2)
        let expected = [1.5, 2, 3, 4, 4, 4].map { 0.2 * $0 / (18.5 / 6) }
        for (a, b) in zip(φ, expected) { XCTAssertEqual(Double(a), b, accuracy: 1e-6) }
        // Eleven clusters of two members at 1…10 and 20 (units of 1/ln 12): P10 = 2, P90 = 10
        // clip both ends; the clipped values sum to 66, mean 6.
        let units: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20]
        let φ2 = concentration(distances: units.flatMap { [$0, $0] }, assignments: (0..<11).flatMap { [$0, $0] }, clusters: 11, alpha: 10, temperature: 0.2)
        let expected2 = [2.0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10].map { 0.2 * $0 / 6 }
        for (a, b) in zip(φ2, expected2) { XCTAssertEqual(Double(a), b, accuracy: 1e-6) }
        // Cluster size enters through Z·ln(Z + α): three members at distance 1 → 3 / (3 ln 13);
        // with one other cluster of two at distance 1 → 1 / ln 12; no clipping bites with two
        // values (P10 and P90 lie between them), so φ ∝ (1/ln 13, 1/ln 12) with mean τ.
        let φ3 = concentration(distances: [1, 1, 1, 1, 1], assignments: [0, 0, 0, 1, 1], clusters: 2, alpha: 10, temperature: 0.2)
        let (a, b) = (1 / log(13.0), 1 / log(12.0)), lo = a + 0.1 * (b - a), hi = a + 0.9 * (b - a)
        XCTAssertEqual(Double(φ3[0]), 0.2 * lo / ((lo + hi) / 2), accuracy: 1e-6)
        XCTAssertEqual(Double(φ3[1]), 0.2 * hi / ((lo + hi) / 2), accuracy: 1e-6)
    }

    func testPercentileIsNumpyLinear() {
        // numpy.percentile([3, 1, 4, 1, 5], q): sorted [1, 1, 3, 4, 5], position q/100 · 4.
        XCTAssertEqual(percentile([3, 1, 4, 1, 5], 10), 1, accuracy: 1e-12)
        XCTAssertEqual(percentile([3, 1, 4, 1, 5], 60), 3.4, accuracy: 1e-12)
        XCTAssertEqual(percentile([3, 1, 4, 1, 5], 90), 4.6, accuracy: 1e-12)
        XCTAssertEqual(percentile([7], 90), 7)
    }
}

final class MoCoTests: XCTestCase {
    func network(queue: Int = 4, output: Int = 3) -> MoCoNetwork {
        var rng = RNG(seed: 11)
        return MoCoNetwork(width: .lite, inputChannels: 1, hidden: 8, output: output, queueSize: queue, rng: &rng)
    }

    /// The ring buffer: batches of 2 into 4 rows go to rows 0–1, 2–3, then over 0–1 again.
    func testQueueOrder() {
        let net = network()
        XCTAssertEqual(rows(net.queue).map { dot($0, $0) }.map { ($0 * 1e5).rounded() / 1e5 }, [1, 1, 1, 1])   // random unit vectors
        let batch = { (v: Float) in Tensor([v, v, v, v + 1, v + 1, v + 1], shape: [2, 3]) }
        net.enqueue(batch(10))
        XCTAssertEqual(net.queuePointer.item, 2)
        net.enqueue(batch(20))
        XCTAssertEqual(net.queuePointer.item, 0)
        XCTAssertEqual(net.queue.array, [10, 10, 10, 11, 11, 11, 20, 20, 20, 21, 21, 21])
        net.enqueue(batch(30))
        XCTAssertEqual(net.queuePointer.item, 2)
        XCTAssertEqual(net.queue.array, [30, 30, 30, 31, 31, 31, 20, 20, 20, 21, 21, 21])
    }

    /// The key encoder starts as a copy; with θ fixed, n updates give θ′ = θ + mⁿ(θ′₀ − θ).
    func testMomentumUpdateClosedForm() {
        let net = network()
        XCTAssertEqual(net.momentum.stateDict().map(\.tensor.array), net.query.stateDict().map(\.tensor.array))
        XCTAssertTrue(net.momentum.namedParameters().allSatisfy { !$0.tensor.requiresGrad })
        let start = net.momentum.namedParameters().map(\.tensor.array)
        for (_, t) in net.query.namedParameters() { for i in 0..<t.count { t.pointer[i] += Float(i % 7) * 0.1 - 0.3 } }
        let target = net.query.namedParameters().map(\.tensor.array)
        let m: Float = 0.9
        for _ in 0..<3 { net.updateMomentumEncoder(m) }
        for (j, (_, t)) in net.momentum.namedParameters().enumerated() {
            for i in 0..<t.count {
                XCTAssertEqual(t.pointer[i], target[j][i] + m * m * m * (start[j][i] - target[j][i]), accuracy: 1e-5)
            }
        }
        // BN running statistics are the key encoder's own: not averaged in.
        XCTAssertEqual(net.momentum.namedBuffers().count, net.query.namedBuffers().count)
    }

    /// Checkpoint keys: the query encoder where every method keeps its network (replica
    /// embed reads backbone.…), the key encoder under momentum.…, the queue and its pointer.
    func testStateKeys() {
        let keys = network().stateDict().map(\.key)
        XCTAssertEqual(keys.prefix(2), ["queue", "queue_pointer"])
        XCTAssertTrue(keys.contains("backbone.layers.0.weight") && keys.contains("head.2.weight") && keys.contains("momentum.backbone.layers.0.weight"), "\(keys)")
        XCTAssertFalse(keys.contains { $0.hasPrefix("query.") })
    }

    /// Shuffled split BN: with one split, BN over the whole batch does not depend on the
    /// order (keys come back in input order); with two, each key is its sub-batch's.
    func testShuffledSplitBatchNorm() {
        let net = network()
        net.train()
        var rng = RNG(seed: 12)
        let x = Tensor.randn([4, 1, 28, 28], rng: &rng)
        let plain = withoutGradients { net.momentum(x).l2Normalized(axis: 1) }.array
        let one = net.keys(x, splits: 1, permutation: [2, 0, 3, 1]).array
        for (a, b) in zip(one, plain) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        let two = rows(net.keys(x, splits: 2, permutation: [2, 0, 3, 1]))   // sub-batches {2, 0} and {3, 1}
        let first = rows(withoutGradients { net.momentum(x.indexSelect(axis: 0, [2, 0])).l2Normalized(axis: 1) })
        let second = rows(withoutGradients { net.momentum(x.indexSelect(axis: 0, [3, 1])).l2Normalized(axis: 1) })
        for (a, b) in zip([two[2], two[0], two[3], two[1]], first + second) { for (u, v) in zip(a, b) { XCTAssertEqual(u, v, accuracy: 1e-5) } }
        XCTAssertGreaterThan(zip(two[0], rows(Tensor(plain, shape: [4, 3]))[0]).map { abs($0 - $1) }.max()!, 1e-4)   // the split changed BN
    }
}

final class PrototypeTests: XCTestCase {
    /// Two tight, distant blobs on the unit circle: K = 2 finds them, no cluster is empty, the
    /// prototypes point at the blobs' directions, and the tighter blob gets the smaller φ.
    func testEStepSeparatesTwoBlobs() throws {
        var rng = RNG(seed: 13), values: [Float] = [], labels: [Int] = []
        for i in 0..<60 {
            let blob = i % 2, angle = (blob == 0 ? 0 : Float.pi / 2) + (blob == 0 ? 0.02 : 0.08) * rng.normal()
            values += [cos(angle), sin(angle)]
            labels.append(blob)
        }
        let p = try estimatePrototypes(Features(values: values, count: 60, dimension: 2, labels: labels), clusters: 2, restarts: 2, iterations: 20,
                                       alpha: 10, temperature: 0.2, estimated: true, rng: RNG(seed: 14))
        XCTAssertEqual(normalizedMutualInformation(labels, p.assignments), 1, accuracy: 1e-12)
        XCTAssertEqual(p.empty, 0)
        let c = rows(p.centroids), tight = p.assignments[0], loose = p.assignments[1]
        XCTAssertGreaterThan(c[tight][0], 0.99)
        XCTAssertGreaterThan(c[loose][1], 0.99)
        XCTAssertLessThan(p.concentration[tight], p.concentration[loose])
        XCTAssertEqual(Double(p.concentration.reduce(0, +)) / 2, 0.2, accuracy: 1e-6)
    }

    /// A toy EM run: a linear query encoder whose outputs start almost parallel (a large
    /// shared bias), on two well-separated input blobs. Each round an E-step (K = 2) and ten
    /// ProtoNCE steps; the prototypes must pull the blobs apart on the sphere.
    func testEMRoundsSeparateTwoBlobs() throws {
        var rng = RNG(seed: 15), x: [Float] = [], labels: [Int] = []
        for i in 0..<40 { let b = i % 2; x += (0..<4).map { _ in (b == 0 ? 1 : -1) + 0.3 * rng.normal() }; labels.append(b) }
        let layer = Linear(4, 3, rng: &rng)
        for i in 0..<layer.weight.count { layer.weight.pointer[i] *= 0.05 }
        layer.bias!.assign(Tensor([5, 0, 0], shape: [3]))
        let input = Tensor(x, shape: [40, 4])
        func blobCosine() -> Double {
            let z = rows(withoutGradients { layer(input).l2Normalized(axis: 1) })
            let means = (0..<2).map { b in (0..<3).map { t in z.enumerated().filter { labels[$0.offset] == b }.map { $0.element[t] }.reduce(0, +) } }
            return dot(means[0], means[1]) / (dot(means[0], means[0]) * dot(means[1], means[1])).squareRoot()
        }
        XCTAssertGreaterThan(blobCosine(), 0.99)   // nearly parallel at the start
        let sgd = SGD(groups: layer.parameterGroups(learningRate: 0.1, weightDecay: 0), momentum: 0.9, schedule: .constant)
        for round in 0..<5 {
            let z = Features(values: withoutGradients { layer(input).l2Normalized(axis: 1) }.array, count: 40, dimension: 3, labels: labels)
            let p = try estimatePrototypes(z, clusters: 2, restarts: 3, iterations: 20, alpha: 10, temperature: 0.2, estimated: true,
                                           rng: RNG(seed: UInt64(16 + round)))
            XCTAssertEqual(normalizedMutualInformation(labels, p.assignments), 1, accuracy: 1e-12, "round \(round)")
            for _ in 0..<10 {
                layer.zeroGrad()
                protoNCE(layer(input).l2Normalized(axis: 1), p, clusters: p.assignments).backward()
                sgd.step()
            }
        }
        XCTAssertLessThan(blobCosine(), 0)   // pulled to opposite sides
    }
}

final class PCLExperimentTests: TempDirTestCase {
    func testSmokeProfileRunsEveryArmWithItsMonitors() throws {
        let s = try smokeRun(PCLExperiment.self, "pcl")
        XCTAssertEqual(s.arms.map(\.name), ["moco", "pcl", "pcl_fixed_phi"])
        for a in s.arms {
            let m = a.metrics
            XCTAssertEqual(a.steps, 2 * (200 / 32), a.name)
            XCTAssertEqual(a.imagesPerStep, 64)
            XCTAssertEqual(m["infonce_plateau"]!, log(65), accuracy: 1e-9, a.name)   // r + 1 = 65 candidates
            XCTAssertGreaterThan(m["positive_cosine"]!, m["negative_cosine"]!, a.name)
            for k in ["knn_top1", "linear_top1", "kmeans_nmi", "kmeans_ami", "std_sqrt_d", "effective_rank", "infonce_loss"] { XCTAssertNotNil(m[k], "\(a.name) \(k)") }
            let first = a.history[0]   // the warm-up epoch: InfoNCE alone, no E-step
            XCTAssertEqual(first["protonce_loss"], 0, a.name)
            XCTAssertEqual(first["loss"], first["infonce_loss"], a.name)
            XCTAssertNil(first["prototype_nmi"], a.name)
            if a.name == "moco" {
                XCTAssertNil(m["prototype_nmi"]); XCTAssertNil(m["estep_share"])
                XCTAssertEqual(m["protonce_loss"], 0)
            } else {
                let last = a.history[1]
                XCTAssertGreaterThan(last["protonce_loss"]!, 0, a.name)
                XCTAssertEqual(last["loss"]!, last["infonce_loss"]! + last["protonce_loss"]!, accuracy: 1e-5, a.name)
                XCTAssertGreaterThan(m["estep_share"]!, 0, a.name); XCTAssertLessThan(m["estep_share"]!, 1, a.name)
                XCTAssertEqual(m["empty_clusters"], 0, a.name)
                XCTAssertLessThanOrEqual(m["phi_min"]!, 0.2 + 1e-6, a.name); XCTAssertGreaterThanOrEqual(m["phi_max"]!, 0.2 - 1e-6, a.name)
            }
        }
        let fixed = s.arms[2].metrics
        XCTAssertEqual(fixed["phi_min"]!, 0.2, accuracy: 1e-7); XCTAssertEqual(fixed["phi_max"]!, 0.2, accuracy: 1e-7)
        XCTAssertNotNil(s.arms[1].history[1]["prototype_nmi_k5"]); XCTAssertNotNil(s.arms[1].history[1]["prototype_nmi_k10"])
        XCTAssertEqual(s.claimResults.map(\.claim.id), ["C-PCL1a", "C-PCL1b", "C-PCL2"])
        // The same warm-up epoch in every arm: same seed, data and steps.
        XCTAssertEqual(s.arms[0].history[0]["loss"], s.arms[1].history[0]["loss"])
    }

    func testRunsAreReproducible() throws {
        let timing: Set<String> = ["epoch_seconds", "estep_seconds", "estep_share"]
        let a = try smokeRun(PCLExperiment.self, "pcl", arms: ["pcl"]).arms[0]
        let b = try smokeRun(PCLExperiment.self, "pcl", arms: ["pcl"]).arms[0]
        XCTAssertEqual(a.metrics.filter { !timing.contains($0.key) }, b.metrics.filter { !timing.contains($0.key) })
    }

    func testBadValuesNameTheirKey() throws {
        for (key, value, expected) in [("queue_size", 48 as Any, "config.queue_size"), ("queue_size", 16 as Any, "config.queue_size"),
                                       ("bn_splits", 5 as Any, "config.bn_splits"), ("bn_splits", 0 as Any, "config.bn_splits"),
                                       ("clusters", [1] as Any, "config.clusters"), ("clusters", [5, 5000] as Any, "config.clusters"),
                                       ("key_momentum", 1.5 as Any, "config.key_momentum"), ("temperature", 0 as Any, "config.temperature"),
                                       ("alpha", 0 as Any, "config.alpha"), ("kmeans_iterations", 0 as Any, "config.kmeans_iterations"),
                                       ("concentration", "learned" as Any, "concentration"), ("queue", 64 as Any, "queue")] {
            XCTAssertThrowsError(try smokeRun(PCLExperiment.self, "pcl", arms: ["pcl"], overrides: [(key, value)])) { e in
                XCTAssertTrue("\(e)".contains(expected), "\(key): \(e)")
            }
        }
    }
}
