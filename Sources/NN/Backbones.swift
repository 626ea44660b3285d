import Engine
import Foundation

/// ConvNet-4: four blocks of conv 3×3 (no bias) → BN → ReLU → max-pool 2, then the global
/// feature h. 28×28 inputs shrink 28 → 14 → 7 → 3 → 1; 32×32 ones 32 → 16 → 8 → 4 → 2 and
/// are averaged. Keys: `layers.0.weight`, `layers.1.running_mean`, …
public final class ConvNet4: Module, UnaryLayer {
    public enum Width: String, Codable, Sendable, CaseIterable {
        case lite, standard
        public var channels: [Int] { self == .lite ? [16, 32, 64, 128] : [32, 64, 128, 256] }
    }

    public let layers: Sequential
    /// Size of h.
    public let featureCount: Int
    /// What a checkpoint records to rebuild it.
    public let spec: BackboneSpec

    public init(width: Width = .standard, inputChannels: Int = 1, rng: inout RNG) {
        spec = BackboneSpec(name: "convnet4", width: width, inputChannels: inputChannels)
        var blocks: [any UnaryLayer] = []
        var c = inputChannels
        for w in width.channels {
            blocks += [Conv2d(c, w, kernel: 3, padding: 1, bias: false, rng: &rng), BatchNorm(w), ReLU(), MaxPool2d(2)]
            c = w
        }
        layers = Sequential(blocks)
        featureCount = c
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { layers(x).globalAveragePool() }

    /// See `BackboneSpec.minimumInputSize`.
    public static let minimumInputSize = 16
}

/// ResNet's basic block: two 3×3 convs with BN, identity or 1×1-conv shortcut.
public final class BasicBlock: Module, UnaryLayer {
    public let conv1: Conv2d, bn1: BatchNorm, conv2: Conv2d, bn2: BatchNorm
    public let shortcut: Sequential

    public init(_ inputs: Int, _ outputs: Int, stride: Int, rng: inout RNG) {
        conv1 = Conv2d(inputs, outputs, kernel: 3, stride: stride, padding: 1, bias: false, rng: &rng)
        bn1 = BatchNorm(outputs)
        conv2 = Conv2d(outputs, outputs, kernel: 3, padding: 1, bias: false, rng: &rng)
        bn2 = BatchNorm(outputs)
        shortcut = stride != 1 || inputs != outputs
            ? Sequential([Conv2d(inputs, outputs, kernel: 1, stride: stride, bias: false, rng: &rng), BatchNorm(outputs)])
            : Sequential([])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let out = conv2(conv1(x, then: bn1, relu: true), then: bn2)
        return (out + shortcut(x)).relu()
    }
}

/// ResNet-18 with the CIFAR stem (3×3 conv, stride 1, no max-pool); h ∈ R^512.
public final class ResNet18: Module, UnaryLayer {
    public let stem: Sequential
    public let layers: Sequential
    public let featureCount = 512

