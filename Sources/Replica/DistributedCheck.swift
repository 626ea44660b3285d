import ArgumentParser
import Engine
import Foundation

/// `mpirun -np N replica distributed-check`: finite-difference checks of the two operations
/// whose gradients cross ranks (all-gather, global batch norm) and of the gradient all-reduce,
/// run by `make test` (CLITests). Every rank perturbs its own inputs in turn while all ranks
/// evaluate the objective Σ over ranks of each rank's loss; exit status 1 when a gradient is off.
struct DistributedCheck: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "distributed-check", shouldDisplay: false)

    func run() throws {
        let (rank, size) = (Distributed.rank, Distributed.size)
        guard size > 1 else { throw ValidationError("distributed-check needs several ranks: mpirun -np 2 replica distributed-check") }
        var worst = 0.0
        var rng = RNG(seed: 7).derive(UInt64(rank))

        // 1. allGather in 2 blocks: L_r = Σ w_r ⊙ gather(x)², different w on every rank.
        let x = Tensor.randn([4, 3], rng: &rng, requiresGrad: true)
        let w = Tensor.randn([4 * size, 3], rng: &rng)
        worst = max(worst, check("allGather", inputs: [x], shared: []) { xs, _ in let g = allGather(xs[0], blocks: 2); return (g * g * w).sum() })

        // 2. Global batch norm of [4, 3, 2, 2] with affine parameters, then a rank's weights.
        let y = Tensor.randn([4, 3, 2, 2], rng: &rng, requiresGrad: true)
        var shared = RNG(seed: 11)   // γ and β are replicated parameters: the same on every rank
        let gamma = Tensor.randn([3], mean: 1, std: 0.2, rng: &shared, requiresGrad: true), beta = Tensor.randn([3], std: 0.2, rng: &shared, requiresGrad: true)
        let v = Tensor.randn([4, 3, 2, 2], rng: &rng)
        let mean = Tensor.zeros([3]), variance = Tensor.ones([3])
        worst = max(worst, check("global batch norm", inputs: [y], shared: [gamma, beta]) {
            (batchNorm($0[0], weight: $1[0], bias: $1[1], runningMean: mean, runningVar: variance, training: true, momentum: 0.1) * v).sum()
        })

        // 3. backward() inside data-parallel training leaves each parameter's gradient as the
        //    mean over the ranks of the ranks' own gradients.
        let p = Tensor.randn([5], rng: &shared, requiresGrad: true)
        let own = Tensor.randn([5], rng: &rng)
        Distributed.dataParallel { (p * own).sum().backward() }
        var expected = own.array
        Distributed.sum(&expected)
        let average = zip(p.grad!.array, expected).map { Double(abs($0 - $1 / Float(size))) }.max()!
        if rank == 0 { print(String(format: "gradient all-reduce: max |grad − mean over ranks| %.2e (rank 0)", average)) }
        worst = max(worst, average > 1e-6 ? 1 : 0)

        guard worst <= 2e-2 else { throw InputError(String(format: "distributed-check: a gradient is off by %.3g (relative)", worst)) }
        if rank == 0 { print("distributed-check: \(size) ranks, all gradients agree with finite differences") }
    }

    /// Max relative error between autograd and central differences of F = Σ_r L_r, for each
    /// rank's own `inputs` (perturbed on that rank alone) and the `shared` parameters
    /// (perturbed on every rank at once; their gradient is the sum of the ranks' gradients).
    func check(_ name: String, inputs: [Tensor], shared: [Tensor], loss: ([Tensor], [Tensor]) -> Tensor) -> Double {
        func objective() -> Double {
            var l = [Double(Distributed.dataParallel { withoutGradients { loss(inputs, shared) } }.item)]
            Distributed.sum(&l)
            return l[0]
        }
        for t in inputs + shared { t.grad = nil }
        // The forward inside data-parallel training (gather, global statistics), the backward
        // outside it: no averaging, so each tensor's gradient is its own rank's share of ∂F.
        let l = Distributed.dataParallel { loss(inputs, shared) }
        l.backward()
        var sharedGrads = shared.flatMap { $0.grad!.array }
        Distributed.sum(&sharedGrads)

        let h: Float = 1e-2
        var worst = 0.0
        func compare(_ analytic: Float, _ numeric: Double) {
            worst = max(worst, abs(Double(analytic) - numeric) / max(1, abs(numeric)))
        }
        for owner in 0..<Distributed.size {
            for t in inputs {
                for i in 0..<t.count {
                    let mine = owner == Distributed.rank, saved = t.pointer[i]
                    if mine { t.pointer[i] = saved + h }
                    let plus = objective()
                    if mine { t.pointer[i] = saved - h }
                    let minus = objective()
                    if mine { t.pointer[i] = saved; compare(t.grad!.pointer[i], (plus - minus) / Double(2 * h)) }
                }
            }
        }
        var at = 0
        for t in shared {
            for i in 0..<t.count {
                let saved = t.pointer[i]
                t.pointer[i] = saved + h
                let plus = objective()
                t.pointer[i] = saved - h
                let minus = objective()
                t.pointer[i] = saved
                compare(sharedGrads[at + i], (plus - minus) / Double(2 * h))
            }
            at += t.count
        }
        var all = [worst]
        Distributed.sum(&all)   // report the worst of any rank (the sum bounds it)
        if Distributed.rank == 0 { print(String(format: "%@: max relative error against finite differences %.2e (sum over ranks)", name, all[0])) }
        return all[0]
    }
}
