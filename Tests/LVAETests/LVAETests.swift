import Engine
import Evaluation
import Foundation
import LVAE
import NN
import TestSupport
import XCTest

final class LVAEPieceTests: XCTestCase {
    func testGaussianLogDensityAgainstTheFormula() {
        let z: [Float] = [0.3, -1.2, 2.0, 0.1], m: [Float] = [0, 1, -0.5, 0.4], v: [Float] = [1, 0.25, 2, 0.5]
        let g = Gaussian(mean: Tensor(m, shape: [2, 2]), variance: Tensor(v, shape: [2, 2]))
        let got = g.logDensity(Tensor(z, shape: [2, 2])).array
        for r in 0..<2 {
            let expected = (0..<2).map { j -> Double in
                let i = 2 * r + j, d = Double(z[i] - m[i])
                return -0.5 * (log(2 * Double.pi) + log(Double(v[i])) + d * d / Double(v[i]))
            }.reduce(0, +)
            XCTAssertEqual(Double(got[r]), expected, accuracy: 1e-5, "row \(r)")
        }
    }

    /// The merge is the normalized product of the two densities: log N(x; a) + log N(x; b) −
    /// log N(x; merged) is the same constant at every x, and the parameters have the closed form.
    func testPrecisionWeightedMergeIsTheProductOfTheTwoGaussians() {
        let a = Gaussian(mean: Tensor([1, 0], shape: [1, 2]), variance: Tensor([0.5, 1], shape: [1, 2]))
        let b = Gaussian(mean: Tensor([-2, 3], shape: [1, 2]), variance: Tensor([2, 1e-5], shape: [1, 2]))
        let m = precisionWeightedMerge(a, b)
        // Dimension 0: precisions 2 and 0.5 → variance 0.4, mean 0.4 (2 · 1 − 0.5 · 2) = 0.4.
        XCTAssertEqual(m.variance.array[0], 0.4, accuracy: 1e-6)
        XCTAssertEqual(m.mean.array[0], 0.4, accuracy: 1e-6)
        // Dimension 1: a nearly exact top-down term pins the merge to it.
        XCTAssertEqual(m.mean.array[1], 3, accuracy: 1e-4)
        XCTAssertEqual(m.variance.array[1], 1e-5 / (1 + 1e-5), accuracy: 1e-9)
        let one = { (g: Gaussian, x: Float) in Gaussian(mean: g.mean.slice(axis: 1, 0..<1), variance: g.variance.slice(axis: 1, 0..<1)).logDensity(Tensor([x], shape: [1, 1])).item }
        let constants = [-1.5, 0, 0.4, 2.5].map { x in one(a, Float(x)) + one(b, Float(x)) - one(m, Float(x)) }
        for c in constants { XCTAssertEqual(c, constants[0], accuracy: 1e-4) }
    }

    func testGradientsMatchFiniteDifferences() {
        let ma = randn([3, 2], seed: 1), va = uniform([3, 2], low: 0.3, high: 2, seed: 2)
        let mb = randn([3, 2], seed: 3), vb = uniform([3, 2], low: 0.3, high: 2, seed: 4), z = randn([3, 2], seed: 5)
        checkGradients([ma, va, mb, vb]) { t in
            let m = precisionWeightedMerge(Gaussian(mean: t[0], variance: t[1]), Gaussian(mean: t[2], variance: t[3]))
            return m.mean * 2 + m.variance
        }
        checkGradients([z, ma, va]) { t in Gaussian(mean: t[1], variance: t[2]).logDensity(t[0]) }
        let x = Tensor((0..<6).map { Float($0 % 2) }, shape: [3, 2])
        checkGradients([randn([3, 2], seed: 6)]) { bernoulliLogLikelihood(logits: $0[0], targets: x) }
    }

    func testBernoulliLogLikelihoodAgainstTheFormula() {
        let l: [Float] = [2, -1, 0.5, -30], x: [Float] = [1, 0, 0, 1]
        let got = bernoulliLogLikelihood(logits: Tensor(l, shape: [1, 4]), targets: Tensor(x, shape: [1, 4])).item
        let expected = zip(l, x).map { l, x -> Double in
            let s = 1 / (1 + exp(-Double(l)))
            return Double(x) * log(s) + (1 - Double(x)) * log(1 - s)
        }.reduce(0, +)
        XCTAssertEqual(Double(got), expected, accuracy: 1e-4)
    }

