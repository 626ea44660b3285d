import Engine
import NN
import TestSupport
import XCTest

/// One step of each optimizer against a hand-computed update, schedules against their
/// formulas, and a toy problem each optimizer must solve.
final class OptimizerTests: XCTestCase {
    func param(_ values: [Float]) -> Tensor { Tensor(values, shape: [values.count], requiresGrad: true) }

    func testSGDMomentumWeightDecayByHand() {
        let p = param([1])
        let opt = SGD(groups: [ParameterGroup([("p", p)], learningRate: 0.1, weightDecay: 0.01)], momentum: 0.9)
        p.grad = Tensor([0.5], shape: [1]); opt.step()
        // d = 0.5 + 0.01·1 = 0.51; b = d; p = 1 − 0.1·0.51
        XCTAssertEqual(p.item, 0.949, accuracy: 1e-6)
        p.grad = Tensor([0.5], shape: [1]); opt.step()
        // d = 0.5 + 0.01·0.949 = 0.50949; b = 0.9·0.51 + 0.50949 = 0.96849; p = 0.949 − 0.096849
        XCTAssertEqual(p.item, 0.852151, accuracy: 1e-6)
        let q = param([1])
        let nesterov = SGD(groups: [ParameterGroup([("q", q)], learningRate: 0.1, weightDecay: 0.01)], momentum: 0.9, nesterov: true)
        q.grad = Tensor([0.5], shape: [1]); nesterov.step()
        // b = 0.51; d = 0.51 + 0.9·0.51 = 0.969
        XCTAssertEqual(q.item, 1 - 0.0969, accuracy: 1e-6)
    }

    func testAdamByHand() {
        let p = param([1, -2])
        let opt = Adam(groups: [ParameterGroup([("p", p)], learningRate: 0.1)])
        p.grad = Tensor([0.5, -4], shape: [2]); opt.step()
        // First step: m̂ = g, v̂ = g², update = η·g/(|g| + ε) = ±η.
        XCTAssertEqual(p.array[0], 0.9, accuracy: 1e-6)
        XCTAssertEqual(p.array[1], -1.9, accuracy: 1e-6)
        p.grad = Tensor([0.5, 0], shape: [2]); opt.step()
        // m = 0.9·0.05 + 0.1·0.5 = 0.095 → m̂ = 0.095/0.19 = 0.5; v = 0.999·0.00025 + 0.001·0.25 = 0.00049975
        // → v̂ = 0.00049975/0.001999 = 0.25; update = 0.1 · 0.5/0.5 = 0.1
        XCTAssertEqual(p.array[0], 0.8, accuracy: 1e-5)
        // m = 0.9·(−0.4) = −0.36 → m̂ = −1.8947; v = 0.999·0.016 = 0.015984 → v̂ = 7.996, √ = 2.8277
        XCTAssertEqual(p.array[1], -1.9 + 0.1 * 1.8947368 / 2.8277, accuracy: 1e-4)
    }

    func testLARSByHand() {
        let w = param([3, 4]), b = param([1])
        let opt = LARS(groups: [ParameterGroup([("w", w)], learningRate: 1, weightDecay: 0),
                                ParameterGroup([("b", b)], learningRate: 1, weightDecay: 0.5, excludeFromLARS: true)],
                       momentum: 0.9, trustCoefficient: 0.001)
        w.grad = Tensor([0.3, 0.4], shape: [2]); b.grad = Tensor([0.2], shape: [1])
        opt.step()
        // ‖w‖ = 5, ‖d‖ = 0.5 → local rate 1·0.001·5/0.5 = 0.01; w −= 0.01·d
        XCTAssertEqual(w.array[0], 2.997, accuracy: 1e-6)
        XCTAssertEqual(w.array[1], 3.996, accuracy: 1e-6)
        // excluded: no decay, no trust ratio: b −= 1·0.2
        XCTAssertEqual(b.item, 0.8, accuracy: 1e-6)
    }

