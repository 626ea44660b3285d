import CKernels
import Engine
import Foundation

/// Parameters that share a learning rate and weight decay.
public struct ParameterGroup {
    public var parameters: [(key: String, tensor: Tensor)]
    /// The base learning rate; the schedule scales it unless `fixedLearningRate`.
    public var learningRate: Float
    public var weightDecay: Float
    /// Held at `learningRate` whatever the schedule (SimSiam's predictor).
    public var fixedLearningRate: Bool
    /// LARS: no trust-ratio adaptation and no weight decay for this group (biases, BN).
    public var excludeFromLARS: Bool

    public init(_ parameters: [(key: String, tensor: Tensor)], learningRate: Float, weightDecay: Float = 0,
                fixedLearningRate: Bool = false, excludeFromLARS: Bool = false) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.fixedLearningRate = fixedLearningRate
        self.excludeFromLARS = excludeFromLARS
    }
}

/// Learning-rate schedules as a factor of the base rate at a step.
public enum Schedule: Equatable, Sendable {
    case constant
    /// ½(1 + cos(π·t/T)) down to `floor`·base.
    case cosine(totalSteps: Int, floor: Float = 0)
    /// Linear warm-up from 0 over `warmupSteps`, then `after`.
    indirect case warmup(warmupSteps: Int, after: Schedule)
    /// ×gamma at each milestone step.
    case step(milestones: [Int], gamma: Float)

    public func factor(at step: Int) -> Float {
        switch self {
        case .constant: return 1
        case .cosine(let total, let floor):
            let t = Float(min(step, total)) / Float(max(total, 1))
            return floor + (1 - floor) * 0.5 * (1 + Foundation.cos(Float.pi * t))
        case .warmup(let w, let after):
            return step < w ? Float(step + 1) / Float(w) : after.factor(at: step)
        case .step(let milestones, let gamma):
            return Foundation.pow(gamma, Float(milestones.filter { step >= $0 }.count))
        }
    }
}

/// The optimizers' shared part: groups, per-parameter state (named like PyTorch's:
/// `momentum_buffer`, `exp_avg`, `exp_avg_sq`), the step counter and the schedule.
open class Optimizer {
    public var groups: [ParameterGroup]
    public var schedule: Schedule
    /// Completed steps.
    public internal(set) var stepCount = 0
    /// Per-parameter buffers by parameter key, then buffer name.
    public internal(set) var state: [String: [String: Tensor]] = [:]

    public init(groups: [ParameterGroup], schedule: Schedule) {
        self.groups = groups
        self.schedule = schedule
        var seen = Set<String>()
        for g in groups { for p in g.parameters { precondition(seen.insert(p.key).inserted, "parameter \(p.key) in two groups") } }
    }

    /// The learning rate a group uses at the current step.
    public func learningRate(group i: Int) -> Float {
        groups[i].fixedLearningRate ? groups[i].learningRate : groups[i].learningRate * schedule.factor(at: stepCount)
    }

    /// Applies one update to every parameter that has a gradient.
    public func step() {
        withoutGradients {
            for (i, g) in groups.enumerated() {
                let lr = learningRate(group: i)
                for (key, p) in g.parameters {
                    guard let grad = p.grad else { continue }
                    update(key: key, parameter: p, gradient: grad, learningRate: lr, group: g)
                }
            }
        }
        stepCount += 1
    }

    open func update(key: String, parameter: Tensor, gradient: Tensor, learningRate: Float, group: ParameterGroup) {
        preconditionFailure("\(type(of: self)) must override update")
    }

    /// The buffer `name` of parameter `key`, created zero-filled like the parameter.
    func buffer(_ key: String, _ name: String, like p: Tensor) -> (Tensor, isNew: Bool) {
        if let b = state[key]?[name] { return (b, false) }
        let b = Tensor.zeros(p.shape)
        state[key, default: [:]][name] = b
        return (b, true)
    }

    /// Restores state saved from an optimizer of the same kind over the same parameters.
    public func restore(state saved: [String: [String: Tensor]], stepCount steps: Int) {
        state = saved.mapValues { $0.mapValues { $0.copy() } }
        stepCount = steps
    }
}

/// SGD with momentum, Nesterov and L2 weight decay, exactly PyTorch's torch.optim.SGD:
/// d = g + λp; b ← μb + d (b₀ = d); d ← d + μb (Nesterov) or b; p ← p − η·d.
public final class SGD: Optimizer {
    public let momentum: Float, nesterov: Bool

    public init(groups: [ParameterGroup], momentum: Float = 0, nesterov: Bool = false, schedule: Schedule = .constant) {
        precondition(!nesterov || momentum > 0, "Nesterov momentum needs momentum > 0")
        self.momentum = momentum
        self.nesterov = nesterov
        super.init(groups: groups, schedule: schedule)
    }

