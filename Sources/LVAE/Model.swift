import Engine
import Foundation
import NN

/// A deterministic block of the Ladder VAE paper's MLPs: Linear → [BatchNorm] → LeakyReLU(0.1).
func block(_ inputs: Int, _ outputs: Int, batchNorm: Bool, rng: inout RNG) -> Sequential {
    var layers: [any UnaryLayer] = [Linear(inputs, outputs, bias: !batchNorm, rng: &rng)]
    if batchNorm { layers.append(BatchNorm(outputs)) }
    layers.append(LeakyReLU(0.1))
    return Sequential(layers)
}

/// A diagonal Gaussian from a deterministic block: a linear mean and a variance
/// softplus(·) + 10⁻⁵ whose shift starts at 1 (the official code's initialisation), each
/// with BatchNorm before its nonlinearity when `batchNorm` (keys `mean.…`, `variance.…`).
public final class GaussianHead: Module {
    public let mean: Sequential, variance: Sequential

    public init(_ inputs: Int, _ outputs: Int, batchNorm: Bool, rng: inout RNG) {
        func affine(_ rng: inout RNG) -> Sequential {
            Sequential(batchNorm ? [Linear(inputs, outputs, bias: false, rng: &rng), BatchNorm(outputs)] : [Linear(inputs, outputs, rng: &rng)])
        }
        mean = affine(&rng)
        variance = affine(&rng)
        let shift = batchNorm ? (variance.layers[1] as! BatchNorm).bias! : (variance.layers[0] as! Linear).bias!
        shift.assign(Tensor.ones(shift.shape))
    }

    public func callAsFunction(_ h: Tensor) -> Gaussian { Gaussian(mean: mean(h), variance: variance(h).softplus() + 1e-5) }
}

/// N(mean, diag variance), rows of a batch.
public struct Gaussian {
    public let mean: Tensor, variance: Tensor
    public init(mean: Tensor, variance: Tensor) { (self.mean, self.variance) = (mean, variance) }

    /// mean + √variance ⊙ ε, ε ~ N(0, I) from `rng` (reparameterized).
    public func sample(rng: inout RNG) -> Tensor { mean + variance.sqrt() * Tensor.randn(mean.shape, rng: &rng) }

    /// log N(z; mean, variance) per row, summed over dimensions: [N].
    public func logDensity(_ z: Tensor) -> Tensor {
        let d = z - mean
        return (d * d / variance + variance.log()).sum(axis: 1).affine(-0.5, -0.5 * Float(z.shape[1]) * Float(Foundation.log(2 * Double.pi)))
    }

    /// The standard normal prior of the top layer.
    public static func standard(like z: Tensor) -> Gaussian { Gaussian(mean: Tensor.zeros(z.shape), variance: Tensor.ones(z.shape)) }
}

/// The LVAE's precision-weighted merge of the bottom-up estimate (μ̂, σ̂²) and the top-down
/// term (μ_p, σ_p²): σ² = 1 / (σ̂⁻² + σ_p⁻²), μ = (μ̂ σ̂⁻² + μ_p σ_p⁻²) σ², the product of
/// the two Gaussians, normalized.
public func precisionWeightedMerge(_ a: Gaussian, _ b: Gaussian) -> Gaussian {
    let pa = 1 / a.variance, pb = 1 / b.variance
    let v = 1 / (pa + pb)
    return Gaussian(mean: (a.mean * pa + b.mean * pb) * v, variance: v)
}

/// log p(x | z) of a Bernoulli decoder from logits l, per row: Σ x l − softplus(l).
public func bernoulliLogLikelihood(logits l: Tensor, targets x: Tensor) -> Tensor { (l * x - l.softplus()).sum(axis: 1) }

/// The deterministic warm-up: β rises linearly from 0 at step 0 to 1 at `warmupSteps`, then stays 1.
public func warmupWeight(step: Int, warmupSteps: Int) -> Float {
    warmupSteps <= 0 ? 1 : Swift.min(1, Float(step) / Float(warmupSteps))
}

