import Engine
import Foundation
import HDF5IO
import NN
import TestSupport
import XCTest

final class CheckpointTests: XCTestCase {
    var dir: String!
    override func setUp() {
        dir = NSTemporaryDirectory() + "replica-ckpt-\(getpid())-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    final class Net: Module {
        let backbone: ConvNet4, head: Linear
        init(seed: UInt64) {
            var rng = RNG(seed: seed)
            backbone = ConvNet4(width: .lite, rng: &rng)
            head = Linear(128, 3, rng: &rng)
        }
    }

    func trainSteps(_ net: Net, _ opt: Optimizer, _ n: Int, seed: UInt64) {
        var rng = RNG(seed: seed)
        for _ in 0..<n {
            let x = Tensor.randn([8, 1, 28, 28], rng: &rng)
            net.zeroGrad()
            crossEntropy(net.head(net.backbone(x)), labels: (0..<8).map { $0 % 3 }).backward()
            opt.step()
        }
    }

    func makeOptimizer(_ net: Net) -> SGD {
        SGD(groups: net.parameterGroups(learningRate: 0.05, weightDecay: 5e-4, noDecayOnBiasAndNorm: true),
            momentum: 0.9, schedule: .cosine(totalSteps: 10))
    }

    /// Save after 3 steps, load into fresh objects, continue 2 steps: bit-identical to 5
    /// uninterrupted steps (parameters, BN buffers, momentum and the step count round-trip).
    func testRoundTripContinuesBitIdentically() throws {
        let net = Net(seed: 1), opt = makeOptimizer(net)
        trainSteps(net, opt, 3, seed: 10)
        let path = dir + "/a.h5"
        let meta = CheckpointMetadata(config: #"{"width":"lite"}"#, seed: 1, epoch: 1, step: 3, gitCommit: "abc")
        try Checkpoint.save(net, optimizer: opt, metadata: meta, to: path)
        trainSteps(net, opt, 2, seed: 11)

        let net2 = Net(seed: 99), opt2 = makeOptimizer(net2)
        XCTAssertEqual(try Checkpoint.load(into: net2, optimizer: opt2, from: path), meta)
        XCTAssertEqual(opt2.stepCount, 3)
        XCTAssertEqual(opt2.state.count, opt.state.count)
        trainSteps(net2, opt2, 2, seed: 11)
        for ((k1, t1), (k2, t2)) in zip(net.stateDict(), net2.stateDict()) {
            XCTAssertEqual(k1, k2)
            XCTAssertEqual(t1.array.map(\.bitPattern), t2.array.map(\.bitPattern), k1)
        }
        // Optimizer state of another kind is refused.
        XCTAssertThrowsError(try Checkpoint.load(into: Net(seed: 5), optimizer: Adam(groups: Net(seed: 5).parameterGroups(learningRate: 1, weightDecay: 0)), from: path)) { e in
            XCTAssertTrue("\(e)".contains("optimizer state is for SGD, not Adam"), "\(e)")
        }
    }

    func testLayoutIsPyTorchLoadable() throws {
        var rng = RNG(seed: 2)
        let m = ConvNet4(width: .lite, rng: &rng)
        _ = m(Tensor.randn([2, 1, 28, 28], rng: &rng))
        let path = dir + "/b.h5"
        try Checkpoint.save(m, metadata: CheckpointMetadata(), to: path)
        let f = try HDF5File(reading: path)
        XCTAssertEqual(try f.children(of: "/model").count, 24)
        let (w, shape) = try f.readFloats("/model/layers.0.weight")
        XCTAssertEqual(shape, [16, 1, 3, 3])   // OIHW
        XCTAssertEqual(w, m.stateDict()[0].tensor.array)
        XCTAssertEqual(try f.info("/model/layers.1.num_batches_tracked").type, .int64)
        XCTAssertEqual(try f.readInt64s("/model/layers.1.num_batches_tracked").values, [1])
        XCTAssertEqual(try f.stringAttribute("format"), Checkpoint.format)
    }

    func testLoadingIntoAnotherShapeNamesTheFirstMismatchingKey() throws {
        var rng = RNG(seed: 3)
        let path = dir + "/c.h5"
        try Checkpoint.save(ConvNet4(width: .lite, rng: &rng), metadata: CheckpointMetadata(), to: path)
        XCTAssertThrowsError(try Checkpoint.load(into: ConvNet4(width: .standard, rng: &rng), from: path)) { e in
            XCTAssertEqual("\(e)", "\(path): key 'layers.0.weight': the model expects shape [32, 1, 3, 3], the checkpoint has [16, 1, 3, 3]")
        }
        XCTAssertThrowsError(try Checkpoint.load(into: ResNet18(rng: &rng), from: path)) { e in
            XCTAssertTrue("\(e)".contains("checkpoint has no key 'stem.0.weight'"), "\(e)")
        }
        XCTAssertThrowsError(try Checkpoint.load(into: ConvNet4(width: .lite, rng: &rng), from: dir + "/missing.h5")) { e in
            XCTAssertTrue("\(e)".contains("no such file"), "\(e)")
        }
        // A truncated file is an error naming it, not a crash.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: dir + "/truncated.h5"))
        XCTAssertThrowsError(try Checkpoint.load(into: ConvNet4(width: .lite, rng: &rng), from: dir + "/truncated.h5")) { e in
            XCTAssertTrue("\(e)".hasPrefix(dir + "/truncated.h5: "), "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".tmp-\(getpid())"))
    }
}
