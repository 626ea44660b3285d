import Datasets
import Engine
import Evaluation
import Foundation
import Harness
import NN

/// The Ladder VAE (Sønderby et al., NeurIPS 2016) against VAEs with the same generative
/// model, on Fashion-MNIST binarised afresh every epoch (docs/papers/lvae.md). Every arm
/// trains for the same steps with Adam and the official code's gradient clipping; the KL
/// terms are weighted by the warm-up β where the arm has one. Scores on the test set, whose
/// binarisation is drawn once and shared by every arm and seed: the ELBO, the importance-
/// weighted bound with K samples, its gap to the ELBO on the same images, and the active
/// units of every stochastic layer.
public final class LVAEExperiment: Experiment {
    public struct Scores: Codable {
        /// Test images of the ELBO (the first n of the test split).
        public var testImages: Int
        /// Test images (the first n) and importance samples per image of the IWAE bound; the
        /// ELBO beside it and the active units use the same samples.
        public var iwImages: Int, iwSamples: Int
        /// Training images, binarised once, whose pass sets BatchNorm's population statistics.
        public var bnImages: Int
    }

    public struct Config: Codable {
        /// Stochastic layers, bottom to top, and the width of each layer's deterministic block.
        public var latents: [Int], widths: [Int]
        public var batchNorm: Bool, ladder: Bool
        /// The LVAE's top-down term: the generative p(z_i | z_{i+1}) (true) or a separate network.
        public var sharedTopDown: Bool
        /// β of the KL terms rises linearly per step from 0 to 1 over this many epochs (0: β = 1).
        public var warmupEpochs: Int
        /// The first n images of the training split.
        public var trainImages: Int
        public var batchSize: Int, epochs: Int
        public var learningRate: Float, adamEps: Float
        /// Gradients clipped to this total norm, then each element to ± clip_value.
        public var clipNorm: Float, clipValue: Float
        public var scores: Scores
    }

    public static let maxLayers = 5
    public static let trainELBO = Metric("train_elbo", "ELBO (β = 1) on the training batches, mean over the epoch", unit: "nats/image")
    public static let beta = Metric("beta", "warm-up weight of the KL terms at the epoch's last step", unit: "0–1")
    public static let testELBO = Metric("test_elbo", "ELBO on the test images, one sample per image", unit: "nats/image")
    public static let testLL = Metric("test_ll_iw", "log-likelihood bound by importance weighting (K = iw_samples) on the first iw_images test images", unit: "nats/image")
    public static let gap = Metric("iw_gap", "test_ll_iw minus the ELBO of the same images and samples", unit: "nats/image")
    public static let activeUpper = Metric("active_units_upper", "active units of layers 2 … L together", unit: "count")
    public static func kl(_ i: Int) -> Metric {
        Metric("kl_\(i)", "KL of layer \(i) (1 = bottom) on the training batches, log q − log p at the drawn samples, mean over the epoch", unit: "nats/image")
    }
    public static func active(_ i: Int) -> Metric {
        Metric("active_units_\(i)", "units of layer \(i) whose posterior mean varies over the test images by more than 0.01", unit: "count")
    }
    static let monitored: [Metric] = [.loss, trainELBO] + (1...maxLayers).map(kl) + [beta]
    public static let metrics: [Metric] = monitored + [testELBO, testLL, gap] + (1...maxLayers).map(active) + [activeUpper]
    public static let independentPixels = "independent pixels"
    public static let referenceNames = [independentPixels]

    let config: Config
    let data: BinarisedFashion
    let vae: HierarchicalVAE
    let adam: Adam
    let run: RNG
    let context: RunContext