/// One stochastic pass through a hierarchical VAE, per row of the batch: log p(x|z₁), and for
/// every stochastic layer i (1 = bottom) log p(z_i | z_{i+1}) and log q(z_i | ·) at the drawn
/// samples, and q's mean (for active units).
public struct Pass {
    /// The decoder's logits of p(x | z₁) [N, inputs].
    public let logits: Tensor
    public let logLikelihood: Tensor
    public let logPrior: [Tensor], logPosterior: [Tensor], posteriorMeans: [Tensor]
    /// log p(x, z) − log q(z | x) per row: one importance weight.
    public var logWeight: Tensor { zip(logPrior, logPosterior).reduce(logLikelihood) { $0 + $1.0 - $1.1 } }
    /// The single-sample KL estimate log q − log p of layer i, mean over the batch.
    public func kl(_ i: Int) -> Tensor { (logPosterior[i] - logPrior[i]).mean() }
}

/// The generative model shared by every variant, p(z_L) = N(0, I), p(z_i | z_{i+1}) =
/// N(μ_p,i(z_{i+1}), σ²_p,i(z_{i+1})), p(x | z₁) Bernoulli, with either inference model:
/// - the VAE's bottom-up q(z₁|x) q(z₂|z₁)…, each block fed the sample of the layer below;
/// - the LVAE's: a deterministic bottom-up pass d_i = block_i(d_{i−1}) giving (μ̂_i, σ̂²_i), then
///   top-down sampling, q(z_L|x) = N(μ̂_L, σ̂²_L) and q(z_i|z_{i+1}, x) the precision-weighted
///   merge of (μ̂_i, σ̂²_i) with the top-down term, which is the generative p(z_i|z_{i+1})
///   itself (`sharedTopDown`, the paper) or a separate network of the same shape (the official code's default).
/// Block i of the inference side has width `widths[i]`; the generative block that leaves
/// layer i has the same width (the mirror image). Keys: `up.i`, `up_heads.i`, `down.i`,
/// `down_heads.i`, `decoder`, `top_down.i`, `top_down_heads.i`.
public final class HierarchicalVAE: Module {
    public let ladder: Bool, sharedTopDown: Bool
    public let latents: [Int]
    let up: [Sequential], upHeads: [GaussianHead]
    let down: [Sequential], downHeads: [GaussianHead]
    let topDown: [Sequential], topDownHeads: [GaussianHead]
    let decoder: Sequential

    public init(inputs: Int, latents: [Int], widths: [Int], batchNorm: Bool, ladder: Bool, sharedTopDown: Bool = true, rng: inout RNG) {
        precondition(!latents.isEmpty && latents.count == widths.count, "one width per stochastic layer")
        (self.latents, self.ladder, self.sharedTopDown) = (latents, ladder, sharedTopDown)
        let L = latents.count
        up = (0..<L).map { i in block(i == 0 ? inputs : (ladder ? widths[i - 1] : latents[i - 1]), widths[i], batchNorm: batchNorm, rng: &rng) }
        upHeads = (0..<L).map { GaussianHead(widths[$0], latents[$0], batchNorm: batchNorm, rng: &rng) }
        // down[i]: z_{i+2} → the parameters of p(z_{i+1} | z_{i+2}) (0-based: layer i from layer i + 1).
        down = (0..<(L - 1)).map { block(latents[$0 + 1], widths[$0 + 1], batchNorm: batchNorm, rng: &rng) }
        downHeads = (0..<(L - 1)).map { GaussianHead(widths[$0 + 1], latents[$0], batchNorm: batchNorm, rng: &rng) }
        let separate = ladder && !sharedTopDown
        topDown = separate ? (0..<(L - 1)).map { block(latents[$0 + 1], widths[$0 + 1], batchNorm: batchNorm, rng: &rng) } : []
        topDownHeads = separate ? (0..<(L - 1)).map { GaussianHead(widths[$0 + 1], latents[$0], batchNorm: batchNorm, rng: &rng) } : []
        decoder = Sequential([block(latents[0], widths[0], batchNorm: batchNorm, rng: &rng), Linear(widths[0], inputs, rng: &rng)])
    }

