import Engine
import Evaluation
import Foundation
import TestSupport
import XCTest

/// Features whose class is encoded in one coordinate (plus a little noise): perfect.
func perfectFeatures(count: Int, classes: Int, dimension: Int = 8, seed: UInt64) -> Features {
    var rng = RNG(seed: seed)
    var values: [Float] = [], labels: [Int] = []
    for i in 0..<count {
        let y = i % classes
        labels.append(y)
        values += (0..<dimension).map { j in (j == y ? 5 : 0) + 0.01 * rng.normal() }
    }
    return Features(values: values, count: count, dimension: dimension, labels: labels)
}

final class ClassificationTests: XCTestCase {
    func testPerfectFeaturesScoreOneHundredPercent() throws {
        let train = perfectFeatures(count: 300, classes: 6, seed: 1), test = perfectFeatures(count: 120, classes: 6, seed: 2)
        let knn = try knnClassify(bank: train, queries: test, k: 20)
        XCTAssertEqual(knn.top1, 1)
        XCTAssertEqual(try knnClassify(bank: train, queries: test, k: 5, weighting: .majority).top1, 1)
        var config = LinearProbeConfig()
        config.batchSize = 64
        let lin = try linearProbe(train: train, test: test, config: config)
        XCTAssertEqual(lin.top1, 1)
        XCTAssertEqual(lin.top5, 1)
    }

    /// kNN against a naive loop: cosine similarities, top k, exp(s/T) votes.
    func testKNNMatchesANaiveLoop() throws {
        var rng = RNG(seed: 3)
        let bank = Features(values: (0..<(400 * 6)).map { _ in rng.normal() }, count: 400, dimension: 6, labels: (0..<400).map { _ in rng.int(below: 4) })
        let queries = Features(values: (0..<(90 * 6)).map { _ in rng.normal() }, count: 90, dimension: 6, labels: (0..<90).map { _ in rng.int(below: 4) })
        let b = bank.l2Normalized(), q = queries.l2Normalized()
        var correct = 0
        for i in 0..<q.count {
            let sims = (0..<b.count).map { j in zip(q.row(i), b.row(j)).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }
            let top = sims.indices.sorted { sims[$0] > sims[$1] }.prefix(15)
            var scores = [Double](repeating: 0, count: 4)
            for j in top { scores[b.labels[j]] += Foundation.exp(sims[j] / 0.1) }
            if scores.indices.max(by: { scores[$0] < scores[$1] })! == q.labels[i] { correct += 1 }
        }
        XCTAssertEqual(try knnClassify(bank: bank, queries: queries, k: 15, chunk: 7).top1, Double(correct) / 90)
        XCTAssertThrowsError(try knnClassify(bank: bank, queries: queries, k: 401))
    }
}

final class ClusteringTests: XCTestCase {
    /// Reference values from scikit-learn 1.8 (normalized_mutual_info_score,
    /// adjusted_mutual_info_score, adjusted_rand_score) on these labelings.
    func testHandWorkedContingencyTables() {
        let cases: [([Int], [Int], nmi: Double, nmiGeometric: Double, ami: Double, ari: Double)] = [
            ([0, 0, 0, 1, 1, 1, 2, 2, 2, 2], [0, 0, 1, 1, 1, 2, 2, 2, 0, 0], 0.3946483716358942, 0.3946483716358942, 0.17152423540072848, 0.09090909090909091),
            ([0, 0, 1, 1, 2, 2, 3, 3], [1, 1, 0, 0, 0, 0, 2, 3], 0.7999999999999999, 0.8017837257372732, 0.5714285714285715, 0.4444444444444444),
            ([0, 1, 0, 1, 0, 1, 0, 1, 2, 2, 2, 2], [0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2], 0.3933639658181459, 0.393382380327324, 0.2279688188145178, 0.13651877133105803),
        ]
        for c in cases {
            XCTAssertEqual(normalizedMutualInformation(c.0, c.1), c.nmi, accuracy: 1e-6)
            XCTAssertEqual(normalizedMutualInformation(c.0, c.1, normalization: .geometric), c.nmiGeometric, accuracy: 1e-6)
            XCTAssertEqual(adjustedMutualInformation(c.0, c.1), c.ami, accuracy: 1e-6)
            XCTAssertEqual(adjustedRandIndex(c.0, c.1), c.ari, accuracy: 1e-6)
        }
        // Table B: cluster 1 ↔ class 0 (2), cluster 0 ↔ class 1 or 2 (2), cluster 2 or 3 ↔ class 3
        // (1); the fourth cluster has no class left: 5 of 8.
        XCTAssertEqual(clusteringAccuracy([0, 0, 1, 1, 2, 2, 3, 3], [1, 1, 0, 0, 0, 0, 2, 3]), 5.0 / 8)
    }

