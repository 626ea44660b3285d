import Datasets
import Engine
import Foundation
import Harness
import LVAE
import TestSupport
import XCTest

final class LVAEDataTests: XCTestCase {
    /// Pixels of intensity 0, 51, 128 and 255 are drawn on with probability 0, 0.2, 128/255
    /// and 1, in the training batches (fresh each draw) and in the test images (drawn once).
    func testBinarisationDrawsEachPixelWithItsIntensity() {
        let levels: [UInt8] = [0, 51, 128, 255], n = 5000
        let set = ImageSet(pixels: [UInt8]((0..<n).flatMap { _ in levels }), labels: [Int](repeating: 0, count: n), height: 2, width: 2, channels: 1)
        let data = BinarisedFashion(train: set, test: set, testImages: n)
        var rng = RNG(seed: 3)
        let train = data.binarise(Array(0..<n), rng: &rng).array, test = data.test(0..<n).array
        for (j, level) in levels.enumerated() {
            let p = Double(level) / 255, sd = (p * (1 - p) / Double(n)).squareRoot()
            for (name, x) in [("train", train), ("test", test)] {
                let freq = Double(stride(from: j, to: x.count, by: 4).filter { x[$0] == 1 }.count) / Double(n)
                XCTAssertEqual(freq, p, accuracy: 4 * sd + 1e-12, "\(name) pixel \(level)")
            }
        }
        // The training draws change with the stream; the test images are the same every time.
        var other = RNG(seed: 4)
        XCTAssertNotEqual(data.binarise(Array(0..<100), rng: &other).array, Array(train[0..<400]))
        XCTAssertEqual(BinarisedFashion(train: set, test: set, testImages: n).test(0..<n).array, test)
        // Repetition: each test image K times in a row.
        let repeated = data.test(3..<5, repeating: 3).array
        XCTAssertEqual(repeated.count, 2 * 3 * 4)
        for r in 0..<3 { XCTAssertEqual(Array(repeated[(r * 4)..<(r * 4 + 4)]), Array(test[12..<16])) }
        XCTAssertEqual(Array(repeated[12..<16]), Array(test[16..<20]))
    }
}

final class LVAEExperimentTests: TempDirTestCase {
    func testSmokeProfileRunsEveryArmAndDrawsItsPictures() throws {
        let s = try smokeRun(LVAEExperiment.self, "lvae")
        XCTAssertEqual(s.arms.map(\.name), ["vae1", "vae3", "vae3_bn_wu", "lvae", "lvae_separate"])
        let final = ["test_elbo", "test_ll_iw", "iw_gap", "active_units_1", "active_units_upper"]
        for a in s.arms {
            let layers = a.name == "vae1" ? 1 : 3
            XCTAssertEqual(a.steps, 16, a.name)   // 512 images in batches of 64, 2 epochs
            XCTAssertEqual(a.history.count, 2)
            for k in final + (1...layers).map({ "kl_\($0)" }) + (1...layers).map({ "active_units_\($0)" }) { XCTAssertNotNil(a.metrics[k], "\(a.name) \(k)") }
            XCTAssertNil(a.metrics["kl_\(layers + 1)"], a.name)
            let m = a.metrics
            // The IWAE bound is at least the ELBO of its own samples; the counts are the layers'.
            XCTAssertGreaterThanOrEqual(try XCTUnwrap(m["iw_gap"]), 0, a.name)
            XCTAssertEqual(m["active_units_upper"], (2...3).compactMap { m["active_units_\($0)"] }.reduce(0, +), a.name)
            XCTAssertLessThanOrEqual(try XCTUnwrap(m["active_units_1"]), 32, a.name)
            for f in ["samples", "reconstructions"] { XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir!)/results/lvae/smoke/\(a.name)-\(f).png"), "\(a.name) \(f)") }
        }
        // Warm-up: β rises over the first epoch in the arms that have it, and is 1 throughout in the others.
        let beta = { (arm: String) in s.arms.first { $0.name == arm }!.history.map { $0["beta"]! } }
        XCTAssertEqual(beta("vae3"), [1, 1])
        XCTAssertEqual(beta("lvae")[0], 7.0 / 8, accuracy: 1e-6)   // the last of 8 steps of the warm-up epoch: 7/8
        XCTAssertEqual(beta("lvae")[1], 1)
        XCTAssertEqual(s.references.map(\.name), ["independent pixels"])
        XCTAssertEqual(s.claimResults.map(\.claim.id), ["C-LV1", "C-LV2", "C-LV3", "C-LV4"])
        let svg = try String(contentsOfFile: "\(dir!)/results/lvae/smoke/curves.svg", encoding: .utf8)
        XCTAssertTrue(svg.contains("kl_3"))
    }

    /// The independent-pixels row is the exact log-likelihood of its model: recomputed here
    /// from the file, with the same smoothing and the same fixed test binarisation.
    func testIndependentPixelsRowIsItsExactLogLikelihood() throws {
        let s = try smokeRun(LVAEExperiment.self, "lvae", arms: ["vae1"])
        let row = try XCTUnwrap(s.references.first).metrics
        let train = try DatasetFile.read(repositoryRoot + "/data/fashion-mnist.h5", split: "train").set
        let test = try DatasetFile.read(repositoryRoot + "/data/fashion-mnist.h5", split: "test").set
        let (n, m) = (512, 200), d = train.imageSize
        let x = BinarisedFashion(train: train, test: test, testImages: m).test(0..<m).array
        var total = 0.0
        for j in 0..<d {
            var sum = 0.5
            for i in 0..<n { sum += Double(train.pixels[i * d + j]) / 255 }
            let p = sum / Double(n + 1)
            for i in 0..<m { total += x[i * d + j] == 1 ? log(p) : log(1 - p) }
        }
        XCTAssertEqual(try XCTUnwrap(row["test_elbo"]), total / Double(m), accuracy: 1e-6)
        XCTAssertEqual(row["iw_gap"], 0)
    }

    func testRunsAreReproducible() throws {
        let a = try smokeRun(LVAEExperiment.self, "lvae", arms: ["lvae"]).arms[0]
        let b = try smokeRun(LVAEExperiment.self, "lvae", arms: ["lvae"]).arms[0]
        XCTAssertEqual(a.metrics, b.metrics)
        XCTAssertEqual(a.history, b.history)
    }

    func testBadValuesNameTheirKey() throws {
        for (key, value, expected) in [("latents", [] as [Int] as Any, "config.latents"), ("widths", [256, 128] as Any, "config.widths"),
                                       ("latents", [32, 16, 8, 4, 2, 1] as Any, "config.latents"), ("train_images", 70000 as Any, "config.train_images"),
                                       ("scores.iw_images", 1 as Any, "config.scores.iw_images"), ("scores.iw_samples", 0 as Any, "config.scores.iw_samples"),
                                       ("warmup_epochs", -1 as Any, "config.warmup_epochs"), ("clip_value", 0 as Any, "config.clip_value"),
                                       ("batch_size", 1 as Any, "config.batch_size"), ("warmup", 3 as Any, "warmup")] {
            XCTAssertThrowsError(try smokeRun(LVAEExperiment.self, "lvae", arms: ["vae3"], overrides: [(key, value)])) { e in
                XCTAssertTrue("\(e)".contains(expected), "\(key): \(e)")
            }
        }
    }
}
