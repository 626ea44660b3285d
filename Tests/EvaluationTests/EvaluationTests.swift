import CKernels
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

    /// kNN against a naive loop: cosine similarities in Double, the top k, exp(s/T) or one
    /// vote each, ties toward the lower class index; top-1 and top-5 over 10 classes, for
    /// every chunking of the queries (a query's result must not depend on its neighbours in
    /// the file).
    func testKNNMatchesANaiveLoop() throws {
        var rng = RNG(seed: 3)
        let classes = 10
        let bank = Features(values: (0..<(400 * 6)).map { _ in rng.normal() }, count: 400, dimension: 6, labels: (0..<400).map { _ in rng.int(below: classes) })
        let queries = Features(values: (0..<(90 * 6)).map { _ in rng.normal() }, count: 90, dimension: 6, labels: (0..<90).map { _ in rng.int(below: classes) })
        let b = bank.l2Normalized(), q = queries.l2Normalized()
        let sims = (0..<q.count).map { i in (0..<b.count).map { j in zip(q.row(i), b.row(j)).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } } }
        func naive(k: Int, vote: (Double) -> Double) -> (top1: Double, top5: Double, predictions: [Int]) {
            var hits1 = 0, hits5 = 0, predictions: [Int] = []
            for i in 0..<q.count {
                let top = sims[i].indices.sorted { sims[i][$0] > sims[i][$1] }.prefix(k)
                var scores = [Double](repeating: 0, count: classes)
                for j in top { scores[b.labels[j]] += vote(sims[i][j]) }
                let ranked = (0..<classes).sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
                predictions.append(ranked[0])
                if ranked[0] == q.labels[i] { hits1 += 1 }
                if ranked.prefix(5).contains(q.labels[i]) { hits5 += 1 }
            }
            return (Double(hits1) / 90, Double(hits5) / 90, predictions)
        }
        for (k, t) in [(15, 0.1), (50, 0.05), (1, 0.1)] {
            let expected = naive(k: k) { Foundation.exp($0 / t) }
            for chunk in [1, 7, 256] {
                let r = try knnClassify(bank: bank, queries: queries, k: k, temperature: Float(t), chunk: chunk)
                XCTAssertEqual([r.top1, r.top5], [expected.top1, expected.top5], "k \(k), T \(t), chunk \(chunk)")
            }
            let majority = naive(k: k) { _ in 1 }
            let m = try knnClassify(bank: bank, queries: queries, k: k, weighting: .majority)
            XCTAssertEqual([m.top1, m.top5], [majority.top1, majority.top5], "majority, k \(k)")
        }
        // The fixture tells the weightings apart: votes s (not exp(s/T)), or one vote each,
        // change many predictions at k = 50.
        let exponential = naive(k: 50) { Foundation.exp($0 / 0.05) }.predictions
        XCTAssertGreaterThan(zip(exponential, naive(k: 50) { $0 }.predictions).filter { $0 != $1 }.count, 10)
        XCTAssertGreaterThan(zip(exponential, naive(k: 50) { _ in 1 }.predictions).filter { $0 != $1 }.count, 10)
        XCTAssertThrowsError(try knnClassify(bank: bank, queries: queries, k: 401))
    }

    /// A query's similarities (so its neighbours and votes) are the same alone, inside a large
    /// file at any position, with any chunking and thread count: bit for bit.
    func testAQuerysSimilaritiesDoNotDependOnTheOtherQueries() throws {
        var rng = RNG(seed: 11)
        let (n, m, d) = (1500, 300, 32)   // two bank blocks (the second zero-padded), two query passes
        let bank = (0..<(n * d)).map { _ in rng.normal() }, queries = (0..<(m * d)).map { _ in rng.normal() }
        let blocks = SimilarityBlocks(bank: bank, count: n, dimension: d)
        func sims(_ rows: Range<Int>) -> [Float] {
            var out = [Float](repeating: 0, count: rows.count * n)
            queries.withUnsafeBufferPointer { q in out.withUnsafeMutableBufferPointer { o in
                blocks.compute(queries: q.baseAddress! + rows.lowerBound * d, count: rows.count, into: o.baseAddress!)
            } }
            return out
        }
        for threads in [1, 2, 3] {
            withThreads(threads) {
                let file = sims(0..<256) + sims(256..<300)
                for i in [0, 1, 37, 255, 256, 299] {
                    XCTAssertEqual(sims(i..<(i + 1)), Array(file[(i * n)..<((i + 1) * n)]), "query \(i), \(threads) threads")
                }
                let naive = (0..<n).map { j in (0..<d).reduce(0.0) { $0 + Double(queries[37 * d + $1]) * Double(bank[j * d + $1]) } }
                for (a, b) in zip(file[(37 * n)..<(38 * n)], naive) { XCTAssertEqual(Double(a), b, accuracy: 1e-4) }
            }
        }
        // kNN: the file's top-1 count is the sum of each query's top-1 alone.
        let bankF = Features(values: bank, count: n, dimension: d, labels: (0..<n).map { $0 % 5 })
        let queryF = Features(values: queries, count: m, dimension: d, labels: (0..<m).map { ($0 * 7) % 5 })
        let together = try knnClassify(bank: bankF, queries: queryF, k: 20, chunk: 100)
        var alone = 0.0
        for i in 0..<m {
            let one = Features(values: Array(queries[(i * d)..<((i + 1) * d)]), count: 1, dimension: d, labels: [queryF.labels[i]])
            alone += try knnClassify(bank: bankF, queries: one, k: 20).top1
        }
        XCTAssertEqual(together.top1 * Double(m), alone, accuracy: 1e-9)
    }

    /// The dot kernel on every instruction set this machine has: each value matches a Double
    /// loop, and a row gives the same bits at every position of a tile and with any other
    /// rows beside it (the BLAS-kernel failure this kernel replaces). The right operand goes
    /// through `replica_dots_pack`: 50 rows into 64 columns, the padding columns give 0.
    func testDotKernelValuesDependOnlyOnTheirTwoVectorsOnEveryInstructionSet() {
        var rng = RNG(seed: 13)
        let (m, rows, n, d) = (32, 50, 64, 37)
        let a = (0..<(m * d)).map { _ in rng.normal() }, b = (0..<(rows * d)).map { _ in rng.normal() }
        var bt = [Float](repeating: .nan, count: d * n)
        replica_dots_pack(b, Int32(rows), Int32(d), Int32(n), &bt)
        for isa in 0...replica_dots_best_isa() {
            var c = [Float](repeating: 0, count: m * n)
            replica_dots_isa(isa, a, Int32(m), bt, Int32(n), Int32(d), &c, Int32(n))
            for i in stride(from: 0, to: m, by: 5) { for j in stride(from: 0, to: n, by: 7) {
                let naive = j >= rows ? 0 : (0..<d).reduce(0.0) { $0 + Double(a[i * d + $1]) * Double(b[j * d + $1]) }
                XCTAssertEqual(Double(c[i * n + j]), naive, accuracy: 1e-4, "isa \(isa) (\(i), \(j))")
            } }
            for i in 0..<m {   // row i alone at position 0 of an 8-row tile, zeros below
                var alone = [Float](repeating: 0, count: 8 * d), out = [Float](repeating: 0, count: 8 * n)
                for k in 0..<d { alone[k] = a[i * d + k] }
                replica_dots_isa(isa, alone, 8, bt, Int32(n), Int32(d), &out, Int32(n))
                XCTAssertEqual(Array(out[0..<n]), Array(c[(i * n)..<((i + 1) * n)]), "isa \(isa) row \(i)")
            }
        }
    }

    /// The scan kNN selection runs on: the first index at or after `from` whose value is
    /// above the threshold, against a plain loop, on every instruction set (NaNs never are).
    func testFirstAboveMatchesAPlainLoopOnEveryInstructionSet() {
        var rng = RNG(seed: 14)
        for n in [0, 1, 15, 16, 17, 40, 100] {
            var x = (0..<n).map { _ in rng.normal() }
            if n > 3 { x[n / 2] = .nan }
            for t: Float in [-3, -0.5, 0, 0.7, 2.5, .infinity] { for from in Set([0, 1, n / 3, n]) where from <= n {
                let expected = (from..<n).first { x[$0] > t } ?? n
                for isa in 0...replica_dots_best_isa() {
                    XCTAssertEqual(replica_first_above_isa(isa, x, from, n, t), expected, "n \(n), t \(t), from \(from), isa \(isa)")
                }
            } }
        }
    }

    /// A bank full of exact duplicates with different labels: every tie between identical rows
    /// is broken by index, so a last-bit difference between two copies would change a query's
    /// neighbours. Alone or among 299 others, each query must get the same votes.
    func testDuplicateBankRowsGiveTheSameNeighboursAloneAndInAFile() throws {
        var rng = RNG(seed: 12)
        let (distinct, n, m, d) = (40, 2400, 300, 128)
        let prototypes = (0..<(distinct * d)).map { _ in rng.normal() }
        var bank: [Float] = []
        for j in 0..<n { bank += prototypes[((j % distinct) * d)..<((j % distinct + 1) * d)] }
        let bankF = Features(values: bank, count: n, dimension: d, labels: (0..<n).map { ($0 / distinct) % 7 })
        let queries = (0..<(m * d)).map { _ in rng.normal() }
        let labels = (0..<m).map { $0 % 7 }
        for k in [1, 5, 45] {
            let together = try knnClassify(bank: bankF, queries: Features(values: queries, count: m, dimension: d, labels: labels), k: k)
            var top1 = 0.0, top5 = 0.0
            for i in 0..<m {
                let one = try knnClassify(bank: bankF, queries: Features(values: Array(queries[(i * d)..<((i + 1) * d)]), count: 1, dimension: d, labels: [labels[i]]), k: k)
                (top1, top5) = (top1 + one.top1, top5 + one.top5)
            }
            XCTAssertEqual(together.top1 * Double(m), top1, accuracy: 1e-9, "k \(k)")
            XCTAssertEqual(together.top5 * Double(m), top5, accuracy: 1e-9, "k \(k)")
        }
    }

    /// Features far from the origin on a tiny scale: the probe must standardize the test
    /// features with the training statistics, or every test point lands on one side.
    func testLinearProbeStandardizesTestFeaturesWithTrainStatistics() throws {
        var rng = RNG(seed: 5)
        func set(_ n: Int) -> Features {
            var values: [Float] = [], labels: [Int] = []
            for i in 0..<n {
                let y = i % 2
                labels.append(y)
                values += [100 + 0.01 * (Float(y) * 2 - 1) + 0.002 * rng.normal(), 100 + 0.01 * rng.normal()]
            }
            return Features(values: values, count: n, dimension: 2, labels: labels)
        }
        let r = try linearProbe(train: set(400), test: set(200))
        XCTAssertGreaterThan(r.top1, 0.95)
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

    /// k = 13 (padded to 32 columns) and k = 100 (padded to 128) run the argmax kernel's
    /// 16-lane loop; with k = 100 centroids 50–54 repeat 0–4 exactly: every tie goes to the
    /// lower index.
    func testNearestCentroidsMatchesNaiveLoop() {
        for (n, d, k) in [(5000, 7, 13), (2500, 9, 100)] {   // more points than one block of 1,024
            var rng = RNG(seed: 2)
            let x = (0..<(n * d)).map { _ in rng.normal() }
            var c = (0..<(k * d)).map { _ in rng.normal() }
            let duplicated = k == 100
            if duplicated { for j in 50..<55 { for t in 0..<d { c[j * d + t] = c[(j - 50) * d + t] } } }
            let expected = (0..<n).map { i in
                (0..<k).min { a, b in
                    let da = (0..<d).reduce(0.0) { $0 + pow(Double(x[i * d + $1] - c[a * d + $1]), 2) }
                    let db = (0..<d).reduce(0.0) { $0 + pow(Double(x[i * d + $1] - c[b * d + $1]), 2) }
                    return da < db
                }!
            }
            let got = nearestCentroids(x, count: n, dimension: d, centroids: c, k: k)
            XCTAssertGreaterThan(zip(got, expected).filter { $0 == $1 }.count, n - 3)   // float rounding may flip a near-tie
            if duplicated {   // the originals do win points; their copies never do
                XCTAssertTrue(got.contains { (0..<5).contains($0) })
                XCTAssertFalse(got.contains { (50..<55).contains($0) })
            }
        }
    }

    func testPCAWhitening() {
        var rng = RNG(seed: 7)
        // x = (3a, a + 0.5b): covariance [[9, 3], [3, 1.25]].
        var x: [Float] = []
        let n = 5000   // more rows than one block of 2,048: the blocks' sums
        for _ in 0..<n { let a = rng.normal(), b = rng.normal(); x += [3 * a, a + 0.5 * b] }
        // The sample covariance (n − 1) by a loop, and its eigenvalues in closed form:
        // (s11 + s22)/2 ± √(((s11 − s22)/2)² + s12²).
        let m0 = (0..<n).map { Double(x[2 * $0]) }.reduce(0, +) / Double(n), m1 = (0..<n).map { Double(x[2 * $0 + 1]) }.reduce(0, +) / Double(n)
        var s11 = 0.0, s22 = 0.0, s12 = 0.0
        for i in 0..<n {
            let u = Double(x[2 * i]) - m0, v = Double(x[2 * i + 1]) - m1
            (s11, s22, s12) = (s11 + u * u / Double(n - 1), s22 + v * v / Double(n - 1), s12 + u * v / Double(n - 1))
        }
        let mid = (s11 + s22) / 2, half = (((s11 - s22) / 2) * ((s11 - s22) / 2) + s12 * s12).squareRoot()
        let pca = PCA(x, count: n, dimension: 2, components: 2, whiten: true)
        XCTAssertEqual(pca.explainedVariance[0], mid + half, accuracy: 1e-9 * (mid + half))
        XCTAssertEqual(pca.explainedVariance[1], mid - half, accuracy: 1e-9 * (mid - half))
        // Whitened output: unit variance per component, uncorrelated.
        let y = pca.transform(x, count: n)
        let cols = (0..<2).map { c in (0..<n).map { Double(y[$0 * 2 + c]) } }
        for i in [0, 2047, 2048, n - 1] { for c in 0..<2 {   // each row: (x − mean) · component / √λ
            let p = (Double(x[2 * i]) - m0) * pca.components[2 * c] + (Double(x[2 * i + 1]) - m1) * pca.components[2 * c + 1]
            XCTAssertEqual(cols[c][i], p / pca.explainedVariance[c].squareRoot(), accuracy: 1e-6 * max(1, abs(cols[c][i])))
        } }
        for c in 0..<2 { XCTAssertEqual(cols[c].map { $0 * $0 }.reduce(0, +) / Double(n - 1), 1, accuracy: 1e-3) }
        XCTAssertEqual(zip(cols[0], cols[1]).map { $0 * $1 }.reduce(0, +) / Double(n - 1), 0, accuracy: 1e-3)
        // The first component is the leading eigenvector (s12, λ1 − s11), up to sign.
        let (e0, e1) = (s12, mid + half - s11), norm = (e0 * e0 + e1 * e1).squareRoot()
        XCTAssertEqual(abs(pca.components[0] * e0 + pca.components[1] * e1) / norm, 1, accuracy: 1e-4)
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
        for k in [1, 2, 4, 8] { XCTAssertEqual(try XCTUnwrap(result.recallAt[String(k)]), Double(recall[k] ?? 0) / Double(n), accuracy: 1e-12) }
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
