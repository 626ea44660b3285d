import Engine
import Foundation

/// A neural-network module: parameters, buffers and child modules found by reflection over
/// stored properties, named with PyTorch's state_dict keys.
///
/// A `Tensor` property is a parameter (an optional one may be nil, like a missing bias);
/// properties named in `bufferNames` are buffers; `Module` and `[Module]` properties are
/// children. Swift names become snake_case keys (`runningMean` → `running_mean`), so
/// `model.stateDict()` lines up with the same PyTorch module's:
/// ```swift
/// let bn = BatchNorm(32)
/// bn.stateDict().map(\.key)   // ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
/// ```
open class Module {
    /// Training mode (batch statistics, dropout) versus evaluation mode.
    public private(set) var isTraining = true

    public init() {}

    /// Property names (snake_case) that hold buffers rather than parameters.
    open var bufferNames: Set<String> { [] }

    /// Direct children with their key segment; `Sequential` overrides this with 0, 1, 2, …
    open func children() -> [(String, Module)] {
        var out: [(String, Module)] = []
        for (label, value) in reflectedProperties() {
            if let m = value as? Module { out.append((label, m)) }
            else if let list = value as? [Module] { out += list.enumerated().map { ("\(label).\($0.offset)", $0.element) } }
        }
        return out
    }

    /// This module's own tensors (not its children's), parameters and buffers, in
    /// declaration order.
    func ownTensors() -> [(String, Tensor, isBuffer: Bool)] {
        let buffers = bufferNames
        return reflectedProperties().compactMap { label, value in
            guard let t = value as? Tensor else { return nil }
            return (label, t, buffers.contains(label))
        }
    }

    private func reflectedProperties() -> [(String, Any)] {
        var out: [(String, Any)] = []
        var mirror: Mirror? = Mirror(reflecting: self)
        var levels: [[(String, Any)]] = []
        while let m = mirror {   // superclass properties first, as PyTorch registers them
            levels.append(m.children.compactMap { c in
                // Only what the walk uses; `as?` sees through optionals (a nil one fails).
                guard let label = c.label, c.value is Tensor || c.value is Module || c.value is [Module] else { return nil }
                return (snakeCase(label), c.value)
            })
            mirror = m.superclassMirror
        }
        for level in levels.reversed() { out += level }
        return out
    }

    /// Every (key, tensor) pair: parameters and buffers, recursively, PyTorch's order.
    public func stateDict() -> [(key: String, tensor: Tensor)] {
        walk().map { ($0.key, $0.tensor) }
    }

    /// Trainable and frozen parameters (not buffers), recursively.
    public func namedParameters() -> [(key: String, tensor: Tensor)] {
        walk().filter { !$0.isBuffer }.map { ($0.key, $0.tensor) }
    }

    public func namedBuffers() -> [(key: String, tensor: Tensor)] {
        walk().filter { $0.isBuffer }.map { ($0.key, $0.tensor) }
    }

    /// Parameters that currently require gradients.
    public func trainableParameters() -> [Tensor] { namedParameters().map(\.tensor).filter(\.requiresGrad) }

    private func walk(prefix: String = "") -> [(key: String, tensor: Tensor, isBuffer: Bool)] {
        var out = ownTensors().map { (prefix + $0.0, $0.1, $0.isBuffer) }
        for (name, child) in children() { out += child.walk(prefix: prefix + name + ".") }
        return out
    }

    /// Sets training mode on this module and every descendant.
    public func train(_ on: Bool = true) {
        isTraining = on
        for (_, c) in children() { c.train(on) }
    }

    /// Evaluation mode (running statistics, no dropout).
    public func eval() { train(false) }

    /// Stops gradients to every parameter whose key starts with one of `prefixes`
    /// (all parameters when empty); `unfreeze` reverses it.
    public func freeze(_ prefixes: [String] = []) { setRequiresGrad(false, prefixes) }
    public func unfreeze(_ prefixes: [String] = []) { setRequiresGrad(true, prefixes) }

    private func setRequiresGrad(_ on: Bool, _ prefixes: [String]) {
        for (key, t) in namedParameters() where prefixes.isEmpty || prefixes.contains(where: { key == $0 || key.hasPrefix($0 + ".") }) {
            t.requiresGrad = on
        }
    }

    /// Drops every parameter's gradient.
    public func zeroGrad() { for (_, t) in namedParameters() { t.grad = nil } }

    /// Copies values from `state` (key → tensor); every key must exist with the same shape.
    public func load(_ state: [String: Tensor]) throws {
        let own = stateDict()
        for (key, t) in own {
            guard let v = state[key] else { throw ModuleError.missingKey(key) }
            guard v.shape == t.shape else { throw ModuleError.shapeMismatch(key: key, expected: t.shape, found: v.shape) }
        }
        let known = Set(own.map(\.key))
        if let extra = state.keys.sorted().first(where: { !known.contains($0) }) { throw ModuleError.unexpectedKey(extra) }
        for (key, t) in own { t.assign(state[key]!) }
    }

    /// Number of scalar parameters.
    public var parameterCount: Int { namedParameters().reduce(0) { $0 + $1.tensor.count } }
}

public enum ModuleError: Error, CustomStringConvertible, Equatable {
    case missingKey(String)
    case unexpectedKey(String)
    case shapeMismatch(key: String, expected: [Int], found: [Int])
    case unknownBackbone(String)
    /// Images smaller than the backbone accepts (the message names the file and both sizes).
    case inputTooSmall(String)

    public var description: String {
        switch self {
        case .missingKey(let k): return "missing key '\(k)'"
        case .unexpectedKey(let k): return "unexpected key '\(k)' (the model has no such parameter or buffer)"
        case .shapeMismatch(let k, let e, let f): return "key '\(k)': the model expects shape \(e), the checkpoint has \(f)"
        case .unknownBackbone(let n): return "unknown backbone '\(n)' (expected convnet4 or resnet18)"
        case .inputTooSmall(let m): return m
        }
    }
}

/// A module that maps one tensor to one tensor (what `Sequential` chains).
public protocol UnaryLayer: Module {
    func callAsFunction(_ x: Tensor) -> Tensor
}

/// `camelCase` → `snake_case` (PyTorch's naming).
/// Memoized: every training step walks the modules (zeroGrad, trainableParameters), and
/// the Unicode case tests were a few per cent of a small model's step.
func snakeCase(_ s: String) -> String {
    snakeCaseLock.lock()
    defer { snakeCaseLock.unlock() }
    if let known = snakeCaseCache[s] { return known }
    var out = ""
    for ch in s {
        if ch.isUppercase { if !out.isEmpty { out.append("_") }; out += ch.lowercased() } else { out.append(ch) }
    }
    snakeCaseCache[s] = out
    return out
}
private let snakeCaseLock = NSLock()
nonisolated(unsafe) private var snakeCaseCache: [String: String] = [:]