    func testSchedules() {
        XCTAssertEqual(Schedule.cosine(totalSteps: 100).factor(at: 0), 1)
        XCTAssertEqual(Schedule.cosine(totalSteps: 100).factor(at: 50), 0.5, accuracy: 1e-6)
        XCTAssertEqual(Schedule.cosine(totalSteps: 100).factor(at: 100), 0, accuracy: 1e-6)
        XCTAssertEqual(Schedule.cosine(totalSteps: 100, floor: 0.1).factor(at: 100), 0.1, accuracy: 1e-6)
        let warm = Schedule.warmup(warmupSteps: 10, after: .cosine(totalSteps: 110))
        XCTAssertEqual(warm.factor(at: 0), 0.1, accuracy: 1e-6)
        XCTAssertEqual(warm.factor(at: 9), 1, accuracy: 1e-6)
        XCTAssertEqual(warm.factor(at: 55), 0.5, accuracy: 1e-6)
        XCTAssertEqual(Schedule.step(milestones: [10, 20], gamma: 0.1).factor(at: 15), 0.1, accuracy: 1e-7)
        XCTAssertEqual(Schedule.step(milestones: [10, 20], gamma: 0.1).factor(at: 20), 0.01, accuracy: 1e-8)
        // A fixed-rate group ignores the schedule (SimSiam's predictor).
        let a = param([0]), b = param([0])
        let opt = SGD(groups: [ParameterGroup([("a", a)], learningRate: 0.1),
                               ParameterGroup([("b", b)], learningRate: 0.1, fixedLearningRate: true)],
                      schedule: .cosine(totalSteps: 2))
        for _ in 0..<2 { opt.step() }
        XCTAssertEqual(opt.learningRate(group: 0), 0, accuracy: 1e-7)
        XCTAssertEqual(opt.learningRate(group: 1), 0.1)
    }

    /// Least squares min ‖Xw − y‖² with a known solution; every optimizer must get there.
    func testEachOptimizerSolvesLeastSquares() {
        var rng = RNG(seed: 4)
        let x = Tensor.randn([64, 5], rng: &rng), truth = Tensor([1, -2, 0.5, 3, -1], shape: [5, 1])
        let y = withoutGradients { x.matmul(truth) }
        let makers: [(String, (ParameterGroup) -> Optimizer, Int)] = [
            ("SGD", { SGD(groups: [$0], momentum: 0.9) }, 300),
            ("SGD-nesterov", { SGD(groups: [$0], momentum: 0.9, nesterov: true) }, 300),
            ("Adam", { Adam(groups: [$0]) }, 1500),
            // LARS's step is trust·‖w‖·g/‖g‖: its length does not shrink with the gradient, so at a
            // constant rate it orbits the solution at a radius set by rounding (≈1e-2, and different
            // BLAS kernels land on either side of any bound). Decaying the rate to zero, as every
            // LARS recipe does, makes it converge.
            ("LARS", { LARS(groups: [$0], momentum: 0.9, trustCoefficient: 0.02,
                            schedule: .cosine(totalSteps: 1500)) }, 1500),
        ]
        for (name, make, steps) in makers {
            let w = Tensor.zeros([5, 1], requiresGrad: true)
            w.pointer.update(repeating: 0.1, count: 5)   // LARS needs ‖w‖ > 0 to move
            let lr: Float = name == "Adam" ? 0.05 : (name == "LARS" ? 0.5 : 0.02)
            let opt = make(ParameterGroup([("w", w)], learningRate: lr))
            for _ in 0..<steps {
                w.grad = nil
                meanSquaredError(x.matmul(w), y).backward()
                opt.step()
            }
            let err = zip(w.array, truth.array).map { Swift.abs($0 - $1) }.max()!
            XCTAssertLessThan(err, 1e-3, "\(name) ended at \(w.array)")
        }
    }
}