    public override func update(key: String, parameter p: Tensor, gradient g: Tensor, learningRate lr: Float, group: ParameterGroup) {
        let n = p.count, pp = p.pointer, gp = g.pointer, wd = group.weightDecay, mu = momentum
        if mu == 0 {
            for i in 0..<n { pp[i] -= lr * (gp[i] + wd * pp[i]) }
            return
        }
        let (b, isNew) = buffer(key, "momentum_buffer", like: p)
        let bp = b.pointer
        for i in 0..<n {
            let d = gp[i] + wd * pp[i]
            bp[i] = isNew ? d : mu * bp[i] + d
            pp[i] -= lr * (nesterov ? d + mu * bp[i] : bp[i])
        }
    }
}

/// LARS (You et al. 2017, as SimCLR/BYOL use it): for each non-excluded parameter,
/// d = g + λp, local rate η·trust·‖p‖/‖d‖; b ← μb + local·d; p ← p − b. Excluded groups
/// (biases, BN) use plain momentum SGD without weight decay.
public final class LARS: Optimizer {
    public let momentum: Float, trustCoefficient: Float

    public init(groups: [ParameterGroup], momentum: Float = 0.9, trustCoefficient: Float = 0.001, schedule: Schedule = .constant) {
        self.momentum = momentum
        self.trustCoefficient = trustCoefficient
        super.init(groups: groups, schedule: schedule)
    }

    public override func update(key: String, parameter p: Tensor, gradient g: Tensor, learningRate lr: Float, group: ParameterGroup) {
        let n = p.count, pp = p.pointer, gp = g.pointer
        let wd = group.excludeFromLARS ? 0 : group.weightDecay
        var local = lr
        if !group.excludeFromLARS {
            var pn = 0.0, dn = 0.0
            for i in 0..<n { let d = Double(gp[i] + wd * pp[i]); pn += Double(pp[i]) * Double(pp[i]); dn += d * d }
            if pn > 0 && dn > 0 { local = lr * trustCoefficient * Float(pn.squareRoot() / dn.squareRoot()) }
        }
        let (b, _) = buffer(key, "momentum_buffer", like: p)
        let bp = b.pointer
        for i in 0..<n {
            bp[i] = momentum * bp[i] + local * (gp[i] + wd * pp[i])
            pp[i] -= bp[i]
        }
    }
}

/// Adam with L2 weight decay (torch.optim.Adam): g' = g + λp; m ← β₁m + (1−β₁)g';
/// v ← β₂v + (1−β₂)g'²; p ← p − η·m̂/(√v̂ + ε) with bias-corrected m̂, v̂.
public final class Adam: Optimizer {
    public let beta1: Float, beta2: Float, eps: Float

    public init(groups: [ParameterGroup], beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, schedule: Schedule = .constant) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        super.init(groups: groups, schedule: schedule)
    }

    public override func update(key: String, parameter p: Tensor, gradient g: Tensor, learningRate lr: Float, group: ParameterGroup) {
        let (m, _) = buffer(key, "exp_avg", like: p), (v, _) = buffer(key, "exp_avg_sq", like: p)
        let t = Float(stepCount + 1)
        let c1 = 1 - Foundation.pow(beta1, t), c2 = 1 - Foundation.pow(beta2, t)
        let n = p.count, pp = p.pointer, gp = g.pointer, mp = m.pointer, vp = v.pointer, wd = group.weightDecay
        let stepSize = lr / c1, c2root = c2.squareRoot()
        // d = g + wd·p; m ← β₁m + (1 − β₁)d; v ← β₂v + (1 − β₂)d²; p ← p − s·m / (√v / c + ε),
        // at the machine's vector width (the same bits as the scalar loop).
        replica_adam(pp, gp, mp, vp, n, beta1, beta2, wd, stepSize, c2root, eps)
    }
}

extension Module {
    /// One group for all trainable parameters, or two when `noDecayOnBiasAndNorm`: weights
    /// with decay, biases and 1-D (BN) parameters without (and excluded from LARS).
    public func parameterGroups(learningRate: Float, weightDecay: Float, noDecayOnBiasAndNorm: Bool = false, prefix: String = "") -> [ParameterGroup] {
        let params = namedParameters().filter { $0.tensor.requiresGrad }.map { (key: prefix + $0.key, tensor: $0.tensor) }
        guard noDecayOnBiasAndNorm else { return [ParameterGroup(params, learningRate: learningRate, weightDecay: weightDecay)] }
        let plain = params.filter { $0.tensor.rank <= 1 }, decayed = params.filter { $0.tensor.rank > 1 }
        return [ParameterGroup(decayed, learningRate: learningRate, weightDecay: weightDecay),
                ParameterGroup(plain, learningRate: learningRate, weightDecay: 0, excludeFromLARS: true)]
    }
}
