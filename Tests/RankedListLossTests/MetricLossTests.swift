import Engine
import Evaluation
import Foundation
import RankedListLoss
import TestSupport
import XCTest

/// The metric-learning losses against naive per-query loops in Double, closed forms, finite
/// differences and pytorch-metric-learning (Fixtures/make_fixtures.py wrote
/// Fixtures/metric-losses.json).
final class MetricLossTests: XCTestCase {
    // MARK: naive loops, straight from the equations (docs/papers/ranked-list-loss.md)

    struct Batch {
        let x: [Float], labels: [Int], n: Int, dim: Int
        /// Unit rows, their raw norms, distances and cosines, in Double.
        var u: [[Double]] {
            (0..<n).map { i in
                let r = (0..<dim).map { Double(x[i * dim + $0]) }, norm = r.map { $0 * $0 }.reduce(0, +).squareRoot()
                return r.map { $0 / norm }
            }
        }
        var norms: [Double] {
            (0..<n).map { i -> Double in
                let r: [Double] = (0..<dim).map { Double(x[i * dim + $0]) }
                return r.map { $0 * $0 }.reduce(0, +).squareRoot()
            }
        }
        func d(_ u: [[Double]], _ i: Int, _ j: Int) -> Double { zip(u[i], u[j]).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot() }
        func s(_ u: [[Double]], _ i: Int, _ j: Int) -> Double { zip(u[i], u[j]).map { $0 * $1 }.reduce(0, +) }
        var tensor: Tensor { Tensor(x, shape: [n, dim], requiresGrad: true) }
    }

    func batch(_ labels: [Int], dim: Int, seed: UInt64) -> Batch {
        var rng = RNG(seed: seed)
        return Batch(x: (0..<(labels.count * dim)).map { _ in rng.normal() }, labels: labels, n: labels.count, dim: dim)
    }

    /// Ranked List Loss query by query; with it the authors' gradient (weights constant, only
    /// the query moves) with respect to the raw rows.
    func naiveRankedList(_ b: Batch, alpha: Double, margin: Double, tn: Double, tp: Double, lambda: Double) -> (loss: Double, authors: [Double]) {
        let u = b.u, norms = b.norms, n = b.n, eps = 1e-5
        var total = 0.0, grad = [Double](repeating: 0, count: n * b.dim)
        for i in 0..<n {
            let pos = (0..<n).filter { $0 != i && b.labels[$0] == b.labels[i] && b.d(u, i, $0) > alpha - margin }
            let neg = (0..<n).filter { b.labels[$0] != b.labels[i] && b.d(u, i, $0) < alpha }
            let wp = pos.map { exp(tp * (b.d(u, i, $0) - (alpha - margin))) }, wn = neg.map { exp(tn * (alpha - b.d(u, i, $0))) }
            let sp = wp.reduce(0, +) + Double(n) * eps, sn = wn.reduce(0, +) + Double(n) * eps
            total += zip(pos, wp).map { $1 * (b.d(u, i, $0) - (alpha - margin)) }.reduce(0, +) / sp
                + lambda * zip(neg, wn).map { $1 * (alpha - b.d(u, i, $0)) }.reduce(0, +) / sn
            // d d_ij / d u_i = (u_i − u_j)/d_ij, then through u_i = x_i/|x_i|: (I − u_i u_iᵀ)/|x_i|.
            var gu = [Double](repeating: 0, count: b.dim)
            for (j, w) in zip(pos, wp) { for k in 0..<b.dim { gu[k] += w / sp * (u[i][k] - u[j][k]) / b.d(u, i, j) } }
            for (j, w) in zip(neg, wn) { for k in 0..<b.dim { gu[k] -= lambda * w / sn * (u[i][k] - u[j][k]) / b.d(u, i, j) } }
            let radial = zip(gu, u[i]).map { $0 * $1 }.reduce(0, +)
            for k in 0..<b.dim { grad[i * b.dim + k] = (gu[k] - radial * u[i][k]) / norms[i] / Double(n) }
        }
        return (total / Double(n), grad)
    }

