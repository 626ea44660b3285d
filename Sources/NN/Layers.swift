import Engine
import Foundation

/// `y = x·Wᵀ + b`, W [out, in] (PyTorch's nn.Linear, same initialization).
public final class Linear: Module, UnaryLayer {
    public let weight: Tensor
    public let bias: Tensor?

    public init(_ inputs: Int, _ outputs: Int, bias: Bool = true, rng: inout RNG) {
        weight = Initialization.defaultWeight([outputs, inputs], fanIn: inputs, rng: &rng)
        self.bias = bias ? Initialization.defaultBias(outputs, fanIn: inputs, rng: &rng) : nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { linear(x, weight: weight, bias: bias) }
}

/// 2-D convolution, weight [out, in, k, k] (PyTorch's nn.Conv2d, same initialization).
public final class Conv2d: Module, UnaryLayer {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Int, padding: Int

    public init(_ inputs: Int, _ outputs: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true, rng: inout RNG) {
        let fanIn = inputs * kernel * kernel
        weight = Initialization.defaultWeight([outputs, inputs, kernel, kernel], fanIn: fanIn, rng: &rng)
        self.bias = bias ? Initialization.defaultBias(outputs, fanIn: fanIn, rng: &rng) : nil
        self.stride = stride
        self.padding = padding
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding) }

    /// `bn(self(x), relu:)`. With gradients off and `bn` evaluating, in one pass: the batch
    /// norm is applied to each block of the convolution's output while it is in cache
    /// (the same values).
    public func callAsFunction(_ x: Tensor, then bn: BatchNorm, relu: Bool = false) -> Tensor {
        guard !GradMode.isEnabled && !bn.isTraining else { return bn(self(x), relu: relu) }
        let affine = ChannelAffine(runningMean: bn.runningMean, runningVar: bn.runningVar, weight: bn.weight, bias: bn.bias, eps: bn.eps, relu: relu)
        return conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, then: affine)
    }
}

/// Transposed convolution, weight [in, out, k, k] (PyTorch's nn.ConvTranspose2d; its
/// initializer takes fan-in from weight dimension 1: out·k·k).
public final class ConvTranspose2d: Module, UnaryLayer {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Int, padding: Int, outputPadding: Int

    public init(_ inputs: Int, _ outputs: Int, kernel: Int, stride: Int = 1, padding: Int = 0, outputPadding: Int = 0, bias: Bool = true, rng: inout RNG) {
        let fanIn = outputs * kernel * kernel
        weight = Initialization.defaultWeight([inputs, outputs, kernel, kernel], fanIn: fanIn, rng: &rng)
        self.bias = bias ? Initialization.defaultBias(outputs, fanIn: fanIn, rng: &rng) : nil
        self.stride = stride
        self.padding = padding
        self.outputPadding = outputPadding
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        convTranspose2d(x, weight: weight, bias: bias, stride: stride, padding: padding, outputPadding: outputPadding)
    }
}

/// Batch normalization over [N, C] (BatchNorm1d) or [N, C, H, W] (BatchNorm2d), PyTorch's
/// semantics: batch statistics in training, running estimates (momentum 0.1, unbiased
/// variance) in evaluation; `affine: false` has no weight or bias.
public final class BatchNorm: Module, UnaryLayer {
    public let weight: Tensor?
    public let bias: Tensor?
    public let runningMean: Tensor
    public let runningVar: Tensor
    /// Kept as a float; written as int64 in checkpoints (PyTorch's dtype).
    public let numBatchesTracked: Tensor
    /// Weight of the new batch in the running statistics; nil averages every batch seen
    /// since the last reset equally (PyTorch's `momentum=None`).
    public var momentum: Float?
    public let eps: Float

    public init(_ channels: Int, affine: Bool = true, momentum: Float? = 0.1, eps: Float = 1e-5) {
        weight = affine ? Tensor.ones([channels], requiresGrad: true) : nil
        bias = affine ? Tensor.zeros([channels], requiresGrad: true) : nil
        runningMean = Tensor.zeros([channels])
        runningVar = Tensor.ones([channels])
        numBatchesTracked = Tensor.zeros([])
        self.momentum = momentum
        self.eps = eps
    }

    public override var bufferNames: Set<String> { ["running_mean", "running_var", "num_batches_tracked"] }

    public func callAsFunction(_ x: Tensor) -> Tensor { self(x, relu: false) }

    /// Batch norm followed by ReLU in one pass (`Sequential` fuses BatchNorm, ReLU pairs).
    /// With `maxPool2x2` (training mode, `relu`), a following 2 × 2 max-pool too.
    public func callAsFunction(_ x: Tensor, relu: Bool, maxPool2x2: Bool = false) -> Tensor {
        if isTraining { numBatchesTracked.pointer[0] += 1 }
        return batchNorm(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                         training: isTraining, momentum: momentum ?? 1 / numBatchesTracked.pointer[0], eps: eps, relu: relu,
                         maxPool2x2: maxPool2x2)
    }

    /// Forgets the running statistics (mean 0, variance 1, no batches seen).
    public func resetRunningStatistics() {
        runningMean.assign(Tensor.zeros(runningMean.shape))
        runningVar.assign(Tensor.ones(runningVar.shape))
        numBatchesTracked.pointer[0] = 0
    }
}

