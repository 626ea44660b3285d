import Datasets
import Engine
import Evaluation
import Foundation
import Harness
import NN

/// FactorVAE (Kim & Mnih, ICML 2018) against β-VAE (Higgins et al., ICLR 2017) and the plain
/// VAE on dSprites (docs/papers/factorvae.md). Every arm trains the same VAE for the same
/// steps on batches of factors drawn uniformly (disentanglement_lib's `sample_factors`), and a
/// discriminator beside it on a second batch per step (the paper's Algorithm 2); the
/// discriminator's total-correlation estimate enters the VAE loss with weight γ (0 for the
/// VAE and β-VAE arms, whose discriminator only measures). Scores: reconstruction on a fixed
/// held-out sample, the FactorVAE metric (paper and disentanglement_lib modes), the β-VAE
/// metric, MIG, active dimensions, TC estimate and discriminator accuracy.
public final class FactorVAEExperiment: Experiment {
    public struct Scores: Codable {
        /// Held-out images for reconstruction, KL, active dimensions, TC and discriminator accuracy.
        public var heldOut: Int
        /// Codes that set each dimension's scale (and the KL pruning of the paper mode).
        public var globalSamples: Int
        /// FactorVAE metric, paper mode: L images per vote, votes, KL pruning (nats).
        public var factorBatch: Int, factorTrainVotes: Int, factorEvalVotes: Int, factorKlThreshold: Double
        /// disentanglement_lib mode: L, votes, pruning of dimensions whose std is below the threshold.
        public var dlibBatch: Int, dlibTrainVotes: Int, dlibEvalVotes: Int, dlibStdThreshold: Double
        /// β-VAE metric: L pairs per point, training and evaluation points.
        public var betaBatch: Int, betaTrainPoints: Int, betaEvalPoints: Int
        public var migSamples: Int, migBins: Int
    }

    public struct Config: Codable {
        /// 64 (the file's images) or 32 (2 × 2 blocks).
        public var resolution: Int
        public var hidden: [Int]
        public var latents: Int
        public var discriminatorHidden: [Int]
        public var batchSize: Int
        public var epochs: Int, stepsPerEpoch: Int
        /// Adam (0.9, 0.999) for the VAE, Adam (0.5, 0.9) for the discriminator.
        public var learningRate: Float, discriminatorLearningRate: Float
        public var beta: Float, gamma: Float
        public var scores: Scores
    }

    public static let recon = Metric("recon", "reconstruction NLL on the training batches, mean over the epoch", unit: "nats/image")
    public static let kl = Metric("kl", "KL(q(z|x) ‖ p(z)) on the training batches, mean over the epoch", unit: "nats/image")
    public static let tcTrain = Metric("tc_train", "TC estimate on the training batches, mean over the epoch", unit: "nats")
    public static let accuracyTrain = Metric("discriminator_accuracy_train", "discriminator accuracy on the training batches, mean over the epoch", unit: "fraction")
    public static let accuracyMax = Metric("discriminator_accuracy_max", "the highest epoch mean of discriminator_accuracy_train (about 0.5 throughout: the discriminator never learned)", unit: "fraction")
    public static let reconNLL = Metric("recon_nll", "reconstruction NLL on the held-out images (one z per image)", unit: "nats/image")
    public static let heldOutKL = Metric("heldout_kl", "KL(q(z|x) ‖ p(z)) on the held-out images", unit: "nats/image")
    public static let activeDims = Metric("active_dims", "latent dimensions whose mean KL on the held-out images exceeds 0.01 nats", unit: "count")
    public static let factorScore = Metric("factor_vae_score", "FactorVAE metric, paper mode (KL pruning)", unit: "accuracy")
    public static let factorScoreDlib = Metric("factor_vae_score_dlib", "FactorVAE metric, disentanglement_lib mode (std pruning)", unit: "accuracy")
    public static let betaScore = Metric("beta_vae_score", "β-VAE metric (linear classifier)", unit: "accuracy")
    public static let mig = Metric("mig", "mutual information gap (20-bin histogram of the means)", unit: "0–1")
    public static let tc = Metric("tc_estimate", "TC estimate of the discriminator on the held-out images' samples", unit: "nats")
    public static let accuracy = Metric("discriminator_accuracy", "discriminator accuracy on held-out samples and their dimension-permuted copies", unit: "fraction")
    static let monitored: [Metric] = [.loss, recon, kl, tcTrain, accuracyTrain]
    public static let metrics: [Metric] = monitored + [accuracyMax, reconNLL, heldOutKL, activeDims, factorScore, factorScoreDlib, betaScore, mig, tc, accuracy]
    public static let randomEncoder = "random encoder"
    public static let referenceNames = [randomEncoder]

