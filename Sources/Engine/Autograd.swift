import Foundation

/// Whether operations record history. Per thread, so a loader thread never races the
/// training thread.
public enum GradMode {
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    /// True unless inside `withoutGradients`.
    public static var isEnabled: Bool {
        get { pthread_getspecific(key) == nil }
        set { pthread_setspecific(key, newValue ? nil : UnsafeRawPointer(bitPattern: 1)) }
    }
}

/// Runs `body` without recording history: for stop-gradient, EMA updates, optimizer steps
/// and evaluation.
public func withoutGradients<R>(_ body: () throws -> R) rethrows -> R {
    let previous = GradMode.isEnabled
    GradMode.isEnabled = false
    defer { GradMode.isEnabled = previous }
    return try body()
}

extension Tensor {
    /// The result of an op: records `backward` when gradients are on and an input needs one.
    /// `backward` must not capture the result tensor itself (that would be a cycle); capture
    /// its storage instead.
    static func result(_ out: Tensor, _ inputs: [Tensor], _ backward: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        if GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad }) {
            out.requiresGrad = true
            out.node = Node(inputs: inputs, backward: backward)
        }
        return out
    }

    /// Reverse-mode differentiation from this tensor. Without `gradient` the tensor must hold
    /// one element (a loss). Leaves that require gradients accumulate into `grad`.
    public func backward(_ gradient: Tensor? = nil) {
        precondition(requiresGrad, "backward() on a tensor that does not require gradients")
        let seed = gradient ?? {
            precondition(count == 1, "backward() without a gradient needs a one-element tensor, got \(shape)")
            return Tensor.ones(shape)
        }()
        precondition(seed.shape == shape, "gradient shape \(seed.shape) for tensor \(shape)")

        // Topological order of the non-leaf tensors, iteratively (graphs can be deep).
        var order: [Tensor] = []
        var seen = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (t, expanded) = stack.popLast() {
            if expanded { order.append(t); continue }
            guard t.node != nil, seen.insert(ObjectIdentifier(t)).inserted else { continue }
            stack.append((t, true))
            for input in t.node!.inputs where input.requiresGrad && input.node != nil {
                stack.append((input, false))
            }
        }

        var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed]
        // The leaves written, in the (deterministic) order first reached: data-parallel
        // training averages them over the ranks in one all-reduce.
        var leaves: [Tensor] = [], written = Set<ObjectIdentifier>()
        let reduce = Distributed.isDataParallel
        func accumulateLeaf(_ leaf: Tensor, _ g: Tensor) {
            // Out of place: `g` may share storage with another tensor.
            leaf.grad = leaf.grad.map { $0 + g } ?? g.copy()
            if reduce && written.insert(ObjectIdentifier(leaf)).inserted { leaves.append(leaf) }
        }
        defer { if reduce { Distributed.averageGradients(leaves) } }
        withoutGradients {
            if node == nil { accumulateLeaf(self, seed); return }
            for t in order.reversed() {
                guard let g = grads.removeValue(forKey: ObjectIdentifier(t)), let node = t.node else { continue }
                let inputGrads = node.backward!(g)
                for (input, ig) in zip(node.inputs, inputGrads) where input.requiresGrad {
                    guard let ig else { continue }
                    precondition(ig.shape == input.shape, "internal: gradient \(ig.shape) for input \(input.shape)")
                    if input.node == nil {
                        accumulateLeaf(input, ig)
                    } else {
                        let key = ObjectIdentifier(input)
                        grads[key] = grads[key].map { $0 + ig } ?? ig
                    }
                }
            }
        }
    }
}
