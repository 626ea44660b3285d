import Datasets
import Engine
import FactorVAE
import Foundation
import Harness
import HDF5IO
import NN
import TestSupport
import XCTest

final class FactorVAEPieceTests: XCTestCase {
    func testPermuteDimensionsPermutesEachColumnIndependently() {
        let rows = 50, d = 4
        let z = (0..<(rows * d)).map { Float($0) }
        var rng = RNG(seed: 1)
        let p = permuteDimensions(z, rows: rows, dimension: d, rng: &rng)
        for j in 0..<d {
            XCTAssertEqual((0..<rows).map { p[$0 * d + j] }.sorted(), (0..<rows).map { z[$0 * d + j] }, "column \(j) is a permutation of itself")
        }
        // Each column its own permutation: the row each value came from differs between columns.
        let sources = (0..<d).map { j in (0..<rows).map { Int(p[$0 * d + j]) / d } }
        XCTAssertNotEqual(sources[0], sources[1])
        XCTAssertNotEqual(sources[0], Array(0..<rows))
        var again = RNG(seed: 1)
        XCTAssertEqual(permuteDimensions(z, rows: rows, dimension: d, rng: &again), p, "seeded")
    }

    func testLossesAgainstClosedForms() {
        // KL(N(μ, σ²) ‖ N(0, 1)) = ½(μ² + σ² − log σ² − 1) per dimension, summed, mean over rows.
        let mu = Tensor([0, 1, -2, 0.5], shape: [2, 2]), lv = Tensor([0, 0, 1, -1], shape: [2, 2])
        let expected = [(0.0, 0.0), (1.0, 0.0), (-2.0, 1.0), (0.5, -1.0)].map { m, l in 0.5 * (m * m + exp(l) - l - 1) }.reduce(0, +) / 2
        XCTAssertEqual(Double(gaussianKLToPrior(mu, lv).item), expected, accuracy: 1e-6)
        XCTAssertEqual(gaussianKLToPrior(Tensor.zeros([3, 5]), Tensor.zeros([3, 5])).item, 0)
        // Bernoulli NLL: −Σ [t log σ(l) + (1 − t) log(1 − σ(l))], mean over rows.
        let logits: [Float] = [2, -1, 0.5, -3, 0, 4], targets: [Float] = [1, 0, 1, 1, 0, 0]
        let naive = zip(logits, targets).map { l, t -> Double in
            let s = 1 / (1 + exp(-Double(l)))
            return -(Double(t) * log(s) + (1 - Double(t)) * log(1 - s))
        }.reduce(0, +) / 2
        XCTAssertEqual(Double(bernoulliNLL(logits: Tensor(logits, shape: [2, 3]), targets: Tensor(targets, shape: [2, 3])).item), naive, accuracy: 1e-5)
        // TĈ: the mean of logit₀ − logit₁.
        XCTAssertEqual(totalCorrelationEstimate(Tensor([3, 1, 0, 2, 1, 1], shape: [3, 2])).item, 0, accuracy: 1e-7)
        XCTAssertEqual(totalCorrelationEstimate(Tensor([3, 1, 2, 0], shape: [2, 2])).item, 2, accuracy: 1e-7)
    }

    func testLossGradientsMatchFiniteDifferences() {
        let mu = randn([3, 4], seed: 2), lv = uniform([3, 4], low: -1, high: 1, seed: 3), logits = randn([3, 6], seed: 4)
        let targets = Tensor((0..<18).map { Float($0 % 3 == 0 ? 1 : 0) }, shape: [3, 6])
        checkGradients([mu, lv]) { gaussianKLToPrior($0[0], $0[1]) }
        checkGradients([logits]) { bernoulliNLL(logits: $0[0], targets: targets) }
        checkGradients([randn([5, 2], seed: 5)]) { totalCorrelationEstimate($0[0]) }
        // The reparameterized sample: the same ε for every evaluation.
        checkGradients([mu, lv]) { t in var r = RNG(seed: 9); return VAE(inputs: 4, hidden: [3], latents: 4, rng: &r).sample(t[0], t[1], rng: &r) }
    }