    public init(config c: Config, context: RunContext) throws {
        try require("config.latents", (1...Self.maxLayers).contains(c.latents.count), "1 to \(Self.maxLayers) stochastic layers, got \(c.latents.count)")
        try require("config.widths", c.widths.count == c.latents.count, "one width per stochastic layer (\(c.latents.count)), got \(c.widths.count)")
        for (i, v) in c.latents.enumerated() { try require("config.latents[\(i)]", v, atLeast: 1) }
        for (i, v) in c.widths.enumerated() { try require("config.widths[\(i)]", v, atLeast: 1) }
        try require("config.batch_size", c.batchSize, atLeast: 2)
        try require("config.epochs", c.epochs, atLeast: 1)
        try require("config.warmup_epochs", c.warmupEpochs, atLeast: 0)
        try require("config.learning_rate", c.learningRate, above: 0)
        try require("config.adam_eps", c.adamEps, above: 0)
        try require("config.clip_norm", c.clipNorm, above: 0)
        try require("config.clip_value", c.clipValue, above: 0)
        config = c
        self.context = context
        data = try BinarisedFashion(context.dataset, config: c)
        run = RNG(seed: context.seed)
        var initRNG = run.derive("init")
        vae = HierarchicalVAE(inputs: data.inputs, latents: c.latents, widths: c.widths, batchNorm: c.batchNorm, ladder: c.ladder,
                              sharedTopDown: c.sharedTopDown, rng: &initRNG)
        adam = Adam(groups: vae.parameterGroups(learningRate: c.learningRate, weightDecay: 0), eps: c.adamEps)
    }

    public var epochs: Int { config.epochs }
    public var stepsPerEpoch: Int { config.trainImages / config.batchSize }
    public var imagesPerStep: Int { config.batchSize }
    public var model: Module { vae }
    public var optimizer: Optimizer { adam }

    public func trainEpoch(_ epoch: Int, step: (Double) throws -> Void) throws -> [String: Double] {
        vae.train()
        let b = config.batchSize, layers = config.latents.count
        var shuffle = run.derive("order").derive(UInt64(epoch))
        let order = shuffle.permutation(config.trainImages)
        var sums = [Double](repeating: 0, count: 2 + layers), beta: Float = 1
        for s in 0..<stepsPerEpoch {
            let t = epoch * stepsPerEpoch + s
            var r = run.derive("steps").derive(UInt64(t))
            let x = data.binarise(Array(order[(s * b)..<((s + 1) * b)]), rng: &r)   // a fresh binarisation every epoch
            beta = warmupWeight(step: t, warmupSteps: config.warmupEpochs * stepsPerEpoch)
            vae.zeroGrad()
            let p = vae.pass(x, rng: &r)
            let loss = vae.loss(p, beta: beta)
            loss.backward()
            clipGradients(vae.trainableParameters(), maxNorm: config.clipNorm, maxValue: config.clipValue)
            adam.step()
            withoutGradients {
                sums[0] += Double(loss.item); sums[1] += Double(p.logWeight.mean().item)
                for i in 0..<layers { sums[2 + i] += Double(p.kl(i).item) }
            }
            try step(Double(loss.item))
        }
        let n = Double(stepsPerEpoch)
        var out = [Metric.loss.key: sums[0] / n, Self.trainELBO.key: sums[1] / n, Self.beta.key: Double(beta)]
        for i in 0..<layers { out[Self.kl(i + 1).key] = sums[2 + i] / n }
        return out
    }

    public func evaluate(epoch: Int, final: Bool) throws -> [String: Double] {
        guard final else { return [:] }
        if config.batchNorm {   // population statistics, as the official code's pass over the training set
            var r = RNG(seed: context.seed).derive("batchnorm")
            let batches = stride(from: 0, to: config.scores.bnImages, by: 1000).map { data.binarise(Array($0..<min($0 + 1000, config.scores.bnImages)), rng: &r) }
            vae.recomputeBatchNormStatistics(batches) { vae.pass($0, rng: &r).logLikelihood }
        }
        vae.eval()
        let out = withoutGradients { scores() }
        try pictures()
        return out
    }