    let config: Config
    let images: DSpritesImages
    let vae: VAE
    let critic: Sequential
    let adam: Adam, criticAdam: Adam
    let run: RNG
    let context: RunContext

    public init(config c: Config, context: RunContext) throws {
        for (k, v) in [("latents", c.latents), ("batch_size", c.batchSize), ("epochs", c.epochs), ("steps_per_epoch", c.stepsPerEpoch)] {
            try require("config.\(k)", v, atLeast: 1)
        }
        for (i, w) in c.hidden.enumerated() { try require("config.hidden[\(i)]", w, atLeast: 1) }
        for (i, w) in c.discriminatorHidden.enumerated() { try require("config.discriminator_hidden[\(i)]", w, atLeast: 1) }
        try require("config.batch_size", c.batchSize, atLeast: 2)
        try require("config.learning_rate", c.learningRate, above: 0)
        try require("config.discriminator_learning_rate", c.discriminatorLearningRate, above: 0)
        try require("config.beta", c.beta, atLeast: 0)
        try require("config.gamma", c.gamma, atLeast: 0)
        try c.scores.validate()
        config = c
        self.context = context
        images = try DSpritesImages.load(context.dataset, resolution: c.resolution)
        run = RNG(seed: context.seed)
        var initRNG = run.derive("init")   // the random-encoder reference row is this VAE
        vae = VAE(inputs: images.imageSize, hidden: c.hidden, latents: c.latents, rng: &initRNG)
        var criticRNG = run.derive("discriminator-init")
        critic = discriminator(latents: c.latents, hidden: c.discriminatorHidden, rng: &criticRNG)
        adam = Adam(groups: vae.parameterGroups(learningRate: c.learningRate, weightDecay: 0))
        criticAdam = Adam(groups: critic.parameterGroups(learningRate: c.discriminatorLearningRate, weightDecay: 0, prefix: "discriminator."),
                          beta1: 0.5, beta2: 0.9)
    }

    public var epochs: Int { config.epochs }
    public var stepsPerEpoch: Int { config.stepsPerEpoch }
    /// Two batches per step: one for the VAE, one for the discriminator's permuted samples.
    public var imagesPerStep: Int { 2 * config.batchSize }
    public var model: Module { vae }
    public var optimizer: Optimizer { adam }

    public func trainEpoch(_ epoch: Int, step: (Double) throws -> Void) throws -> [String: Double] {
        vae.train()
        let b = config.batchSize
        var sums = [Double](repeating: 0, count: 5)
        for s in 0..<config.stepsPerEpoch {
            var r = run.derive("steps").derive(UInt64(epoch * config.stepsPerEpoch + s))
            let x = images.batch(DSpritesImages.sampleFactors(b, rng: &r)), x2 = images.batch(DSpritesImages.sampleFactors(b, rng: &r))
            let t = factorVAEStep(vae: vae, discriminator: critic, optimizer: adam, discriminatorOptimizer: criticAdam, x: x, x2: x2,
                                  beta: config.beta, gamma: config.gamma, rng: &r)
            for (i, v) in [t.loss, t.nll, t.kl, t.tc, t.accuracy].enumerated() { sums[i] += v }
            try step(t.loss)
        }
        let n = Double(config.stepsPerEpoch)
        return [Metric.loss.key: sums[0] / n, Self.recon.key: sums[1] / n, Self.kl.key: sums[2] / n, Self.tcTrain.key: sums[3] / n, Self.accuracyTrain.key: sums[4] / n]
    }

    public func evaluate(epoch: Int, final: Bool) throws -> [String: Double] {
        guard final else { return [:] }
        var out = try scores(vae, images: images, config: config, seed: context.seed)
        let (tcEstimate, acc) = discriminatorOnHeldOut()
        (out[Self.tc.key], out[Self.accuracy.key]) = (tcEstimate, acc)
        try pictures(out)
        return out
    }