    /// A discriminator trained on samples of q(z) against their dimension-permuted copies
    /// estimates TC: −½ log(1 − ρ²) nats for a 2-D Gaussian of correlation ρ, 0 for
    /// independent coordinates.
    func testDensityRatioTrickRecoversKnownTotalCorrelation() {
        for (rho, tolerance) in [(0.0, 0.05), (0.8, 0.1)] {
            let truth = -0.5 * log(1 - rho * rho)
            var rng = RNG(seed: 11)
            let d = discriminator(latents: 2, hidden: [64, 64], rng: &rng)
            let adam = Adam(groups: d.parameterGroups(learningRate: 1e-3, weightDecay: 0), beta1: 0.5, beta2: 0.9)
            func draw(_ n: Int) -> [Float] {
                (0..<n).flatMap { _ -> [Float] in
                    let a = rng.normal(), b = rng.normal()
                    return [a, Float(rho) * a + Float((1 - rho * rho).squareRoot()) * b]
                }
            }
            for _ in 0..<1500 {
                let z = draw(128)
                let permuted = permuteDimensions(draw(128), rows: 128, dimension: 2, rng: &rng)
                d.zeroGrad()
                discriminatorLoss(d, real: Tensor(z, shape: [128, 2]), permuted: Tensor(permuted, shape: [128, 2])).loss.backward()
                adam.step()
            }
            let estimate = withoutGradients { totalCorrelationEstimate(d(Tensor(draw(20_000), shape: [20_000, 2]))).item }
            XCTAssertEqual(Double(estimate), truth, accuracy: tolerance, "ρ = \(rho): TC \(truth)")
        }
    }
}

final class FactorVAEDataTests: TempDirTestCase {
    func testImagesAreTheRenderersAtBothResolutions() throws {
        let path = repositoryRoot + "/data/dsprites.h5"
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("data/dsprites.h5 is missing: `make data` builds it") }
        let full = try DSpritesImages.load(path, resolution: 64), half = try DSpritesImages.load(path, resolution: 32)
        var rng = RNG(seed: 3)
        let factors = DSpritesImages.sampleFactors(20, rng: &rng)
        let a = full.batch(factors).array, b = half.batch(factors).array
        for (i, f) in factors.enumerated() {
            var img = [UInt8](repeating: 0, count: 4096)
            img.withUnsafeMutableBufferPointer { DSprites.render(shape: DSprites.Shape(rawValue: f[1])!, scaleClass: f[2], orientationClass: f[3], posX: f[4], posY: f[5], into: $0.baseAddress!) }
            XCTAssertEqual(Array(a[(i * 4096)..<((i + 1) * 4096)]), img.map(Float.init), "factors \(f)")
            // 32 × 32: a pixel is on when at least two of its 2 × 2 block are.
            var blocks = [Float](repeating: 0, count: 1024)
            for r in 0..<32 { for c in 0..<32 {
                var on = 0
                for dy in 0..<2 { for dx in 0..<2 { on += Int(img[(2 * r + dy) * 64 + 2 * c + dx]) } }
                blocks[r * 32 + c] = on >= 2 ? 1 : 0
            } }
            XCTAssertEqual(Array(b[(i * 1024)..<((i + 1) * 1024)]), blocks, "factors \(f) at 32")
        }
        XCTAssertEqual(DSpritesImages.sampleFactors(1000, rng: &rng).map { $0[0] }, [Int](repeating: 0, count: 1000), "colour has one value")
    }

    func testAFileOfTheWrongShapeIsRefusedWithItsName() throws {
        let path = dir + "/small.h5"
        let f = try HDF5File(creating: path)
        try f.write("/imgs", uint8s: [UInt8](repeating: 0, count: 10 * 64 * 64), shape: [10, 64, 64])
        XCTAssertThrowsError(try DSpritesImages.load(path, resolution: 32)) { e in
            XCTAssertTrue("\(e)".contains(path) && "\(e)".contains("/imgs") && "\(e)".contains("737280"), "\(e)")
        }
        XCTAssertThrowsError(try DSpritesImages.load(dir + "/missing.h5", resolution: 32)) { e in XCTAssertTrue("\(e)".contains("missing.h5"), "\(e)") }
        XCTAssertThrowsError(try DSpritesImages.load(path, resolution: 16)) { e in XCTAssertTrue("\(e)".contains("config.resolution"), "\(e)") }
    }
}