    /// The last epoch's training monitors (loss, ELBO, KL per layer, β) beside the test scores.
    public func summary(of history: [[String: Double]]) -> [String: Double] {
        history.last?.filter { k, _ in Self.monitored.contains { $0.key == k } } ?? [:]
    }

    /// The test ELBO; the IWAE bound, the ELBO of the same samples and the active units on the
    /// first iw_images test images (E_q[u | x] is the mean of q's mean over the K samples).
    func scores() -> [String: Double] {
        let s = config.scores, k = s.iwSamples, layers = config.latents.count
        var r = RNG(seed: context.seed).derive("test")
        var elboSum = 0.0
        for start in stride(from: 0, to: s.testImages, by: 1000) {
            elboSum += vae.pass(data.test(start..<min(start + 1000, s.testImages)), rng: &r).logWeight.array.reduce(0.0) { $0 + Double($1) }
        }
        var iw = 0.0, sameELBO = 0.0
        var means = [[[Double]]](repeating: [], count: layers)
        let per = Swift.max(1, 2000 / k)
        for start in stride(from: 0, to: s.iwImages, by: per) {
            let images = start..<min(start + per, s.iwImages)
            let p = vae.pass(data.test(images, repeating: k), rng: &r)
            let w = p.logWeight.array.map(Double.init)
            for j in 0..<images.count {
                let wj = Array(w[(j * k)..<((j + 1) * k)])
                iw += iwaeBound(logWeights: wj); sameELBO += elbo(logWeights: wj)
            }
            for i in 0..<layers {
                let d = config.latents[i], m = p.posteriorMeans[i].array
                for j in 0..<images.count {
                    var row = [Double](repeating: 0, count: d)
                    for q in 0..<k { for u in 0..<d { row[u] += Double(m[(j * k + q) * d + u]) } }
                    means[i].append(row.map { $0 / Double(k) })
                }
            }
        }
        let n = Double(s.iwImages)
        var out = [Self.testELBO.key: elboSum / Double(s.testImages), Self.testLL.key: iw / n, Self.gap.key: (iw - sameELBO) / n]
        let counts = means.map { activeUnits(posteriorMeans: $0).count }
        for (i, c) in counts.enumerated() { out[Self.active(i + 1).key] = Double(c) }
        out[Self.activeUpper.key] = Double(counts.dropFirst().reduce(0, +))
        return out
    }

    /// 64 samples of the generative model, and 10 test images over their reconstructions (the
    /// Bernoulli means of one pass), as grey levels into the results folder.
    func pictures() throws {
        let h = data.height, w = data.width
        func gray(_ t: Tensor) -> [[UInt8]] { t.array.chunked(h * w).map { $0.map { UInt8(($0 * 255).rounded()) } } }
        var r = RNG(seed: context.seed).derive("pictures")
        let x = data.test(0..<10)
        let (samples, recon) = withoutGradients { (vae.generate(64, rng: &r), vae.pass(x, rng: &r).logits.sigmoid()) }
        try FileManager.default.createDirectory(atPath: context.output, withIntermediateDirectories: true)
        try writePNGGrid(gray(samples), rows: 8, columns: 8, height: h, width: w, scale: 2, to: "\(context.output)/\(context.arm)-samples.png")
        try writePNGGrid(gray(x) + gray(recon), rows: 2, columns: 10, height: h, width: w, scale: 2, to: "\(context.output)/\(context.arm)-reconstructions.png")
    }

