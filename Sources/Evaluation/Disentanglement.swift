import Engine
import Foundation

/// A ground-truth factor space (dSprites: sizes [1, 3, 6, 40, 32, 32]) and the encoder under
/// test: `encode` maps factor-class vectors to latent means (rendering included).
public struct FactorModel {
    public let sizes: [Int]
    /// The factors that vary and are scored (dSprites: 1…5; colour is constant).
    public let factors: [Int]
    public let encode: ([[Int]]) -> [[Float]]

    public init(sizes: [Int], factors: [Int], encode: @escaping ([[Int]]) -> [[Float]]) {
        (self.sizes, self.factors, self.encode) = (sizes, factors, encode)
    }

    func sample(_ count: Int, _ rng: inout RNG) -> [[Int]] {
        (0..<count).map { _ in sizes.map { rng.int(below: $0) } }
    }
}

func columnVariances(_ codes: [[Float]], ddof: Int = 1) -> [Double] {
    let n = codes.count, d = codes.first?.count ?? 0
    var mean = [Double](repeating: 0, count: d), v = [Double](repeating: 0, count: d)
    for c in codes { for j in 0..<d { mean[j] += Double(c[j]) } }
    for j in 0..<d { mean[j] /= Double(n) }
    for c in codes { for j in 0..<d { let t = Double(c[j]) - mean[j]; v[j] += t * t } }
    return v.map { $0 / Double(Swift.max(n - ddof, 1)) }
}

public struct FactorVAEScore: Codable, Equatable {
    public let score: Double, trainAccuracy: Double
    public let keptDimensions: [Int]
}

/// The FactorVAE disentanglement metric (Kim & Mnih 2018; disentanglement_lib's
/// factor_vae.py): per-dimension scale from `globalSamples` codes, collapsed dimensions
/// (std < `pruneThreshold`) pruned, each vote fixes one factor across `batch` samples and
/// picks the dimension of least normalized variance; a majority-vote classifier is fitted
/// on `trainVotes` votes and scored on `evalVotes` fresh ones.
public func factorVAEScore(_ model: FactorModel, batch: Int = 64, trainVotes: Int = 10_000, evalVotes: Int = 5_000,
                           globalSamples: Int = 10_000, pruneThreshold: Double = 0.05, rng: RNG) -> FactorVAEScore {
    var g = rng.derive("global")
    let scale = columnVariances(model.encode(model.sample(globalSamples, &g))).map { $0.squareRoot() }
    let kept = scale.indices.filter { scale[$0] >= pruneThreshold }
    guard !kept.isEmpty else { return FactorVAEScore(score: 0, trainAccuracy: 0, keptDimensions: []) }
    func votes(_ count: Int, _ r: inout RNG) -> [(dim: Int, factor: Int)] {
        (0..<count).map { _ in
            let k = model.factors[r.int(below: model.factors.count)]
            var f = model.sample(batch, &r)
            let fixed = r.int(below: model.sizes[k])
            for i in f.indices { f[i][k] = fixed }
            let v = columnVariances(model.encode(f).map { code in code.indices.map { Float(Double(code[$0]) / Swift.max(scale[$0], 1e-12)) } })
            let j = kept.min { v[$0] != v[$1] ? v[$0] < v[$1] : $0 < $1 }!
            return (j, k)
        }
    }
    var trainRNG = rng.derive("train"), evalRNG = rng.derive("eval")
    var table = [[Int]](repeating: [Int](repeating: 0, count: model.sizes.count), count: scale.count)
    for (j, k) in votes(trainVotes, &trainRNG) { table[j][k] += 1 }
    let classifier = table.map { row in row.indices.max { row[$0] != row[$1] ? row[$0] < row[$1] : $0 > $1 }! }
    let trainAccuracy = Double(table.reduce(0) { $0 + ($1.max() ?? 0) }) / Double(trainVotes)
    let correct = votes(evalVotes, &evalRNG).filter { classifier[$0.dim] == $0.factor }.count
    return FactorVAEScore(score: Double(correct) / Double(evalVotes), trainAccuracy: trainAccuracy, keptDimensions: kept)
}

/// The β-VAE metric (Higgins et al. 2017): the mean |μ(x₁) − μ(x₂)| over `batch` pairs that
/// share one factor is the input of a linear classifier predicting that factor; accuracy on
/// `evalPoints` fresh points.
public func betaVAEScore(_ model: FactorModel, batch: Int = 64, trainPoints: Int = 10_000, evalPoints: Int = 5_000, rng: RNG) throws -> Double {
    func points(_ count: Int, _ r: inout RNG) -> Features {
        var values: [Float] = [], labels: [Int] = []
        var d = 0
        for _ in 0..<count {
            let t = r.int(below: model.factors.count), k = model.factors[t]
            let a = model.sample(batch, &r)
            var b = model.sample(batch, &r)
            for i in b.indices { b[i][k] = a[i][k] }
            let za = model.encode(a), zb = model.encode(b)
            d = za[0].count
            values += (0..<d).map { j in Float(zip(za, zb).reduce(0.0) { $0 + Double(Swift.abs($1.0[j] - $1.1[j])) } / Double(batch)) }
            labels.append(t)
        }
        return Features(values: values, count: count, dimension: d, labels: labels)
    }
    var tr = rng.derive("train"), ev = rng.derive("eval")
    var config = LinearProbeConfig()
    config.epochs = 100
    config.batchSize = 256
    config.weightDecay = 1e-4
    return try linearProbe(train: points(trainPoints, &tr), test: points(evalPoints, &ev), classes: model.factors.count, config: config).top1
}

public struct MIGResult: Codable, Equatable {
    public let mig: Double
    /// Per scored factor: the normalized gap.
    public let perFactor: [Double]
}

/// Mutual information gap (Chen et al. 2018) with disentanglement_lib's estimator: latent
/// means histogram-discretized into `bins` equal-width bins, discrete MI with each factor,
/// normalized by the factor's entropy.
public func mutualInformationGap(_ model: FactorModel, samples: Int = 10_000, bins: Int = 20, rng: RNG) -> MIGResult {
    var r = rng
    let factors = model.sample(samples, &r)
    let codes = model.encode(factors)
    let d = codes[0].count
    let discrete: [[Int]] = (0..<d).map { j in
        let col = codes.map { $0[j] }
        let lo = col.min()!, hi = col.max()!
        let width = (hi - lo) / Float(bins)
        return col.map { width > 0 ? Swift.min(Int(($0 - lo) / width), bins - 1) : 0 }
    }
    var gaps: [Double] = []
    for k in model.factors {
        let v = factors.map { $0[k] }
        let h = entropy(contingency(v, v).map { $0.reduce(0, +) }, samples)
        let mis = discrete.map { mutualInformation(contingency($0, v), samples) }.sorted(by: >)
        gaps.append(h > 0 ? (mis[0] - (mis.count > 1 ? mis[1] : 0)) / h : 0)
    }
    return MIGResult(mig: gaps.reduce(0, +) / Double(gaps.count), perFactor: gaps)
}
