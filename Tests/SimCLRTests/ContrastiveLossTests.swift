import Engine
import Foundation
import Representation
import TestSupport
import XCTest

/// NT-Xent and SupCon (L_out, L_in) against a naive per-anchor loop in Double, closed
/// forms, finite differences and pytorch-metric-learning's NTXentLoss and SupConLoss
/// (Fixtures/make_fixtures.py wrote Fixtures/contrastive-losses.json).
final class ContrastiveLossTests: XCTestCase {
    /// The losses written out anchor by anchor, in Double, straight from the equations.
    func naive(_ z: [Float], rows v: Int, labels: [Int], τ: Double, inside: Bool) -> (loss: Double, without: Int) {
        let d = z.count / v
        let u: [[Double]] = (0..<v).map { i in
            let r = (0..<d).map { Double(z[i * d + $0]) }, n = r.map { $0 * $0 }.reduce(0, +).squareRoot()
            return r.map { $0 / n }
        }
        func s(_ i: Int, _ a: Int) -> Double { zip(u[i], u[a]).map { $0 * $1 }.reduce(0, +) / τ }
        var total = 0.0, anchors = 0
        for i in 0..<v {
            let positives = (0..<v).filter { $0 != i && labels[$0] == labels[i] }
            if positives.isEmpty { continue }
            anchors += 1
            let denominator = (0..<v).filter { $0 != i }.map { exp(s(i, $0)) }.reduce(0, +)
            if inside {
                total += -log(positives.map { exp(s(i, $0)) }.reduce(0, +) / Double(positives.count) / denominator)
            } else {
                total += positives.map { -log(exp(s(i, $0)) / denominator) }.reduce(0, +) / Double(positives.count)
            }
        }
        return (total / Double(max(anchors, 1)), v - anchors)
    }

    func testBothVariantsMatchTheNaiveLoopIncludingAnAnchorWithoutPositives() {
        var rng = RNG(seed: 7)
        let labels = [0, 1, 2, 0, 1, 3, 0, 1, 2, 0, 1, 4]   // classes 3 and 4: one view each, no positive
        for τ: Float in [0.05, 0.1, 0.5, 1] {
            let z = Tensor.randn([labels.count, 6], rng: &rng)
            for variant in [SupConVariant.outside, .inside] {
                let (loss, without) = supervisedContrastiveLoss(z, labels: labels, temperature: τ, variant: variant)
                let expected = naive(z.array, rows: labels.count, labels: labels, τ: Double(τ), inside: variant == .inside)
                XCTAssertEqual(Double(loss.item), expected.loss, accuracy: 2e-5 * max(1, expected.loss), "τ \(τ) \(variant)")
                XCTAssertEqual(without, 2)
                XCTAssertEqual(expected.without, 2)
            }
        }
    }

    func testJensenPutsLInBelowLOutAndOnePositiveMakesThemEqual() {
        var rng = RNG(seed: 8)
        let z = Tensor.randn([16, 5], rng: &rng)
        let classes = (0..<16).map { $0 % 3 }
        let lin = supervisedContrastiveLoss(z, labels: classes, temperature: 0.2, variant: .inside).loss.item
        let lout = supervisedContrastiveLoss(z, labels: classes, temperature: 0.2, variant: .outside).loss.item
        XCTAssertLessThan(lin, lout - 1e-3)
        // Each view's only positive is the other view of its image: both are NT-Xent.
        let images = Array(0..<8) + Array(0..<8)
        let a = supervisedContrastiveLoss(z, labels: images, temperature: 0.2, variant: .inside).loss.item
        XCTAssertEqual(a, ntXent(z, temperature: 0.2).item, accuracy: 1e-5)
        XCTAssertEqual(supervisedContrastiveLoss(z, labels: images, temperature: 0.2, variant: .outside).loss.item, a, accuracy: 1e-5)
    }

    func testIdenticalEmbeddingsSitOnTheUniformPlateau() {
        // Every similarity equal: each anchor's positive is 1 of 2N − 1 equal terms → ln(2N − 1).
        for n in [2, 5, 256] {
            let z = Tensor(([Float](repeating: 0, count: 2 * n * 3)).enumerated().map { $0.offset % 3 == 0 ? 2 : 1 }, shape: [2 * n, 3])
            for τ: Float in [0.1, 1] {
                XCTAssertEqual(ntXent(z, temperature: τ).item, Float(log(Double(2 * n - 1))), accuracy: 1e-4, "N \(n) τ \(τ)")
            }
        }
    }

    func testGradientsMatchFiniteDifferences() {
        let labels = [0, 1, 0, 2, 1, 0, 3, 2]
        for variant in [SupConVariant.outside, .inside] {
            let z = awayFromZero([8, 4], seed: 3)
            checkGradients([z], eps: 1e-3, rtol: 1e-2, atol: 1e-3) { supervisedContrastiveLoss($0[0], labels: labels, temperature: 0.5, variant: variant).loss }
        }
        checkGradients([awayFromZero([6, 5], seed: 4)], eps: 1e-3, rtol: 1e-2, atol: 1e-3) { ntXent($0[0], temperature: 0.2) }
    }

    func testAnAnchorWithoutPositivesGetsNoGradientFromItsOwnRowAndNothingIsNaN() {
        var rng = RNG(seed: 9)
        let z = Tensor.randn([5, 3], rng: &rng, requiresGrad: true)
        for variant in [SupConVariant.outside, .inside] {
            z.grad = nil
            let (loss, without) = supervisedContrastiveLoss(z, labels: [0, 0, 1, 1, 2], temperature: 0.05, variant: variant)
            loss.backward()
            XCTAssertEqual(without, 1)
            XCTAssertTrue(loss.item.isFinite)
            XCTAssertTrue(z.grad!.array.allSatisfy(\.isFinite))
        }
        // No anchor has a positive: the loss is 0, not NaN.
        let (loss, without) = supervisedContrastiveLoss(Tensor.randn([3, 3], rng: &rng), labels: [0, 1, 2], temperature: 0.1)
        XCTAssertEqual(loss.item, 0)
        XCTAssertEqual(without, 3)
    }

    func testLossAndGradientMatchPytorchMetricLearning() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/contrastive-losses.json")
        let root = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let cases = try XCTUnwrap(root["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 6)
        for c in cases {
            let name = c["name"] as! String, rows = c["rows"] as! Int, d = c["dimension"] as! Int
            let labels = c["labels"] as! [Int], τ = Float(c["temperature"] as! Double)
            let z = Tensor((c["embeddings"] as! [Double]).map(Float.init), shape: [rows, d], requiresGrad: true)
            let loss = c["loss_function"] as! String == "NTXentLoss" ? ntXent(z, temperature: τ)
                : supervisedContrastiveLoss(z, labels: labels, temperature: τ).loss
            loss.backward()
            XCTAssertEqual(Double(loss.item), c["loss"] as! Double, accuracy: 1e-5, name)
            for (i, (g, e)) in zip(z.grad!.array, c["gradient"] as! [Double]).enumerated() {
                XCTAssertEqual(Double(g), e, accuracy: 1e-5, "\(name): gradient element \(i)")
            }
        }
    }
}