final class FactorVAEExperimentTests: TempDirTestCase {
    /// nil: the experiment file's own dataset, data/dsprites.h5 (skipped without it).
    func dsprites() throws -> String? {
        guard FileManager.default.fileExists(atPath: repositoryRoot + "/data/dsprites.h5") else { throw XCTSkip("data/dsprites.h5 is missing: `make data` builds it") }
        return nil
    }

    func testSmokeProfileRunsEveryArmAndDrawsItsPictures() throws {
        let s = try smokeRun(FactorVAEExperiment.self, "factorvae", dataset: try dsprites())
        XCTAssertEqual(s.arms.map(\.name), ["vae", "beta_4", "beta_8", "beta_16", "gamma_10", "gamma_40", "gamma_100"])
        let keys = ["loss", "recon", "kl", "tc_train", "discriminator_accuracy_train", "discriminator_accuracy_max", "recon_nll", "heldout_kl",
                    "active_dims", "factor_vae_score", "factor_vae_score_dlib", "beta_vae_score", "mig", "tc_estimate", "discriminator_accuracy"]
        for a in s.arms {
            XCTAssertEqual(a.steps, 10, a.name)
            for k in keys { XCTAssertNotNil(a.metrics[k], "\(a.name) \(k)") }
            XCTAssertEqual(a.history.count, 2)
            for f in ["reconstructions", "traversal"] { XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir!)/results/factorvae/smoke/\(a.name)-\(f).png"), "\(a.name) \(f)") }
        }
        let svg = try String(contentsOfFile: "\(dir!)/results/factorvae/smoke/tradeoff.svg", encoding: .utf8)
        for a in s.arms { XCTAssertTrue(svg.contains(">\(a.name)</text>"), a.name) }
        XCTAssertEqual(s.references.map(\.name), ["random encoder"])
        XCTAssertEqual(s.claimResults.map(\.claim.id), ["C-FV1", "C-FV2", "C-FV2b", "C-FV2c", "C-FV3", "C-FV3b", "C-FV3c", "C-FV4"])
        for a in s.arms { XCTAssertEqual(a.metrics["discriminator_accuracy_max"], a.history.compactMap { $0["discriminator_accuracy_train"] }.max(), a.name) }
    }

    func testRunsAreReproducible() throws {
        let path = try dsprites()
        let a = try smokeRun(FactorVAEExperiment.self, "factorvae", dataset: path, arms: ["gamma_10"]).arms[0]
        let b = try smokeRun(FactorVAEExperiment.self, "factorvae", dataset: path, arms: ["gamma_10"]).arms[0]
        XCTAssertEqual(a.metrics, b.metrics)
        XCTAssertEqual(a.history, b.history)
    }

    func testBadValuesNameTheirKey() throws {
        let path = try dsprites()
        for (key, value, expected) in [("resolution", 48 as Any, "config.resolution"), ("gamma", -1 as Any, "config.gamma"), ("latents", 0 as Any, "config.latents"),
                                       ("scores.factor_batch", 1 as Any, "config.scores.factor_batch"), ("batch_size", 1 as Any, "config.batch_size"),
                                       ("learning_rate", 0 as Any, "config.learning_rate"), ("warmup", 3 as Any, "warmup")] {
            XCTAssertThrowsError(try smokeRun(FactorVAEExperiment.self, "factorvae", dataset: path, arms: ["vae"], overrides: [(key, value)])) { e in
                XCTAssertTrue("\(e)".contains(expected), "\(key): \(e)")
            }
        }
    }
}