    func testPerfectAndShuffledLabelings() {
        let truth = (0..<3000).map { $0 % 10 }
        let renamed = truth.map { (($0 * 7) + 3) % 10 }   // a permutation of names: still perfect
        XCTAssertEqual(normalizedMutualInformation(truth, renamed), 1, accuracy: 1e-12)
        XCTAssertEqual(adjustedMutualInformation(truth, renamed), 1, accuracy: 1e-12)
        XCTAssertEqual(adjustedRandIndex(truth, renamed), 1, accuracy: 1e-12)
        XCTAssertEqual(clusteringAccuracy(truth, renamed), 1)
        var rng = RNG(seed: 4)
        let shuffled = rng.permutation(truth.count).map { truth[$0] }
        XCTAssertEqual(adjustedMutualInformation(truth, shuffled), 0, accuracy: 0.01)
        XCTAssertEqual(adjustedRandIndex(truth, shuffled), 0, accuracy: 0.01)
        XCTAssertLessThan(normalizedMutualInformation(truth, shuffled), 0.02)
    }

    func testHungarianEqualsBruteForce() {
        var rng = RNG(seed: 5)
        func permutations(_ n: Int) -> [[Int]] {
            if n == 1 { return [[0]] }
            return permutations(n - 1).flatMap { p in (0...p.count).map { i in var q = p; q.insert(n - 1, at: i); return q } }
        }
        let all = permutations(6)
        for _ in 0..<200 {
            let cost = (0..<6).map { _ in (0..<6).map { _ in Double(rng.int(below: 100)) } }
            let best = all.map { p in p.enumerated().reduce(0.0) { $0 + cost[$1.offset][$1.element] } }.min()!
            let match = hungarian(cost)
            XCTAssertEqual(Set(match.compactMap { $0 }).count, 6)
            XCTAssertEqual(match.enumerated().reduce(0.0) { $0 + cost[$1.offset][$1.element!] }, best)
        }
        // Rectangular: 3 rows, 5 columns and its transpose.
        let rect: [[Double]] = [[4, 1, 3, 9, 9], [2, 0, 5, 9, 1], [3, 2, 2, 9, 9]]
        let m = hungarian(rect)
        XCTAssertEqual(m.enumerated().reduce(0.0) { $0 + rect[$1.offset][$1.element!] }, 1 + 1 + 2)
        let t = hungarian((0..<5).map { c in (0..<3).map { rect[$0][c] } })
        XCTAssertEqual(t.compactMap { $0 }.count, 3)
    }

    func testKMeansRecoversSeparatedClustersAndHandlesEmptyOnes() throws {
        let f = perfectFeatures(count: 600, classes: 5, dimension: 5, seed: 6)
        let r = try kMeans(f.values, count: f.count, dimension: f.dimension, k: 5, restarts: 3, rng: RNG(seed: 1))
        XCTAssertEqual(normalizedMutualInformation(f.labels, r.assignments), 1, accuracy: 1e-9)
        // A centroid far from every point starts empty: it takes the farthest point (2) of the
        // largest cluster, and the run ends with clusters {0, 1}, {2}, {10, 11, 12}.
        let line: [Float] = [0, 1, 2, 10, 11, 12]
        let e = try kMeans(line, count: 6, dimension: 1, k: 3, initial: [0, 11, 100], rng: RNG(seed: 2))
        XCTAssertEqual(e.assignments, [0, 0, 2, 1, 1, 1])
        XCTAssertEqual(e.centroids, [0.5, 11, 2])
        XCTAssertEqual(e.inertia, 0.25 + 0.25 + 0 + 1 + 0 + 1, accuracy: 1e-6)
        XCTAssertThrowsError(try kMeans(line, count: 6, dimension: 1, k: 7, rng: RNG(seed: 0)))
    }