    /// Every pixel an independent Bernoulli with the training images' mean intensity (smoothed,
    /// (Σ p + ½) / (n + 1)): an exact log-likelihood, the floor any latent-variable model should clear.
    public static func references(config c: Config, context: RunContext) throws -> [(name: String, metrics: [String: Double])] {
        let data = try BinarisedFashion(context.dataset, config: c)
        var p = [Double](repeating: 0.5, count: data.inputs)
        for i in 0..<c.trainImages { for j in 0..<data.inputs { p[j] += Double(data.train.pixels[i * data.inputs + j]) / 255 } }
        p = p.map { $0 / Double(c.trainImages + 1) }
        func ll(_ n: Int) -> Double {
            let x = data.test(0..<n).array
            return (0..<x.count).reduce(0.0) { $0 + (x[$1] == 1 ? Foundation.log(p[$1 % data.inputs]) : Foundation.log(1 - p[$1 % data.inputs])) } / Double(n)
        }
        context.log("reference: \(independentPixels)")
        return [(independentPixels, [testELBO.key: ll(c.scores.testImages), testLL.key: ll(c.scores.iwImages), gap.key: 0])]
    }

    struct ReferenceInputs: Encodable { let trainImages: Int, scores: Scores }
    public static func referenceInputs(config c: Config, context: RunContext) -> (any Encodable)? { ReferenceInputs(trainImages: c.trainImages, scores: c.scores) }
}

/// Fashion-MNIST (any grey-level images) for a Bernoulli likelihood: training batches
/// binarised afresh from each pixel's intensity (x = 1 with probability pixel / 255), and the
/// test images binarised once with a fixed seed, the same for every arm and seed.
public struct BinarisedFashion {
    public let train: ImageSet
    let testPixels: [Float]
    public let inputs: Int, height: Int, width: Int

    /// The first `testImages` of `test` binarised with the fixed seed.
    public init(train: ImageSet, test: ImageSet, testImages n: Int) {
        precondition(n <= test.count, "\(n) of \(test.count) test images")
        self.train = train
        (inputs, height, width) = (train.imageSize, train.height, train.width)
        var r = RNG(seed: 1602).derive("test-binarisation")
        testPixels = test.pixels[0..<(n * test.imageSize)].map { r.uniform() * 255 < Float($0) ? 1 : 0 }
    }

    init(_ path: String, config c: LVAEExperiment.Config) throws {
        let train = try DatasetFile.read(path, split: "train").set
        let test = try DatasetFile.read(path, split: "test").set
        try require("config.train_images", c.trainImages >= c.batchSize && c.trainImages <= train.count,
                    "between batch_size (\(c.batchSize)) and the \(train.count) training images of \(path), got \(c.trainImages)")
        let s = c.scores
        try require("config.scores.test_images", s.testImages >= 1 && s.testImages <= test.count,
                    "1 to the \(test.count) test images of \(path), got \(s.testImages)")
        try require("config.scores.iw_images", s.iwImages >= 2 && s.iwImages <= test.count,
                    "2 to the \(test.count) test images of \(path), got \(s.iwImages)")
        try require("config.scores.iw_samples", s.iwSamples, atLeast: 1)
        try require("config.scores.bn_images", s.bnImages >= 1 && s.bnImages <= train.count,
                    "1 to the \(train.count) training images of \(path), got \(s.bnImages)")
        self.init(train: train, test: test, testImages: Swift.max(s.testImages, s.iwImages))
    }

    /// The training images `indices`, each pixel drawn on with probability pixel / 255.
    public func binarise(_ indices: [Int], rng: inout RNG) -> Tensor {
        var v = [Float](repeating: 0, count: indices.count * inputs)
        for (row, i) in indices.enumerated() {
            for j in 0..<inputs where rng.uniform() * 255 < Float(train.pixels[i * inputs + j]) { v[row * inputs + j] = 1 }
        }
        return Tensor(v, shape: [indices.count, inputs])
    }

    /// The binarised test images `range`, each repeated `repeating` times in a row.
    public func test(_ range: Range<Int>, repeating k: Int = 1) -> Tensor {
        var v: [Float] = []
        v.reserveCapacity(range.count * k * inputs)
        for i in range { let row = testPixels[(i * inputs)..<((i + 1) * inputs)]; for _ in 0..<k { v += row } }
        return Tensor(v, shape: [range.count * k, inputs])
    }
}

extension Array {
    func chunked(_ size: Int) -> [[Element]] { stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) } }
}
