import Datasets
import Engine
import Evaluation
import Foundation
import Harness
import NN

/// SimSiam's networks (ssl-methods.md §6.2, 2-layer CIFAR-style projector): backbone f;
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

/// The two-view recipe on grayscale or RGB images (ssl-methods.md §0.2 / §6.3, MoCo v2
/// without blur): saturation, hue and grayscale are no-ops on one channel.
public struct ViewRecipe: Codable, Equatable, Sendable {
    /// RandomResizedCrop area range (aspect ratio 3/4–4/3), output the image's size.
    public var cropScale: [Float]
    public var flip: Float
    /// Brightness, contrast, saturation, hue.
    public var jitter: [Float]
    public var jitterP: Float
    public var grayscaleP: Float

    public func augmentation(size: Int, mean: Float, std: Float) throws -> Augmentation {
        guard cropScale.count == 2, cropScale[0] > 0, cropScale[0] <= cropScale[1], cropScale[1] <= 1 else {
            throw RunError("config.augmentation.crop_scale: expected [low, high] with 0 < low ≤ high ≤ 1, got \(cropScale)")
        }
        guard jitter.count == 4, jitter.allSatisfy({ $0 >= 0 }) else {
            throw RunError("config.augmentation.jitter: expected [brightness, contrast, saturation, hue] ≥ 0, got \(jitter)")
        }
        for (k, p) in [("flip", flip), ("jitter_p", jitterP), ("grayscale_p", grayscaleP)] where !(0...1).contains(p) {
            throw RunError("config.augmentation.\(k): expected a probability in [0, 1], got \(p)")
        }
        return Augmentation([.randomResizedCrop(size: size, scale: cropScale[0]...cropScale[1], ratio: 0.75...(4.0 / 3)),
                             .horizontalFlip(p: flip),
                             .colorJitter(brightness: jitter[0], contrast: jitter[1], saturation: jitter[2], hue: jitter[3], p: jitterP),
                             .grayscale(p: grayscaleP)],
                            mean: [mean], std: [std])
    }
}

/// Mean and standard deviation of all training pixels in [0, 1] (one value for every
/// channel): Fashion-MNIST gives 0.2860 and 0.3530, the spec's normalization.
public func pixelStatistics(_ set: ImageSet) -> (mean: Float, std: Float) {
    var s = 0.0, s2 = 0.0
    for v in set.pixels { let x = Double(v) / 255; s += x; s2 += x * x }
    let n = Double(max(set.pixels.count, 1)), mean = s / n
    return (Float(mean), Float(max(s2 / n - mean * mean, 1e-12).squareRoot()))
}