    /// p(z_i | z_{i+1}) (0-based i < L − 1).
    func prior(_ i: Int, given above: Tensor) -> Gaussian { downHeads[i](down[i](above)) }

    /// One pass on a batch of binary images x [N, inputs], drawing every sample from `rng`.
    public func pass(_ x: Tensor, rng: inout RNG) -> Pass {
        let L = latents.count
        var z = [Tensor?](repeating: nil, count: L), q = [Gaussian?](repeating: nil, count: L)
        var logP = [Tensor?](repeating: nil, count: L), logQ = [Tensor?](repeating: nil, count: L)
        func draw(_ i: Int, _ g: Gaussian) { let s = g.sample(rng: &rng); (z[i], q[i], logQ[i]) = (s, g, g.logDensity(s)) }
        if ladder {
            var h = x, estimates: [Gaussian] = []
            for i in 0..<L { h = up[i](h); estimates.append(upHeads[i](h)) }
            draw(L - 1, estimates[L - 1])
            for i in stride(from: L - 2, through: 0, by: -1) {
                let p = prior(i, given: z[i + 1]!)
                let term = sharedTopDown ? p : topDownHeads[i](topDown[i](z[i + 1]!))
                draw(i, precisionWeightedMerge(estimates[i], term))
                logP[i] = p.logDensity(z[i]!)
            }
        } else {
            var h = x
            for i in 0..<L { draw(i, upHeads[i](up[i](h))); h = z[i]! }
            for i in 0..<(L - 1) { logP[i] = prior(i, given: z[i + 1]!).logDensity(z[i]!) }
        }
        logP[L - 1] = Gaussian.standard(like: z[L - 1]!).logDensity(z[L - 1]!)
        let logits = decoder(z[0]!)
        return Pass(logits: logits, logLikelihood: bernoulliLogLikelihood(logits: logits, targets: x),
                    logPrior: logP.map { $0! }, logPosterior: logQ.map { $0! }, posteriorMeans: q.map { $0!.mean })
    }

    /// n draws from the generative model, z_L ~ N(0, I), z_i ~ p(z_i | z_{i+1}): the Bernoulli
    /// means sigmoid(decoder(z₁)) [n, inputs].
    public func generate(_ n: Int, rng: inout RNG) -> Tensor {
        var z = Tensor.randn([n, latents[latents.count - 1]], rng: &rng)
        for i in stride(from: latents.count - 2, through: 0, by: -1) { z = prior(i, given: z).sample(rng: &rng) }
        return decoder(z).sigmoid()
    }

    /// The negative ELBO with the KL terms weighted by β (the warm-up), nats per image.
    public func loss(_ p: Pass, beta: Float) -> Tensor {
        let kl = zip(p.logPosterior, p.logPrior).map { $0 - $1 }.reduce(Tensor.zeros([p.logLikelihood.shape[0]]), +)
        return (kl * beta - p.logLikelihood).mean()
    }
}

/// Clips gradients as the official code does: to total L2 norm `maxNorm`, then each element
/// to [−maxValue, maxValue]. Returns the norm before clipping.
@discardableResult
public func clipGradients(_ parameters: [Tensor], maxNorm: Float, maxValue: Float) -> Double {
    let grads = parameters.compactMap(\.grad)
    var total = 0.0
    for g in grads { total += g.sumOfSquares() }
    let norm = total.squareRoot(), scale = norm > Double(maxNorm) ? Float(Double(maxNorm) / norm) : 1
    for g in grads {
        let p = g.pointer
        for j in 0..<g.count { p[j] = Swift.max(-maxValue, Swift.min(maxValue, p[j] * scale)) }
    }
    return norm
}