    func naiveContrastive(_ b: Batch, positive: Double, negative: Double) -> Double {
        let u = b.u
        var pos: [Double] = [], neg: [Double] = []
        for i in 0..<b.n { for j in 0..<b.n where i != j {
            if b.labels[i] == b.labels[j] { pos.append(max(0, b.d(u, i, j) - positive)) } else { neg.append(max(0, negative - b.d(u, i, j))) }
        } }
        func avgNonZero(_ v: [Double]) -> Double { let nz = v.filter { $0 > 0 }; return nz.isEmpty ? 0 : nz.reduce(0, +) / Double(nz.count) }
        return avgNonZero(pos) + avgNonZero(neg)
    }

    func naiveTriplet(_ b: Batch, margin: Double, mining: TripletMining) -> Double {
        let u = b.u
        var terms: [Double] = []
        for a in 0..<b.n {
            let pos = (0..<b.n).filter { $0 != a && b.labels[$0] == b.labels[a] }, neg = (0..<b.n).filter { b.labels[$0] != b.labels[a] }
            if mining == .batchHard {
                guard let p = pos.max(by: { b.d(u, a, $0) < b.d(u, a, $1) }), let q = neg.min(by: { b.d(u, a, $0) < b.d(u, a, $1) }) else { continue }
                terms.append(max(0, b.d(u, a, p) - b.d(u, a, q) + margin))
                continue
            }
            for p in pos { for q in neg {
                let gap = b.d(u, a, q) - b.d(u, a, p)
                if mining == .all || (gap > 0 && gap <= margin) { terms.append(max(0, margin - gap)) }
            } }
        }
        let nz = terms.filter { $0 > 0 }
        return nz.isEmpty ? 0 : nz.reduce(0, +) / Double(nz.count)
    }

    func naiveMultiSimilarity(_ b: Batch, alpha: Double, beta: Double, base: Double, epsilon: Double?) -> Double {
        let u = b.u
        var total = 0.0
        for i in 0..<b.n {
            let others = (0..<b.n).filter { $0 != i }
            var pos = others.filter { b.labels[$0] == b.labels[i] }, neg = others.filter { b.labels[$0] != b.labels[i] }
            if let e = epsilon {
                let hardest = neg.map { b.s(u, i, $0) }.max() ?? -.infinity, easiest = pos.map { b.s(u, i, $0) }.min() ?? .infinity
                (pos, neg) = (pos.filter { b.s(u, i, $0) - e < hardest }, neg.filter { b.s(u, i, $0) + e > easiest })
            }
            if !pos.isEmpty { total += log(1 + pos.map { exp(-alpha * (b.s(u, i, $0) - base)) }.reduce(0, +)) / alpha }
            if !neg.isEmpty { total += log(1 + neg.map { exp(beta * (b.s(u, i, $0) - base)) }.reduce(0, +)) / beta }
        }
        return total / Double(b.n)
    }

    // MARK: tests

    /// P × K batches, and one with a class of a single image (no positives for its query).
    let labelSets = [[0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2], [0, 0, 1, 1, 1, 2, 2, 2, 2, 3, 4, 4]]

    func testEveryLossMatchesItsNaiveLoop() {
        for (t, labels) in labelSets.enumerated() {
            for dim in [3, 8] {
                let b = batch(labels, dim: dim, seed: UInt64(10 * t + dim))
                let what = "labels \(t), d \(dim)"
                for (alpha, margin, tn, tp, lambda) in [(1.2, 0.4, 10.0, 0.0, 1.0), (1.0, 0.0, 0.0, 0.0, 1.0), (1.4, 0.8, 20.0, 3.0, 0.5)] {
                    let expected = naiveRankedList(b, alpha: alpha, margin: margin, tn: tn, tp: tp, lambda: lambda).loss
                    for g in [RankedListGradient.authors, .autodiff] {
                        let got = rankedListLoss(b.tensor, labels: labels, alpha: Float(alpha), margin: Float(margin), tn: Float(tn), tp: Float(tp),
                                                 lambda: Float(lambda), gradient: g).item
                        XCTAssertEqual(Double(got), expected, accuracy: 2e-5 * max(1, expected), "RLL \(alpha) \(margin) \(tn) \(tp) \(g) \(what)")
                    }
                }
                for (p, q) in [(0.0, 0.5), (0.0, 1.0), (0.3, 1.2)] {
                    XCTAssertEqual(Double(contrastiveLoss(b.tensor, labels: labels, positiveMargin: Float(p), negativeMargin: Float(q)).item),
                                   naiveContrastive(b, positive: p, negative: q), accuracy: 2e-5, "contrastive \(p) \(q) \(what)")
                }
                for mining in [TripletMining.semihard, .batchHard, .all] {
                    for margin in [0.1, 0.2, 0.5] {
                        XCTAssertEqual(Double(tripletLoss(b.tensor, labels: labels, margin: Float(margin), mining: mining).item),
                                       naiveTriplet(b, margin: margin, mining: mining), accuracy: 2e-5, "triplet \(mining) \(margin) \(what)")
                    }
                }
                for (a, be, base, eps) in [(2.0, 50.0, 0.5, 0.1 as Double?), (2.0, 10.0, 0.5, nil), (1.0, 20.0, 0.3, 0.3)] {
                    let expected = naiveMultiSimilarity(b, alpha: a, beta: be, base: base, epsilon: eps)
                    XCTAssertEqual(Double(multiSimilarityLoss(b.tensor, labels: labels, alpha: Float(a), beta: Float(be), base: Float(base), epsilon: eps.map(Float.init)).item),
                                   expected, accuracy: 2e-5 * max(1, expected), "MS \(a) \(be) \(base) \(String(describing: eps)) \(what)")
                }
            }
        }
    }