    public init(inputChannels: Int = 3, rng: inout RNG) {
        stem = Sequential([Conv2d(inputChannels, 64, kernel: 3, padding: 1, bias: false, rng: &rng), BatchNorm(64), ReLU()])
        var blocks: [any UnaryLayer] = []
        var c = 64
        for (w, s) in [(64, 1), (128, 2), (256, 2), (512, 2)] {
            blocks += [BasicBlock(c, w, stride: s, rng: &rng), BasicBlock(w, w, stride: 1, rng: &rng)]
            c = w
        }
        layers = Sequential(blocks)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { layers(stem(x)).globalAveragePool() }
}

/// The FactorVAE paper's (Kim & Mnih 2018) dSprites encoder: 1×64×64 → 2·z (μ, log σ²).
public func factorVAEEncoder(latents z: Int, inputChannels: Int = 1, rng: inout RNG) -> Sequential {
    Sequential([
        Conv2d(inputChannels, 32, kernel: 4, stride: 2, padding: 1, rng: &rng), ReLU(),   // 32×32
        Conv2d(32, 32, kernel: 4, stride: 2, padding: 1, rng: &rng), ReLU(),              // 16×16
        Conv2d(32, 64, kernel: 4, stride: 2, padding: 1, rng: &rng), ReLU(),              // 8×8
        Conv2d(64, 64, kernel: 4, stride: 2, padding: 1, rng: &rng), ReLU(),              // 4×4
        Flatten(), Linear(64 * 4 * 4, 128, rng: &rng), ReLU(), Linear(128, 2 * z, rng: &rng),
    ])
}

/// The matching decoder: z → logits of 1×64×64.
public func factorVAEDecoder(latents z: Int, outputChannels: Int = 1, rng: inout RNG) -> Sequential {
    Sequential([
        Linear(z, 128, rng: &rng), ReLU(), Linear(128, 64 * 4 * 4, rng: &rng), ReLU(), Unflatten([64, 4, 4]),
        ConvTranspose2d(64, 64, kernel: 4, stride: 2, padding: 1, rng: &rng), ReLU(),      // 8×8
        ConvTranspose2d(64, 32, kernel: 4, stride: 2, padding: 1, rng: &rng), ReLU(),      // 16×16
        ConvTranspose2d(32, 32, kernel: 4, stride: 2, padding: 1, rng: &rng), ReLU(),      // 32×32
        ConvTranspose2d(32, outputChannels, kernel: 4, stride: 2, padding: 1, rng: &rng),  // 64×64
    ])
}

/// MLP encoder: inputs → hidden… → 2·z (μ, log σ²), ReLU between layers.
public func mlpEncoder(inputs: Int, hidden: [Int], latents z: Int, rng: inout RNG) -> Sequential {
    MLP([inputs] + hidden + [2 * z], rng: &rng)
}

/// MLP decoder: z → hidden… → outputs (logits).
public func mlpDecoder(latents z: Int, hidden: [Int], outputs: Int, rng: inout RNG) -> Sequential {
    MLP([z] + hidden + [outputs], rng: &rng)
}

/// A feature extractor: one tensor in, [N, featureCount] out.
public protocol Backbone: UnaryLayer {
    var featureCount: Int { get }
}

extension ConvNet4: Backbone {}
extension ResNet18: Backbone {}

/// What a checkpoint records to rebuild its backbone.
public struct BackboneSpec: Codable, Equatable, Sendable {
    public var name: String
    public var width: ConvNet4.Width?
    public var inputChannels: Int

    public init(name: String, width: ConvNet4.Width? = nil, inputChannels: Int) {
        (self.name, self.width, self.inputChannels) = (name, width, inputChannels)
    }

    public enum CodingKeys: String, CodingKey { case name, width, inputChannels = "input_channels" }

    /// The smallest image side this backbone turns into a feature: convnet4's four
    /// floor-mode 2×2 max-pools need 16 (16 → 8 → 4 → 2 → 1); resnet18's padded convs take any.
    public var minimumInputSize: Int { name == "convnet4" ? ConvNet4.minimumInputSize : 1 }

    /// Refuses images smaller than `minimumInputSize`, naming `file`.
    public func check(height: Int, width: Int, file: String) throws {
        let m = minimumInputSize
        guard height >= m && width >= m else {
            throw ModuleError.inputTooSmall("\(file): images are \(height)×\(width), but \(name) needs at least \(m)×\(m)")
        }
    }

    /// A freshly initialized backbone of this kind.
    public func make(rng: inout RNG) throws -> any Backbone {
        switch name {
        case "convnet4": return ConvNet4(width: width ?? .standard, inputChannels: inputChannels, rng: &rng)
        case "resnet18": return ResNet18(inputChannels: inputChannels, rng: &rng)
        default: throw ModuleError.unknownBackbone(name)
        }
    }
}