    /// The single-sample estimate log q(z) − log p(z), z ~ q, averaged, converges to the
    /// closed-form KL of two diagonal Gaussians.
    func testMonteCarloKLMatchesTheClosedForm() {
        let n = 40_000
        let mq: [Double] = [0.5, -1], vq: [Double] = [0.3, 1.5], mp: [Double] = [0, 0.5], vp: [Double] = [1, 0.8]
        let exact = gaussianKL(muQ: mq, logVarQ: vq.map(log), muP: mp, logVarP: vp.map(log)).reduce(0, +)
        let rows = { (v: [Double]) in Tensor((0..<n).flatMap { _ in v.map(Float.init) }, shape: [n, 2]) }
        let q = Gaussian(mean: rows(mq), variance: rows(vq)), p = Gaussian(mean: rows(mp), variance: rows(vp))
        var rng = RNG(seed: 7)
        let z = q.sample(rng: &rng)
        let estimate = Double((q.logDensity(z) - p.logDensity(z)).mean().item)
        XCTAssertEqual(estimate, exact, accuracy: 0.05, "exact \(exact)")   // the estimate's sd is 0.012 here: 4 sd
    }

    func testWarmupRisesLinearlyThenStays() {
        XCTAssertEqual(warmupWeight(step: 0, warmupSteps: 100), 0)
        XCTAssertEqual(warmupWeight(step: 25, warmupSteps: 100), 0.25)
        XCTAssertEqual(warmupWeight(step: 100, warmupSteps: 100), 1)
        XCTAssertEqual(warmupWeight(step: 250, warmupSteps: 100), 1)
        XCTAssertEqual(warmupWeight(step: 0, warmupSteps: 0), 1, "no warm-up: β = 1 from the start")
    }

    func testGradientClippingByTotalNormThenElementwise() {
        let a = Tensor([3, 0], shape: [2]), b = Tensor([4], shape: [1])
        a.grad = Tensor([3, 0], shape: [2]); b.grad = Tensor([4], shape: [1])
        XCTAssertEqual(clipGradients([a, b], maxNorm: 2.5, maxValue: 1.8), 5, accuracy: 1e-9)
        // Scaled by 2.5 / 5 to (1.5, 0, 2), then 2 clipped to 1.8.
        XCTAssertEqual(a.grad!.array, [1.5, 0])
        XCTAssertEqual(b.grad!.array, [1.8])
        a.grad = Tensor([0.3, -0.4], shape: [2])
        clipGradients([a], maxNorm: 4, maxValue: 0.9)
        XCTAssertEqual(a.grad!.array, [0.3, -0.4], "inside both limits: unchanged")
    }
}

final class HierarchicalVAETests: XCTestCase {
    func binary(_ n: Int, _ d: Int, seed: UInt64) -> Tensor {
        var r = RNG(seed: seed)
        return Tensor((0..<(n * d)).map { _ in r.uniform() < 0.3 ? 1 : 0 }, shape: [n, d])
    }

    /// With one stochastic layer the ladder and the bottom-up VAE are the same model: same
    /// parameters, same draws, same pass.
    func testOneLayerLadderIsTheVAE() {
        var r1 = RNG(seed: 3), r2 = RNG(seed: 3)
        let vae = HierarchicalVAE(inputs: 12, latents: [4], widths: [8], batchNorm: false, ladder: false, rng: &r1)
        let lvae = HierarchicalVAE(inputs: 12, latents: [4], widths: [8], batchNorm: false, ladder: true, rng: &r2)
        XCTAssertEqual(vae.stateDict().map(\.key), lvae.stateDict().map(\.key))
        let x = binary(5, 12, seed: 4)
        var s1 = RNG(seed: 9), s2 = RNG(seed: 9)
        XCTAssertEqual(vae.pass(x, rng: &s1).logWeight.array, lvae.pass(x, rng: &s2).logWeight.array)
    }