    public func summary(of history: [[String: Double]]) -> [String: Double] {
        var out = history.last?.filter { k, _ in Self.monitored.contains { $0.key == k } } ?? [:]
        out[Self.accuracyMax] = history.compactMap { $0[Self.accuracyTrain.key] }.max()
        return out
    }

    /// TĈ and the discriminator's accuracy on one sample z per held-out image and its permuted copy.
    func discriminatorOnHeldOut() -> (Double, Double) {
        let n = config.scores.heldOut, d = config.latents
        var r = heldOutRNG().derive("sample")
        let x = images.batch(heldOutFactors(n))
        return withoutGradients {
            vae.eval()
            let (m, l) = vae.encode(x)
            let z = vae.sample(m, l, rng: &r)
            var p = heldOutRNG().derive("permute")
            let permuted = Tensor(permuteDimensions(z.array, rows: n, dimension: d, rng: &p), shape: [n, d])
            return (Double(totalCorrelationEstimate(critic(z)).item), discriminatorLoss(critic, real: z, permuted: permuted).accuracy)
        }
    }

    /// The reconstruction grid (held-out images over their reconstructions from μ) and the
    /// latent traversal (a row per dimension, μ of one held-out image with that coordinate
    /// set to −2.5 … 2.5), both as sigmoid of the decoder's logits, into the results folder.
    func pictures(_ metrics: [String: Double]) throws {
        let r = config.resolution, d = config.latents, columns = 11
        let x = images.batch(heldOutFactors(10))
        func gray(_ t: Tensor) -> [[UInt8]] {
            let v = t.array
            return (0..<t.shape[0]).map { i in (0..<(r * r)).map { UInt8((255 / (1 + Foundation.exp(-Double(v[i * r * r + $0])))).rounded()) } }
        }
        let (mu, _) = withoutGradients { vae.encode(x) }
        let originals = x.array.chunked(r * r).map { $0.map { UInt8($0 * 255) } }
        let recon = gray(withoutGradients { vae.decoder(mu) })
        try FileManager.default.createDirectory(atPath: context.output, withIntermediateDirectories: true)
        try writePNGGrid(originals + recon, rows: 2, columns: 10, height: r, width: r, scale: 2, to: "\(context.output)/\(context.arm)-reconstructions.png")
        let base = Array(mu.array[0..<d])
        var codes: [Float] = []
        for j in 0..<d { for c in 0..<columns { var z = base; z[j] = -2.5 + 5 * Float(c) / Float(columns - 1); codes += z } }
        let traversal = gray(withoutGradients { vae.decoder(Tensor(codes, shape: [d * columns, d])) })
        try writePNGGrid(traversal, rows: d, columns: columns, height: r, width: r, scale: 2, to: "\(context.output)/\(context.arm)-traversal.png")
        // The trade-off scatter of this run's arms so far (each arm adds its point).
        let points = context.cache.value("factorvae-points") { TradeoffPoints() }
        points.add(context.arm, x: metrics[Self.reconNLL.key] ?? .nan, y: metrics[Self.factorScore.key] ?? .nan)
        try writeAtomically(Data(points.svg(title: "\(context.experiment) (\(context.profile), seed \(context.seed)): reconstruction vs FactorVAE metric").utf8),
                            to: "\(context.output)/tradeoff.svg")
    }

    func heldOutRNG() -> RNG { RNG(seed: 2018).derive("held-out") }   // the same images for every arm and seed
    func heldOutFactors(_ n: Int) -> [[Int]] { var r = heldOutRNG(); return DSpritesImages.sampleFactors(n, rng: &r) }

    /// The untrained VAE every arm starts from (its encoder is the chance floor of the scores).
    public static func references(config c: Config, context: RunContext) throws -> [(name: String, metrics: [String: Double])] {
        let images = try DSpritesImages.load(context.dataset, resolution: c.resolution)
        var initRNG = RNG(seed: context.seed).derive("init")
        let vae = VAE(inputs: images.imageSize, hidden: c.hidden, latents: c.latents, rng: &initRNG)
        context.log("reference: random encoder")
        return [(randomEncoder, try scores(vae, images: images, config: c, seed: context.seed))]
    }

