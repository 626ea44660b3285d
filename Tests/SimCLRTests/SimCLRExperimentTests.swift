import Engine
import Evaluation
import Foundation
import Harness
import NN
import Representation
import SimCLR
import TestSupport
import XCTest

final class SimCLRExperimentTests: TempDirTestCase {
    func testHeadsAndKeys() {
        var rng = RNG(seed: 1)
        let mlp = ContrastiveNetwork(width: .lite, inputChannels: 1, head: .mlp, hidden: 128, output: 64, rng: &rng)
        XCTAssertEqual(mlp.namedParameters().filter { $0.key.hasPrefix("head.") }.map { "\($0.key) \($0.tensor.shape)" }.sorted(),
                       ["head.0.weight [128, 128]", "head.1.bias [128]", "head.1.weight [128]", "head.3.bias [64]", "head.3.weight [64, 128]"])
        let linear = ContrastiveNetwork(width: .lite, inputChannels: 1, head: .linear, hidden: 128, output: 64, rng: &rng)
        XCTAssertEqual(linear.namedParameters().filter { $0.key.hasPrefix("head.") }.map { "\($0.key) \($0.tensor.shape)" }.sorted(),
                       ["head.0.bias [64]", "head.0.weight [64, 128]"])
        let none = ContrastiveNetwork(width: .lite, inputChannels: 1, head: .none, hidden: 128, output: 64, rng: &rng)
        XCTAssertTrue(none.namedParameters().allSatisfy { $0.key.hasPrefix("backbone.") })
        XCTAssertEqual(none.outputCount, 128)
        XCTAssertEqual(withoutGradients { mlp(Tensor.zeros([3, 1, 28, 28])) }.shape, [3, 64])
    }

    func testSmokeProfileRunsEveryArmWithItsMonitors() throws {
        let s = try smokeRun(SimCLRExperiment.self, "simclr")
        XCTAssertEqual(s.arms.map(\.name), ["tau_0.05", "tau_0.2", "tau_0.5", "tau_1.0", "linear_head", "no_head"])
        for a in s.arms {
            let m = a.metrics
            XCTAssertEqual(m["loss_plateau"]!, log(63), accuracy: 1e-9, a.name)   // 2N − 1 = 63 candidates at N = 32
            XCTAssertGreaterThan(m["positive_cosine"]!, m["negative_cosine"]!, a.name)
            XCTAssertEqual(a.steps, 200 / 32, a.name)
            XCTAssertEqual(a.imagesPerStep, 64)
            for k in ["knn_top1", "linear_top1", "kmeans_nmi", "kmeans_ami", "std_sqrt_d", "effective_rank"] { XCTAssertNotNil(m[k], "\(a.name) \(k)") }
            XCTAssertEqual(m["knn_gap_h_z"] != nil, a.name == "tau_0.5", a.name)   // z is evaluated where the file asks
        }
        let z = s.arms[2].metrics
        XCTAssertEqual(z["knn_gap_h_z"]!, z["knn_top1"]! - z["knn_top1_z"]!, accuracy: 1e-12)
        XCTAssertEqual(z["linear_gap_h_z"]!, z["linear_top1"]! - z["linear_top1_z"]!, accuracy: 1e-12)
        XCTAssertEqual(s.claimResults.map(\.claim.id), ["C-SC1a", "C-SC1b", "C-SC2", "C-SC2b", "C-SC3"])
    }

    func testBadValuesNameTheirKey() throws {
        for (key, value, expected) in [("temperature", 0 as Any, "config.temperature"), ("temperature", -0.5 as Any, "config.temperature"),
                                       ("head_dimension", 0 as Any, "config.head_dimension"), ("head_hidden", 0 as Any, "config.head_hidden"),
                                       ("views", 1 as Any, "config.views"), ("batch_size", 1 as Any, "config.batch_size"),
                                       ("head", "deep" as Any, "head"), ("temprature", 0.1 as Any, "temprature")] {
            XCTAssertThrowsError(try smokeRun(SimCLRExperiment.self, "simclr", arms: ["tau_0.5"], overrides: [(key, value)])) { e in
                XCTAssertTrue("\(e)".contains(expected), "\(key): \(e)")
            }
        }
    }
}
