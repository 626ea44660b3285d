import Datasets
import Engine
import Evaluation
import Foundation
import Harness
import NN

/// SimSiam's networks (docs/papers/simsiam.md; the 2-layer CIFAR-style projector): backbone f;
/// projector Linear(h, d, no bias) → BN → ReLU → Linear(d, d, no bias) → BN without affine
/// (BN on every layer including the output); bottleneck predictor Linear(d, d/4, no bias)
/// → BN → ReLU → Linear(d/4, d), nothing on its output. Keys as PyTorch's: backbone.…,
/// projector.…, predictor.… (no predictor for the "predictor removed" arm).
public final class SimSiamNetwork: Module {
    public let backbone: ConvNet4
    public let projector: Sequential
    public let predictor: Sequential?

    public init(width: ConvNet4.Width, inputChannels: Int, dimension d: Int, predictorHidden: Int, withPredictor: Bool, rng: inout RNG) {
        backbone = ConvNet4(width: width, inputChannels: inputChannels, rng: &rng)
        let h = backbone.featureCount
        projector = Sequential([Linear(h, d, bias: false, rng: &rng), BatchNorm(d), ReLU(),
                                Linear(d, d, bias: false, rng: &rng), BatchNorm(d, affine: false)])
        predictor = withPredictor
            ? Sequential([Linear(d, predictorHidden, bias: false, rng: &rng), BatchNorm(predictorHidden), ReLU(), Linear(predictorHidden, d, rng: &rng)])
            : nil
    }

    /// z = g(f(x)) and p = h(z) (p = z without a predictor).
    public func callAsFunction(_ x: Tensor) -> (z: Tensor, p: Tensor) {
        let z = projector(backbone(x))
        return (z, predictor.map { $0(z) } ?? z)
    }
}

/// D(p, z) = −(1/B) Σᵢ (pᵢ/‖pᵢ‖)·(zᵢ/‖zᵢ‖).
public func negativeCosine(_ p: Tensor, _ z: Tensor) -> Tensor {
    (p.l2Normalized(axis: 1) * z.l2Normalized(axis: 1)).sum(axis: 1).mean() * -1
}

/// L = ½ D(p₁, sg(z₂)) + ½ D(p₂, sg(z₁)); without the stop-gradient the targets z pass
/// gradient too (the C-SS1 ablation).
public func simsiamLoss(p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor, stopGradient: Bool = true) -> Tensor {
    let t1 = stopGradient ? z1.detached() : z1, t2 = stopGradient ? z2.detached() : z2
    return (negativeCosine(p1, t2) + negativeCosine(p2, t1)) * 0.5
}