    struct ReferenceInputs: Encodable { let resolution: Int, hidden: [Int], latents: Int, scores: Scores }
    public static func referenceInputs(config c: Config, context: RunContext) -> (any Encodable)? {
        ReferenceInputs(resolution: c.resolution, hidden: c.hidden, latents: c.latents, scores: c.scores)
    }
}

extension FactorVAEExperiment.Scores {
    func validate() throws {
        for (k, v) in [("held_out", heldOut), ("global_samples", globalSamples), ("factor_batch", factorBatch), ("factor_train_votes", factorTrainVotes),
                       ("factor_eval_votes", factorEvalVotes), ("dlib_batch", dlibBatch), ("dlib_train_votes", dlibTrainVotes), ("dlib_eval_votes", dlibEvalVotes),
                       ("beta_batch", betaBatch), ("beta_train_points", betaTrainPoints), ("beta_eval_points", betaEvalPoints), ("mig_samples", migSamples), ("mig_bins", migBins)] {
            try require("config.scores.\(k)", v, atLeast: k.hasSuffix("batch") || k == "held_out" || k == "global_samples" ? 2 : 1)
        }
        try require("config.scores.factor_kl_threshold", factorKlThreshold >= 0, "a value ≥ 0, got \(factorKlThreshold)")
        try require("config.scores.dlib_std_threshold", dlibStdThreshold >= 0, "a value ≥ 0, got \(dlibStdThreshold)")
    }
}

/// The scores of `vae`'s encoder means (and, for reconstruction, its decoder) on the images
/// of `images`, with the run's seed for the metrics' own draws.
func scores(_ vae: VAE, images: DSpritesImages, config c: FactorVAEExperiment.Config, seed: UInt64) throws -> [String: Double] {
    let s = c.scores, d = c.latents
    vae.eval()
    /// (μ, logvar) rows of the images of `factors`, in chunks.
    func encode(_ factors: [[Int]]) -> (mu: [Float], logVar: [Float]) {
        var mu: [Float] = [], lv: [Float] = []
        for start in stride(from: 0, to: factors.count, by: 1000) {
            let (m, l) = withoutGradients { vae.encode(images.batch(Array(factors[start..<min(start + 1000, factors.count)]))) }
            mu += m.array; lv += l.array
        }
        return (mu, lv)
    }
    let rng = RNG(seed: seed).derive("scores")
    // Held-out reconstruction, KL and active dimensions (the images every arm and seed share).
    var h = RNG(seed: 2018).derive("held-out")
    let heldOut = DSpritesImages.sampleFactors(s.heldOut, rng: &h)
    var sample = RNG(seed: 2018).derive("held-out").derive("sample")
    var nll = 0.0, klTotal = 0.0, klPerDim = [Double](repeating: 0, count: d)
    for start in stride(from: 0, to: heldOut.count, by: 1000) {
        let x = images.batch(Array(heldOut[start..<min(start + 1000, heldOut.count)]))
        let (m, l) = withoutGradients { vae.encode(x) }
        let logits = withoutGradients { vae.decoder(vae.sample(m, l, rng: &sample)) }
        nll += Double(binaryCrossEntropyWithLogits(logits, targets: x, reduction: .sum).item)
        let mv = m.array, lvv = l.array
        for i in 0..<(mv.count) {
            let k = 0.5 * (Double(mv[i] * mv[i]) + Foundation.exp(Double(lvv[i])) - Double(lvv[i]) - 1)
            klTotal += k; klPerDim[i % d] += k
        }
    }
    let n = Double(heldOut.count)
    var out: [String: Double] = [FactorVAEExperiment.reconNLL.key: nll / n, FactorVAEExperiment.heldOutKL.key: klTotal / n,
                                 FactorVAEExperiment.activeDims.key: Double(klPerDim.filter { $0 / n > 0.01 }.count)]
    let rows = { (v: [Float]) in (0..<(v.count / d)).map { Array(v[($0 * d)..<(($0 + 1) * d)]) } }
    let model = FactorModel(sizes: DSprites.factorSizes, factors: [1, 2, 3, 4, 5]) { rows(encode($0).mu) }
    // Paper mode: dimensions whose mean KL over a global sample is at most the threshold are
    // pruned first (the score keeps the rest, scaled by their std); no dimension left: 0.
    var g = rng.derive("kl-pruning")
    let global = encode(DSpritesImages.sampleFactors(s.globalSamples, rng: &g))
    var meanKL = [Double](repeating: 0, count: d)
    for i in 0..<global.mu.count {
        meanKL[i % d] += 0.5 * (Double(global.mu[i] * global.mu[i]) + Foundation.exp(Double(global.logVar[i])) - Double(global.logVar[i]) - 1)
    }
    let kept = (0..<d).filter { meanKL[$0] / Double(s.globalSamples) > s.factorKlThreshold }
    if kept.isEmpty {
        out[FactorVAEExperiment.factorScore.key] = 0
    } else {
        let pruned = FactorModel(sizes: model.sizes, factors: model.factors) { f in model.encode(f).map { code in kept.map { code[$0] } } }
        out[FactorVAEExperiment.factorScore.key] = factorVAEScore(pruned, batch: s.factorBatch, trainVotes: s.factorTrainVotes, evalVotes: s.factorEvalVotes,
                                                                  globalSamples: s.globalSamples, pruneThreshold: 0, rng: rng.derive("factor")).score
    }
    out[FactorVAEExperiment.factorScoreDlib.key] = factorVAEScore(model, batch: s.dlibBatch, trainVotes: s.dlibTrainVotes, evalVotes: s.dlibEvalVotes,
                                                                  globalSamples: s.globalSamples, pruneThreshold: s.dlibStdThreshold, rng: rng.derive("dlib")).score
    out[FactorVAEExperiment.betaScore.key] = try betaVAEScore(model, batch: s.betaBatch, trainPoints: s.betaTrainPoints, evalPoints: s.betaEvalPoints, rng: rng.derive("beta"))
    out[FactorVAEExperiment.mig.key] = mutualInformationGap(model, samples: s.migSamples, bins: s.migBins, rng: rng.derive("mig")).mig
    return out
}

