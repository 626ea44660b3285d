import Datasets
import Engine
import Foundation
import Harness
import XCTest

/// A fresh temporary folder per test (`dir`), removed afterwards.
open class TempDirTestCase: XCTestCase {
    public var dir: String!
    open override func setUp() {
        super.setUp()
        dir = NSTemporaryDirectory() + "replica-\(type(of: self))-\(getpid())-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    open override func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
        super.tearDown()
    }

    /// A small deterministic image set.
    public func sampleSet(count: Int, h: Int = 5, w: Int = 4, c: Int = 1, classes: Int = 3) -> ImageSet {
        ImageSet(pixels: (0..<(count * h * w * c)).map { UInt8(($0 * 37 + 11) % 256) }, labels: (0..<count).map { $0 % classes },
                 height: h, width: w, channels: c)
    }

    /// Run options for a quiet run into `dir/<sub>`.
    public func quietOptions(_ sub: String, profile: String = "smoke") -> RunOptions {
        var o = RunOptions()
        o.profile = profile
        o.resultsRoot = dir + "/" + sub
        o.log = { _ in }
        return o
    }

    /// The real experiment file's smoke profile on the real Fashion-MNIST file (`make data`
    /// builds it; skipped without it), into `dir/results`.
    public func smokeRun<E: Experiment>(_ type: E.Type, _ experiment: String, dataset: String? = nil, arms: [String]? = nil,
                                        overrides: [(String, Any)] = []) throws -> RunSummary {
        let fashion = repositoryRoot + "/data/fashion-mnist.h5"
        guard dataset != nil || FileManager.default.fileExists(atPath: fashion) else { throw XCTSkip("data/fashion-mnist.h5 is missing: `make data` builds it") }
        let file = try ExperimentFile(path: repositoryRoot + "/experiments/\(experiment).yaml")
        var o = quietOptions("results")
        (o.dataset, o.arms, o.overrides) = (dataset, arms, overrides)   // nil: the file's own (relative to the root, where tests run)
        guard let summary = try runExperiment(E.self, file: file, options: o) else { throw RunError("the run was interrupted") }
        return summary
    }
}

/// The repository root (experiments/, data/ built by `make data`).
public let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
