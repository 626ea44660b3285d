import CKernels
import Foundation
import Synchronization

/// A reference-counted, 64-byte aligned buffer of Float32 values.
///
/// Several tensors may share one storage (a reshape is a view); kernels read and write it
/// through `pointer`.
public final class Storage {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    /// Allocates `count` floats; zero-filled unless `zeroed` is false (the caller then
    /// promises to write every element).
    public init(count: Int, zeroed: Bool = true) {
        precondition(count >= 0, "negative storage size")
        guard let raw = replica_buffer_alloc(Swift.max(count, 1) * 4) else {
            fatalError("out of memory: a tensor of \(count) floats (\(count * 4 >> 20) MiB)")
        }
        pointer = raw.bindMemory(to: Float.self, capacity: Swift.max(count, 1))
        self.count = count
        if zeroed { pointer.initialize(repeating: 0, count: count) }
        StorageBytes.allocated(count * 4)
    }

    deinit {
        StorageBytes.allocated(-count * 4)
        replica_buffer_free(pointer, Swift.max(count, 1) * 4)
    }
}

/// Bytes of tensor storage alive, and the most alive at once since the last `resetPeak`:
/// what `replica bench` reports beside the process's resident size.
public enum StorageBytes {
    private static let live = Atomic<Int>(0), highest = Atomic<Int>(0)
    @inline(__always) static func allocated(_ bytes: Int) {
        let now = live.add(bytes, ordering: .relaxed).newValue
        if bytes > 0 { highest.max(now, ordering: .relaxed) }
    }
    public static var current: Int { live.load(ordering: .relaxed) }
    public static var peak: Int { highest.load(ordering: .relaxed) }
    public static func resetPeak() { highest.store(live.load(ordering: .relaxed), ordering: .relaxed) }
}

/// How a non-leaf tensor was made: its inputs and the function that maps the gradient of
/// the output to gradients of the inputs (nil where an input gets none).
final class Node {
    var inputs: [Tensor]
    var backward: ((Tensor) -> [Tensor?])?
    init(inputs: [Tensor], backward: @escaping (Tensor) -> [Tensor?]) {
        self.inputs = inputs
        self.backward = backward
    }
}

/// A dense, contiguous Float32 tensor with define-by-run reverse-mode autograd.
///
/// ```swift
/// let w = Tensor([1, 2, 3], shape: [3], requiresGrad: true)
/// let loss = (w * w).sum()
/// loss.backward()
/// w.grad!.array   // [2, 4, 6]
/// ```
public final class Tensor {
    public let shape: [Int]
    public let storage: Storage
    /// Leaves with `requiresGrad` accumulate `grad` in `backward()`.
    public var requiresGrad: Bool
    public var grad: Tensor?
    var node: Node?

    // Releasing a long chain of history would recurse once per op and can overflow the
    // stack; tear the graph down iteratively instead, taking over each input that only this
    // history keeps alive.
    deinit {
        guard let first = node else { return }
        var pending = [first]
        while let n = pending.popLast() {
            n.backward = nil   // drops the closure's references to inputs
            while var t = n.inputs.popLast() {
                if isKnownUniquelyReferenced(&t), let child = t.node { t.node = nil; pending.append(child) }
            }
        }
    }

    /// Wraps existing storage (a view when the storage is shared).
    public init(storage: Storage, shape: [Int], requiresGrad: Bool = false) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(shape.reduce(1, *) == storage.count, "shape \(shape) does not match \(storage.count) elements")
        self.storage = storage
        self.shape = shape
        self.requiresGrad = requiresGrad
    }

    /// A tensor holding `values` in row-major order.
    public convenience init(_ values: [Float], shape: [Int], requiresGrad: Bool = false) {
        let n = shape.reduce(1, *)
        precondition(values.count == n, "\(values.count) values for shape \(shape)")
        let s = Storage(count: n, zeroed: false)
        values.withUnsafeBufferPointer { s.pointer.update(from: $0.baseAddress!, count: n) }
        self.init(storage: s, shape: shape, requiresGrad: requiresGrad)
    }

    /// A 0-dimensional tensor.
    public convenience init(scalar: Float, requiresGrad: Bool = false) {
        self.init([scalar], shape: [], requiresGrad: requiresGrad)
    }

    /// Uninitialized or zeroed storage for kernels that fill it.
    convenience init(shape: [Int], zeroed: Bool) {
        self.init(storage: Storage(count: shape.reduce(1, *), zeroed: zeroed), shape: shape)
    }

    public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(shape: shape, zeroed: true)
        t.requiresGrad = requiresGrad
        return t
    }

    public static func full(_ shape: [Int], _ value: Float, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(shape: shape, zeroed: false)
        t.storage.pointer.initialize(repeating: value, count: t.count)
        t.requiresGrad = requiresGrad
        return t
    }

    public static func ones(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        full(shape, 1, requiresGrad: requiresGrad)
    }

    public var count: Int { storage.count }
    public var rank: Int { shape.count }
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer }
    public var isLeaf: Bool { node == nil }

    /// The values in row-major order.
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    /// The value of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item of a tensor with shape \(shape)")
        return pointer[0]
    }

    /// Same values, no history, no gradient (shares storage, like PyTorch's `detach`).
    public func detached() -> Tensor { Tensor(storage: storage, shape: shape) }

    /// A copy with its own storage and no history.
    public func copy() -> Tensor {
        let t = Tensor(shape: shape, zeroed: false)
        t.pointer.update(from: pointer, count: count)
        return t
    }

    /// Overwrites the values in place (no autograd); shapes must hold the same count.
    public func assign(_ other: Tensor) {
        precondition(other.count == count, "assign \(other.shape) into \(shape)")
        pointer.update(from: other.pointer, count: count)
    }

    /// Size of `axis`; negative axes count from the end.
    public func size(_ axis: Int) -> Int { shape[normalizeAxis(axis, rank)] }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = array.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(count > 8 ? ", …" : "")])"
    }
}

@inline(__always)
func normalizeAxis(_ axis: Int, _ rank: Int) -> Int {
    let a = axis < 0 ? axis + rank : axis
    precondition(a >= 0 && a < Swift.max(rank, 1), "axis \(axis) out of range for rank \(rank)")
    return a
}