    func testAuthorsGradientIsTheNaiveQueryOnlyGradientWithConstantWeights() {
        for (t, labels) in labelSets.enumerated() {
            let b = batch(labels, dim: 6, seed: UInt64(40 + t))
            for (alpha, margin, tn, tp) in [(1.2, 0.4, 10.0, 0.0), (1.3, 0.6, 5.0, 2.0)] {
                let x = b.tensor
                rankedListLoss(x, labels: labels, alpha: Float(alpha), margin: Float(margin), tn: Float(tn), tp: Float(tp)).backward()
                let expected = naiveRankedList(b, alpha: alpha, margin: margin, tn: tn, tp: tp, lambda: 1).authors
                XCTAssertGreaterThan(expected.map(abs).max()!, 1e-3)
                for (i, (g, e)) in zip(x.grad!.array, expected).enumerated() { XCTAssertEqual(Double(g), e, accuracy: 1e-5, "labels \(t) element \(i)") }
            }
        }
    }

    func testAutodiffLossesMatchFiniteDifferences() {
        // Seeds where no pair sits within the finite-difference step of a mining boundary.
        let labels = [0, 1, 2, 0, 1, 2, 0, 1, 2, 3]
        let x = randn([labels.count, 5], seed: 3)
        checkGradients([x], eps: 1e-3) { rankedListLoss($0[0], labels: labels, alpha: 1.2, margin: 0.4, tn: 10, tp: 2, gradient: .autodiff) }
        checkGradients([x], eps: 1e-3) { contrastiveLoss($0[0], labels: labels, positiveMargin: 0.1, negativeMargin: 1.2) }
        for mining in [TripletMining.semihard, .batchHard, .all] {
            checkGradients([x], eps: 1e-3) { tripletLoss($0[0], labels: labels, margin: 0.3, mining: mining) }
        }
        checkGradients([x], eps: 1e-3) { multiSimilarityLoss($0[0], labels: labels, alpha: 2, beta: 10, base: 0.5, epsilon: 0.2) }
        checkGradients([x], eps: 1e-3) { multiSimilarityLoss($0[0], labels: labels, alpha: 2, beta: 50, base: 0.5, epsilon: nil) }
    }

    func testRankedListClosedForms() {
        // Two classes at opposite poles: every positive inside α − m, every negative beyond α: no loss, no gradient.
        let x = Tensor([1, 0.01, 1, -0.01, -1, 0.02, -1, -0.02], shape: [4, 2], requiresGrad: true)
        let zero = rankedListLoss(x, labels: [0, 0, 1, 1], alpha: 1.2, margin: 0.4, tn: 10)
        XCTAssertEqual(zero.item, 0, accuracy: 1e-7)
        zero.backward()
        XCTAssertEqual(x.grad!.array.map(abs).max()!, 0, accuracy: 1e-7)
        // Two images of different classes at angle θ: each query has one violating negative of
        // weight w = e^{T(α − d)}, L = w(α − d)/(w + 2·10⁻⁵) for either gradient convention.
        for θ in [0.3, 1.0] {
            let d = 2 * sin(θ / 2), w = exp(10 * (1.2 - d))
            for g in [RankedListGradient.authors, .autodiff] {
                let l = rankedListLoss(Tensor([1, 0, Float(cos(θ)), Float(sin(θ))], shape: [2, 2]), labels: [0, 1], alpha: 1.2, margin: 0.4, tn: 10, gradient: g)
                XCTAssertEqual(Double(l.item), w * (1.2 - d) / (w + 2e-5), accuracy: 1e-6, "θ \(θ) \(g)")
            }
        }
    }

