import Engine
import Foundation
import NN

/// A VAE with a diagonal Gaussian encoder q(z|x) = N(μ(x), diag e^{logvar(x)}), prior N(0, I)
/// and a Bernoulli decoder (logits). MLPs: inputs → hidden… → 2·latents (μ, logvar) and
/// latents → hidden reversed → inputs (keys `encoder.…`, `decoder.…`).
public final class VAE: Module {
    public let encoder: Sequential, decoder: Sequential
    public let latents: Int

    public init(inputs: Int, hidden: [Int], latents: Int, rng: inout RNG) {
        encoder = MLP([inputs] + hidden + [2 * latents], rng: &rng)
        decoder = MLP([latents] + hidden.reversed() + [inputs], rng: &rng)
        self.latents = latents
    }

    public func encode(_ x: Tensor) -> (mu: Tensor, logVar: Tensor) {
        let h = encoder(x)
        return (h.slice(axis: 1, 0..<latents), h.slice(axis: 1, latents..<(2 * latents)))
    }

    /// z = μ + e^{logvar/2} ⊙ ε, ε ~ N(0, I) from `rng` (reparameterized).
    public func sample(_ mu: Tensor, _ logVar: Tensor, rng: inout RNG) -> Tensor {
        mu + (logVar * 0.5).exp() * Tensor.randn(mu.shape, rng: &rng)
    }
}

/// The FactorVAE discriminator: latents → hidden… (LeakyReLU 0.2) → 2 logits
/// [from q(z), from the product of its marginals].
public func discriminator(latents: Int, hidden: [Int], rng: inout RNG) -> Sequential {
    var layers: [any UnaryLayer] = []
    for (a, b) in zip([latents] + hidden, hidden) { layers += [Linear(a, b, rng: &rng), LeakyReLU(0.2)] }
    layers.append(Linear(hidden.last ?? latents, 2, rng: &rng))
    return Sequential(layers)
}

/// −log p(x|z) of a Bernoulli decoder: sigmoid cross-entropy summed over pixels, mean over
/// the batch (nats per image).
public func bernoulliNLL(logits: Tensor, targets: Tensor) -> Tensor {
    binaryCrossEntropyWithLogits(logits, targets: targets, reduction: .sum) / Float(logits.shape[0])
}

/// KL(N(μ, e^{logvar}) ‖ N(0, I)) = ½ Σ_j (μ_j² + e^{logvar_j} − logvar_j − 1), summed over
/// dimensions, mean over the batch.
public func gaussianKLToPrior(_ mu: Tensor, _ logVar: Tensor) -> Tensor {
    (mu * mu + logVar.exp() - logVar).affine(0.5, -0.5).sum() / Float(mu.shape[0])
}

/// The density-ratio estimate of total correlation: the mean over the batch of
/// logit_q(z) − logit_q̄(z), which is log D/(1 − D) for a two-logit softmax D.
public func totalCorrelationEstimate(_ logits: Tensor) -> Tensor {
    (logits.slice(axis: 1, 0..<1) - logits.slice(axis: 1, 1..<2)).mean()
}

/// Samples of the product of marginals q̄(z) from samples of q(z) [B, d]: each column
/// permuted by its own random permutation of the rows (FactorVAE's Algorithm 1).
public func permuteDimensions(_ z: [Float], rows: Int, dimension d: Int, rng: inout RNG) -> [Float] {
    var out = [Float](repeating: 0, count: rows * d)
    for j in 0..<d {
        let p = rng.permutation(rows)
        for i in 0..<rows { out[i * d + j] = z[p[i] * d + j] }
    }
    return out
}

/// The discriminator's loss: cross-entropy with real samples of q(z) as class 0 and
/// dimension-permuted ones as class 1, the two halves weighted ½ each; and its accuracy.
public func discriminatorLoss(_ d: Sequential, real: Tensor, permuted: Tensor) -> (loss: Tensor, accuracy: Double) {
    let a = d(real), b = d(permuted), n = real.shape[0]
    let loss = (crossEntropy(a, labels: [Int](repeating: 0, count: n)) + crossEntropy(b, labels: [Int](repeating: 1, count: n))) * 0.5
    let av = a.array, bv = b.array
    let correct = (0..<n).filter { av[2 * $0] > av[2 * $0 + 1] }.count + (0..<n).filter { bv[2 * $0 + 1] > bv[2 * $0] }.count
    return (loss, Double(correct) / Double(2 * n))
}

/// One FactorVAE training step (the paper's Algorithm 2 as 1Konny's code runs it): the VAE
/// step on batch `x` (recon + β KL + γ TĈ, TĈ from the discriminator on its samples z), then
/// the discriminator step with those z (detached) as q(z) and the samples of batch `x2`,
/// encoded by the updated VAE, with their dimensions permuted as q̄(z). Returns the VAE's
/// loss and its terms, and the discriminator's accuracy on the step's two sets.
public func factorVAEStep(vae: VAE, discriminator critic: Sequential, optimizer: Optimizer, discriminatorOptimizer: Optimizer,
                          x: Tensor, x2: Tensor, beta: Float, gamma: Float, rng r: inout RNG)
    -> (loss: Double, nll: Double, kl: Double, tc: Double, accuracy: Double) {
    let (mu, logVar) = vae.encode(x)
    let z = vae.sample(mu, logVar, rng: &r)
    let nll = bernoulliNLL(logits: vae.decoder(z), targets: x), kl = gaussianKLToPrior(mu, logVar)
    let tc = totalCorrelationEstimate(critic(z))
    let loss = nll + kl * beta + tc * gamma
    vae.zeroGrad()
    loss.backward()
    optimizer.step()
    let (b, d) = (x2.shape[0], vae.latents)
    let z2 = withoutGradients { () -> Tensor in let (m, l) = vae.encode(x2); return vae.sample(m, l, rng: &r) }
    let permuted = Tensor(permuteDimensions(z2.array, rows: b, dimension: d, rng: &r), shape: [b, d])
    critic.zeroGrad()
    let (dLoss, accuracy) = discriminatorLoss(critic, real: z.detached(), permuted: permuted)
    dLoss.backward()
    discriminatorOptimizer.step()
    return (Double(loss.item), Double(nll.item), Double(kl.item), Double(tc.item), accuracy)
}