    func testPCAWhitening() {
        var rng = RNG(seed: 7)
        // x = (3a, a + 0.5b): the first component carries most of the variance.
        var x: [Float] = []
        for _ in 0..<2000 { let a = rng.normal(), b = rng.normal(); x += [3 * a, a + 0.5 * b] }
        let pca = PCA(x, count: 2000, dimension: 2, components: 2, whiten: true)
        let y = pca.transform(x, count: 2000)
        for c in 0..<2 {
            let col = (0..<2000).map { Double(y[$0 * 2 + c]) }
            let v = col.map { $0 * $0 }.reduce(0, +) / 1999
            XCTAssertEqual(v, 1, accuracy: 1e-3)
        }
        XCTAssertGreaterThan(pca.explainedVariance[0], pca.explainedVariance[1])
        XCTAssertEqual(pca.explainedVariance.reduce(0, +), 9 + 1 + 0.25, accuracy: 0.6)   // trace of the covariance
    }
}

final class RetrievalTests: XCTestCase {
    func testRecallAndMAPAtRAgainstNaiveLoops() throws {
        var rng = RNG(seed: 8)
        let n = 60, d = 4
        let f = Features(values: (0..<(n * d)).map { _ in rng.normal() }, count: n, dimension: d, labels: (0..<n).map { _ in rng.int(below: 4) })
        let x = f.l2Normalized()
        var recall = [Int: Int](), map = 0.0, count = 0
        for q in 0..<n {
            let others = (0..<n).filter { $0 != q }
            let sims = others.map { j in zip(x.row(q), x.row(j)).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }
            let ranked = others.indices.sorted { sims[$0] > sims[$1] }.map { others[$0] }
            for k in [1, 2, 4, 8] where ranked.prefix(k).contains(where: { f.labels[$0] == f.labels[q] }) { recall[k, default: 0] += 1 }
            let r = f.labels.filter { $0 == f.labels[q] }.count - 1
            if r == 0 { continue }
            var hits = 0, ap = 0.0
            for i in 0..<r where f.labels[ranked[i]] == f.labels[q] { hits += 1; ap += Double(hits) / Double(i + 1) }
            map += ap / Double(r)
            count += 1
        }
        let result = try retrievalMetrics(f)
        for k in [1, 2, 4, 8] { XCTAssertEqual(result.recallAt[String(k)]!, Double(recall[k] ?? 0) / Double(n), accuracy: 1e-12) }
        XCTAssertEqual(result.mapAtR, map / Double(count), accuracy: 1e-9)
        let perfect = try retrievalMetrics(perfectFeatures(count: 50, classes: 5, seed: 9))
        XCTAssertEqual(perfect.recallAt["1"], 1)
        XCTAssertEqual(perfect.mapAtR, 1, accuracy: 1e-12)
        XCTAssertEqual(perfect.nmi, 1, accuracy: 1e-9)
    }
}

final class DisentanglementTests: XCTestCase {
    let sizes = [1, 3, 6, 40, 32, 32]

    /// An oracle encoder: one latent per varying factor holding its normalized class, plus a
    /// collapsed dimension; and a random encoder that ignores the factors.
    func oracle() -> FactorModel {
        FactorModel(sizes: sizes, factors: [1, 2, 3, 4, 5]) { fs in fs.map { f in (1...5).map { Float(f[$0]) / Float(self.sizes[$0] - 1) } + [0] } }
    }

    func randomCodes() -> FactorModel {
        var rng = RNG(seed: 10)
        return FactorModel(sizes: sizes, factors: [1, 2, 3, 4, 5]) { fs in fs.map { _ in (0..<6).map { _ in rng.normal() } } }
    }

    func testFactorVAEScoreSeparatesAnOracleFromRandomCodes() {
        let good = factorVAEScore(oracle(), trainVotes: 500, evalVotes: 300, globalSamples: 2000, rng: RNG(seed: 11))
        XCTAssertEqual(good.score, 1)
        XCTAssertEqual(good.keptDimensions, [0, 1, 2, 3, 4])   // the collapsed sixth dimension is pruned
        let bad = factorVAEScore(randomCodes(), trainVotes: 500, evalVotes: 300, globalSamples: 2000, rng: RNG(seed: 11))
        XCTAssertLessThan(bad.score, 0.4)   // chance is 0.2 over five factors
    }

    func testBetaVAEScoreAndMIG() throws {
        XCTAssertGreaterThan(try betaVAEScore(oracle(), batch: 16, trainPoints: 400, evalPoints: 200, rng: RNG(seed: 12)), 0.95)
        XCTAssertLessThan(try betaVAEScore(randomCodes(), batch: 16, trainPoints: 400, evalPoints: 200, rng: RNG(seed: 12)), 0.45)
        let mig = mutualInformationGap(oracle(), samples: 5000, rng: RNG(seed: 13))
        XCTAssertGreaterThan(mig.mig, 0.8)
        XCTAssertLessThan(mutualInformationGap(randomCodes(), samples: 5000, rng: RNG(seed: 13)).mig, 0.05)
    }
}