    /// The fixture file: every case's loss and gradient to 1e-5 (where the conventions agree),
    /// and the documented difference for the authors' gradient.
    func testLossesAndGradientsMatchPytorchMetricLearning() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/metric-losses.json")
        let root = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let cases = try XCTUnwrap(root["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 14)
        for c in cases {
            let name = c["name"] as! String, rows = c["rows"] as! Int, d = c["dimension"] as! Int, labels = c["labels"] as! [Int]
            let s = c["settings"] as! [String: Any]
            func f(_ k: String) -> Float { Float(s[k] as! Double) }
            let values = (c["embeddings"] as! [Double]).map(Float.init), expected = c["gradient"] as! [Double]
            func compute(_ gradient: RankedListGradient) -> (Double, [Double]) {
                let x = Tensor(values, shape: [rows, d], requiresGrad: true)
                let loss: Tensor
                switch c["kind"] as! String {
                case "ranked_list":   // PML: (1 − imbalance) L_P + imbalance L_N = (1 − imbalance)(L_P + λ L_N)
                    let imbalance = f("imbalance")
                    loss = rankedListLoss(x, labels: labels, alpha: f("alpha"), margin: f("margin"), tn: f("tn"), tp: f("tp"),
                                          lambda: imbalance / (1 - imbalance), gradient: gradient) * (1 - imbalance)
                case "contrastive": loss = contrastiveLoss(x, labels: labels, positiveMargin: f("positive_margin"), negativeMargin: f("negative_margin"))
                case "triplet": loss = tripletLoss(x, labels: labels, margin: f("margin"), mining: TripletMining(rawValue: s["mining"] as! String)!)
                default: loss = multiSimilarityLoss(x, labels: labels, alpha: f("alpha"), beta: f("beta"), base: f("base"), epsilon: (s["epsilon"] as? Double).map(Float.init))
                }
                loss.backward()
                return (Double(loss.item), x.grad!.array.map(Double.init))
            }
            let (loss, gradient) = compute(.autodiff)
            XCTAssertEqual(loss, c["loss"] as! Double, accuracy: 1e-5, name)
            for (i, (g, e)) in zip(gradient, expected).enumerated() { XCTAssertEqual(g, e, accuracy: 1e-5, "\(name): gradient element \(i)") }
            guard c["kind"] as! String == "ranked_list" else { continue }
            // The authors' convention: PML's value, another gradient (§ gradient conventions).
            let (authorsLoss, authorsGradient) = compute(.authors)
            XCTAssertEqual(authorsLoss, c["loss"] as! Double, accuracy: 1e-5, name)
            XCTAssertGreaterThan(zip(authorsGradient, expected).map { abs($0 - $1) }.max()!, 1e-3, "\(name): the authors' gradient should differ from PML's")
        }
    }

    func testRetrievalMetricsMatchPytorchMetricLearningsAccuracyCalculator() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/metric-losses.json")
        let root = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let cases = try XCTUnwrap(root["retrieval"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 3)
        for c in cases {
            let n = c["rows"] as! Int
            let f = Features(values: (c["features"] as! [Double]).map(Float.init), count: n, dimension: c["dimension"] as! Int, labels: c["labels"] as! [Int])
            let r = try retrievalMetrics(f, kMeansRestarts: 1)
            XCTAssertEqual(try XCTUnwrap(r.recallAt["1"]), c["precision_at_1"] as! Double, accuracy: 1e-9, "n \(n)")
            XCTAssertEqual(r.rPrecision, c["r_precision"] as! Double, accuracy: 1e-6, "n \(n)")
            XCTAssertEqual(r.mapAtR, c["mean_average_precision_at_r"] as! Double, accuracy: 1e-6, "n \(n)")
        }
    }
}