extension Module {
    /// This module and all its descendants, depth first.
    public func modules() -> [Module] { [self] + children().flatMap { $0.1.modules() } }

    /// Re-estimates every BatchNorm's running statistics as the plain average over `batches`
    /// (what a random-init control needs: a fresh BN would normalize with mean 0 and
    /// variance 1). Runs `forward` in training mode without gradients; leaves `self` in
    /// evaluation mode with the layers' momenta restored.
    public func recomputeBatchNormStatistics(_ batches: [Tensor], forward: (Tensor) -> Tensor) {
        let norms = modules().compactMap { $0 as? BatchNorm }
        let saved = norms.map(\.momentum)
        for bn in norms { bn.resetRunningStatistics(); bn.momentum = nil }
        train()
        withoutGradients { for x in batches { _ = forward(x) } }
        for (bn, m) in zip(norms, saved) { bn.momentum = m }
        eval()
    }
}

public final class ReLU: Module, UnaryLayer {
    public override init() {}
    public func callAsFunction(_ x: Tensor) -> Tensor { x.relu() }
}

public final class LeakyReLU: Module, UnaryLayer {
    public let slope: Float
    public init(_ slope: Float = 0.01) { self.slope = slope }
    public func callAsFunction(_ x: Tensor) -> Tensor { x.leakyRelu(slope) }
}

public final class MaxPool2d: Module, UnaryLayer {
    public let kernel: Int, stride: Int
    public init(_ kernel: Int, stride: Int? = nil) { self.kernel = kernel; self.stride = stride ?? kernel }
    public func callAsFunction(_ x: Tensor) -> Tensor { x.maxPool2d(kernel: kernel, stride: stride) }
}

/// [N, C, H, W] → [N, C].
public final class GlobalAvgPool: Module, UnaryLayer {
    public override init() {}
    public func callAsFunction(_ x: Tensor) -> Tensor { x.globalAveragePool() }
}

/// [N, ...] → [N, rest].
public final class Flatten: Module, UnaryLayer {
    public override init() {}
    public func callAsFunction(_ x: Tensor) -> Tensor { x.flattened() }
}

/// [N, C·H·W] → [N, C, H, W].
public final class Unflatten: Module, UnaryLayer {
    public let shape: [Int]
    public init(_ shape: [Int]) { self.shape = shape }
    public func callAsFunction(_ x: Tensor) -> Tensor { x.reshaped([x.shape[0]] + shape) }
}

/// Layers applied in order; keys are `0.weight`, `1.running_mean`, … as nn.Sequential's.
public final class Sequential: Module, UnaryLayer {
    public let layers: [any UnaryLayer]
    public init(_ layers: [any UnaryLayer]) { self.layers = layers }
    public override func children() -> [(String, Module)] { layers.enumerated().map { ("\($0.offset)", $0.element) } }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x, i = 0
        func isReLU(_ j: Int) -> Bool { j < layers.count && layers[j] is ReLU }
        func isPool2x2(_ j: Int) -> Bool { j < layers.count && (layers[j] as? MaxPool2d).map { $0.kernel == 2 && $0.stride == 2 } == true }
        while i < layers.count {
            if let conv = layers[i] as? Conv2d, i + 1 < layers.count, let bn = layers[i + 1] as? BatchNorm, bn.isTraining, isReLU(i + 2), isPool2x2(i + 3) {
                // Training: conv, then batch norm, ReLU and the 2 × 2 max-pool in one pass
                // (the normalized map never reaches memory); same values and gradients.
                let y = conv(h)
                if y.rank == 4 && y.shape[2] >= 2 && y.shape[3] >= 2 {
                    h = bn(y, relu: true, maxPool2x2: true)
                } else {
                    h = layers[i + 3](bn(y, relu: true))   // MaxPool2d's own message for a map too small
                }
                i += 4
            } else if let conv = layers[i] as? Conv2d, i + 1 < layers.count, let bn = layers[i + 1] as? BatchNorm {
                h = conv(h, then: bn, relu: isReLU(i + 2))   // see Conv2d's callAsFunction(_:then:relu:)
                i += isReLU(i + 2) ? 3 : 2
            } else if let bn = layers[i] as? BatchNorm, isReLU(i + 1) {
                h = bn(h, relu: true)   // the pair in one pass; same values and gradients
                i += 2
            } else {
                h = layers[i](h)
                i += 1
            }
        }
        return h
    }
}

/// Linear → [BatchNorm] → ReLU blocks with a plain linear output (keys as nn.Sequential).
public func MLP(_ widths: [Int], batchNorm: Bool = false, bias: Bool = true, rng: inout RNG) -> Sequential {
    precondition(widths.count >= 2, "MLP needs at least input and output widths")
    var layers: [any UnaryLayer] = []
    for i in 0..<(widths.count - 1) {
        let last = i == widths.count - 2
        layers.append(Linear(widths[i], widths[i + 1], bias: bias && !(batchNorm && !last), rng: &rng))
        if !last {
            if batchNorm { layers.append(BatchNorm(widths[i + 1])) }
            layers.append(ReLU())
        }
    }
    return Sequential(layers)
}
