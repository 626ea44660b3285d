import Engine
import Foundation

/// PyTorch's default initializations.
public enum Initialization {
    /// `kaiming_uniform_(a=√5)` as nn.Linear / nn.Conv2d use it: U(−b, b), b = 1/√fanIn.
    public static func defaultWeight(_ shape: [Int], fanIn: Int, rng: inout RNG) -> Tensor {
        let bound = 1 / Float(max(fanIn, 1)).squareRoot()
        return Tensor.uniform(shape, low: -bound, high: bound, rng: &rng, requiresGrad: true)
    }

    /// Bias: U(−1/√fanIn, 1/√fanIn).
    public static func defaultBias(_ count: Int, fanIn: Int, rng: inout RNG) -> Tensor {
        defaultWeight([count], fanIn: fanIn, rng: &rng)
    }
}