extension Array {
    func chunked(_ size: Int) -> [[Element]] { stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) } }
}

/// Points (arm, reconstruction NLL, FactorVAE metric) of one run, drawn as an SVG scatter.
final class TradeoffPoints {
    var points: [(name: String, x: Double, y: Double)] = []
    func add(_ name: String, x: Double, y: Double) { points.removeAll { $0.name == name }; points.append((name, x, y)) }

    func svg(title: String) -> String {
        let w = 640.0, h = 420.0, m = 64.0
        let shown = points.filter { $0.x.isFinite && $0.y.isFinite }
        let xt = niceTicks(shown.map(\.x).min() ?? 0, shown.map(\.x).max() ?? 1), yt = niceTicks(shown.map(\.y).min() ?? 0, shown.map(\.y).max() ?? 1)
        func px(_ v: Double) -> Double { m + (v - xt.first!) / Swift.max(xt.last! - xt.first!, 1e-12) * (w - 2 * m) }
        func py(_ v: Double) -> Double { h - m - (v - yt.first!) / Swift.max(yt.last! - yt.first!, 1e-12) * (h - 2 * m) }
        var s = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">",
                 "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>", "<text x=\"\(m)\" y=\"24\" font-size=\"14\">\(title)</text>",
                 "<rect x=\"\(m)\" y=\"\(m)\" width=\"\(w - 2 * m)\" height=\"\(h - 2 * m)\" fill=\"none\" stroke=\"#999\"/>",
                 "<text x=\"\(w / 2)\" y=\"\(h - 16)\" text-anchor=\"middle\">reconstruction NLL on held-out images (nats/image; lower is better)</text>",
                 "<text x=\"16\" y=\"\(h / 2)\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(h / 2))\">FactorVAE metric (paper mode)</text>"]
        for v in xt { s.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\">%@</text>", px(v), h - m + 14, String(format: "%g", v))) }
        for v in yt { s.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"10\">%@</text>", m - 4, py(v) + 4, String(format: "%g", v))) }
        for p in shown {
            let color = p.name.hasPrefix("gamma") ? "#d62728" : "#1f77b4"
            s.append(String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%@\"/>", px(p.x), py(p.y), color))
            s.append(String(format: "<text x=\"%.1f\" y=\"%.1f\">%@</text>", px(p.x) + 8, py(p.y) + 4, p.name))
        }
        s.append("</svg>")
        return s.joined(separator: "\n") + "\n"
    }
}