final class GenerativeTests: XCTestCase {
    /// p(z) = N(0, 1), p(x|z) = N(z, σ²) ⇒ p(x) = N(0, 1 + σ²). With a proposal q(z|x) that is
    /// not the posterior, the bound is ≤ log p(x), ≥ the ELBO, and tightens as S grows.
    func testIWAEBoundOnAModelWithAKnownLikelihood() {
        let sigma2 = 0.5, x = 1.3
        let variance: Double = 1 + sigma2
        let logpx: Double = -0.5 * Foundation.log(2 * Double.pi * variance) - x * x / (2 * variance)
        func logN(_ v: Double, _ m: Double, _ s2: Double) -> Double {
            let norm: Double = -0.5 * Foundation.log(2 * Double.pi * s2)
            return norm - (v - m) * (v - m) / (2 * s2)
        }
        let qm = 0.4, qv = 0.6   // the true posterior is N(x/(1+σ²), σ²/(1+σ²)) = N(0.867, 0.333)
        var rng = RNG(seed: 14)
        func bound(_ s: Int, _ reps: Int) -> (Double, Double) {
            var iw = 0.0, el = 0.0
            for _ in 0..<reps {
                let w = (0..<s).map { _ -> Double in
                    let z = qm + qv.squareRoot() * Double(rng.normal())
                    return logN(z, 0, 1) + logN(x, z, sigma2) - logN(z, qm, qv)
                }
                iw += iwaeBound(logWeights: w); el += elbo(logWeights: w)
            }
            return (iw / Double(reps), el / Double(reps))
        }
        let (b1, e1) = bound(1, 4000), (b10, e10) = bound(10, 1000), (b1000, _) = bound(1000, 50)
        XCTAssertEqual(b1, e1, accuracy: 1e-12)                 // S = 1 is the ELBO
        XCTAssertGreaterThan(b10, e10)
        XCTAssertLessThan(b1, b10)
        XCTAssertLessThan(b10, b1000 + 1e-3)
        XCTAssertLessThanOrEqual(b1000, logpx + 1e-3)
        XCTAssertEqual(b1000, logpx, accuracy: 0.01)
        XCTAssertEqual(iwaeBound(logWeights: [-1000, -1000]), -1000, accuracy: 1e-9)   // no underflow
    }

    func testActiveUnitsAndKL() {
        var rng = RNG(seed: 15)
        let means = (0..<500).map { _ in [Double(rng.normal()), 0.05 * Double(rng.normal()), 0.001] }
        let (count, v) = activeUnits(posteriorMeans: means)
        XCTAssertEqual(count, 1)   // variances ≈ 1, 0.0025, 0
        XCTAssertEqual(v[0], 1, accuracy: 0.15)
        let kl = gaussianKL(muQ: [0, 1], logVarQ: [0, Foundation.log(2)], muP: [0, 0], logVarP: [0, 0])
        XCTAssertEqual(kl[0], 0)
        // KL(N(1, 2) ‖ N(0, 1)) = ½(0 − log 2 + (2 + 1²)/1 − 1) = ½(2 − log 2)
        let expected: Double = 0.5 * (2 - Foundation.log(2.0))
        XCTAssertEqual(kl[1], expected, accuracy: 1e-12)
    }
}

final class CollapseTests: XCTestCase {
    func testStdAndEffectiveRankOfHealthyAndCollapsedOutputs() {
        var rng = RNG(seed: 16)
        let d = 32
        let healthy = Features(values: (0..<(2000 * d)).map { _ in rng.normal() }, count: 2000, dimension: d, labels: [Int](repeating: 0, count: 2000))
        XCTAssertEqual(normalizedStd(healthy), 1, accuracy: 0.05)
        XCTAssertEqual(effectiveRank(healthy), Double(d), accuracy: 2)
        let direction = (0..<d).map { _ in rng.normal() }
        let collapsed = Features(values: (0..<2000).flatMap { _ in direction.map { $0 + 1e-4 * rng.normal() } }, count: 2000, dimension: d, labels: [Int](repeating: 0, count: 2000))
        XCTAssertLessThan(normalizedStd(collapsed), 0.01)
        XCTAssertLessThan(effectiveRank(collapsed), 1.1)
    }
}