    /// The pass's terms recomputed by hand for a two-layer ladder with a shared top-down term:
    /// z₂ ~ N(μ̂₂, σ̂₂²), q(z₁) the merge of (μ̂₁, σ̂₁²) with p(z₁ | z₂), and the weight log p(x|z₁)
    /// + log p(z₁|z₂) + log N(z₂; 0, I) − log q(z₁) − log q(z₂).
    func testLadderPassFollowsTheTwoPassAlgorithm() throws {
        var r = RNG(seed: 5)
        let m = HierarchicalVAE(inputs: 10, latents: [3, 2], widths: [6, 4], batchNorm: false, ladder: true, rng: &r)
        let keys = Set(m.stateDict().map(\.key))
        for k in ["up.0.0.weight", "up.1.0.weight", "up_heads.1.variance.0.bias", "down.0.0.weight", "down_heads.0.mean.0.weight", "decoder.1.weight"] {
            XCTAssertTrue(keys.contains(k), k)
        }
        XCTAssertFalse(keys.contains { $0.hasPrefix("top_down") }, "shared top-down: no separate network")
        let x = binary(4, 10, seed: 6)
        var draws = RNG(seed: 11)
        let p = m.pass(x, rng: &draws)
        // By hand, with the same draws in the same order (z₂ first, then z₁).
        let state = Dictionary(uniqueKeysWithValues: m.stateDict().map { ($0.key, $0.tensor) })
        func lin(_ h: Tensor, _ k: String) -> Tensor { linear(h, weight: state[k + ".weight"]!, bias: state[k + ".bias"]) }
        func head(_ h: Tensor, _ k: String) -> Gaussian { Gaussian(mean: lin(h, k + ".mean.0"), variance: lin(h, k + ".variance.0").softplus() + 1e-5) }
        let d1 = lin(x, "up.0.0").leakyRelu(0.1), d2 = lin(d1, "up.1.0").leakyRelu(0.1)
        let e1 = head(d1, "up_heads.0"), e2 = head(d2, "up_heads.1")
        var again = RNG(seed: 11)
        let z2 = e2.sample(rng: &again)
        let prior1 = head(lin(z2, "down.0.0").leakyRelu(0.1), "down_heads.0")
        let v = 1 / (1 / e1.variance + 1 / prior1.variance), q1 = Gaussian(mean: (e1.mean / e1.variance + prior1.mean / prior1.variance) * v, variance: v)
        let z1 = q1.sample(rng: &again)
        let logits = lin(lin(z1, "decoder.0.0").leakyRelu(0.1), "decoder.1")
        let w = bernoulliLogLikelihood(logits: logits, targets: x) + prior1.logDensity(z1) + Gaussian.standard(like: z2).logDensity(z2)
            - q1.logDensity(z1) - e2.logDensity(z2)
        assertClose(p.logWeight.array, w.array, tol: 1e-4)
        assertClose(p.posteriorMeans[0].array, q1.mean.array, tol: 1e-5)
        assertClose(p.kl(1).array, (e2.logDensity(z2) - Gaussian.standard(like: z2).logDensity(z2)).mean().array, tol: 1e-5)
    }

    func testSeparateTopDownNetworkAndBatchNormVariants() {
        var r = RNG(seed: 8)
        let m = HierarchicalVAE(inputs: 10, latents: [3, 2, 2], widths: [6, 4, 4], batchNorm: true, ladder: true, sharedTopDown: false, rng: &r)
        let keys = m.stateDict().map(\.key)
        XCTAssertTrue(keys.contains("top_down.1.0.weight") && keys.contains("top_down_heads.0.variance.1.bias"), "\(keys)")
        XCTAssertTrue(keys.contains("up.0.1.running_mean"), "BatchNorm after every dense layer")
        XCTAssertFalse(keys.contains("decoder.2.running_mean"))
        // Variance shifts start at 1 (the official initialisation).
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: m.stateDict().map { ($0.key, $0.tensor) })["up_heads.2.variance.1.bias"]!.array, [1, 1])
        var d = RNG(seed: 1)
        let p = m.pass(binary(8, 10, seed: 2), rng: &d)
        XCTAssertEqual(p.logPrior.count, 3)
        XCTAssertTrue(p.logWeight.array.allSatisfy(\.isFinite))
        // The loss is differentiable end to end: every parameter gets a gradient.
        m.loss(p, beta: 0.5).backward()
        for (k, t) in m.namedParameters() { XCTAssertNotNil(t.grad, k) }
    }

    /// The importance-weighted bound of the model is at least its ELBO and tightens with K
    /// (in expectation: averaged over repeats).
    func testImportanceWeightedBoundTightensWithK() {
        var r = RNG(seed: 12)
        let m = HierarchicalVAE(inputs: 10, latents: [3, 2], widths: [6, 4], batchNorm: false, ladder: true, rng: &r)
        let x = binary(1, 10, seed: 13)
        var draws = RNG(seed: 14)
        let w = (0..<4000).map { _ in Double(m.pass(x, rng: &draws).logWeight.item) }
        func mean(_ k: Int) -> Double { stride(from: 0, to: w.count, by: k).map { iwaeBound(logWeights: Array(w[$0..<($0 + k)])) }.reduce(0, +) / Double(w.count / k) }
        let (k1, k10, k100) = (mean(1), mean(10), mean(100))
        XCTAssertEqual(k1, elbo(logWeights: w), accuracy: 1e-9)
        XCTAssertGreaterThan(k10, k1)
        XCTAssertGreaterThan(k100, k10)
    }
}
