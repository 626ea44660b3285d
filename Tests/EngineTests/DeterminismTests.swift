import Engine
import Foundation
import TestSupport
import XCTest

/// Same seed, same machine, same thread count → bit-identical numbers.
final class DeterminismTests: XCTestCase {
    /// A few SGD steps of a small conv net (conv, batch norm, relu, max-pool, conv-transpose,
    /// linear, cross-entropy); returns the bit patterns of every final weight.
    static func fingerprint(seed: UInt64) -> [UInt32] {
        let run = RNG(seed: seed)
        var initRNG = run.derive("init"), data = run.derive("data")
        let w1 = Tensor.randn([8, 1, 3, 3], std: 0.3, rng: &initRNG, requiresGrad: true)
        let w2 = Tensor.randn([8, 8, 3, 3], std: 0.1, rng: &initRNG, requiresGrad: true)
        let wt = Tensor.randn([8, 4, 4, 4], std: 0.1, rng: &initRNG, requiresGrad: true)
        let fc = Tensor.randn([10, 4 * 14 * 14], std: 0.02, rng: &initRNG, requiresGrad: true)
        let gamma = Tensor.ones([8], requiresGrad: true), beta = Tensor.zeros([8], requiresGrad: true)
        let rm = Tensor.zeros([8]), rv = Tensor.ones([8])
        let params = [w1, w2, wt, fc, gamma, beta]
        for _ in 0..<3 {
            let x = Tensor.randn([32, 1, 28, 28], rng: &data)
            let labels = (0..<32).map { _ in data.int(below: 10) }
            var h = conv2d(x, weight: w1, padding: 1)
            h = batchNorm(h, weight: gamma, bias: beta, runningMean: rm, runningVar: rv, training: true).relu()
            h = conv2d(h, weight: w2, stride: 2, padding: 1).relu().maxPool2d(kernel: 2)
            h = convTranspose2d(h, weight: wt, stride: 2, padding: 1).relu()
            let loss = crossEntropy(linear(h.flattened(), weight: fc, bias: nil), labels: labels)
            for p in params { p.grad = nil }
            loss.backward()
            withoutGradients { for p in params { p.assign(p - p.grad! * 0.1) } }
        }
        return (params + [rm, rv]).flatMap { $0.array.map(\.bitPattern) }
    }

    func testSameSeedSameBitsInOneProcess() {
        for threads in [1, 2] {
            withThreads(threads) {
                let a = Self.fingerprint(seed: 7), b = Self.fingerprint(seed: 7)
                XCTAssertEqual(a, b)
                XCTAssertNotEqual(a, Self.fingerprint(seed: 8))
            }
        }
    }

    /// Writes the fingerprint to $REPLICA_FINGERPRINT_OUT when run as a child of
    /// `testSameSeedSameBitsAcrossProcesses`; on its own it checks one more in-process replay.
    func testFingerprintChild() throws {
        let bits = Self.fingerprint(seed: 7)
        if let path = ProcessInfo.processInfo.environment["REPLICA_FINGERPRINT_OUT"] {
            try Data(bits.map { String($0, radix: 16) }.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: path))
        } else {
            XCTAssertEqual(bits, Self.fingerprint(seed: 7))
        }
    }

    func testSameSeedSameBitsAcrossProcesses() throws {
        let binary = CommandLine.arguments[0]
        guard binary.hasSuffix(".xctest") else { throw XCTSkip("not running from an .xctest bundle: \(binary)") }
        var outputs: [String] = []
        for run in 0..<2 {
            let path = NSTemporaryDirectory() + "replica-fingerprint-\(getpid())-\(run)"
            let child = Process()
            child.executableURL = URL(fileURLWithPath: binary)
            child.arguments = ["EngineTests.DeterminismTests/testFingerprintChild"]
            var env = ProcessInfo.processInfo.environment
            env["REPLICA_FINGERPRINT_OUT"] = path
            env["REPLICA_THREADS"] = String(Threads.count)
            child.environment = env
            child.standardOutput = FileHandle.nullDevice
            child.standardError = FileHandle.nullDevice
            try child.run()
            child.waitUntilExit()
            XCTAssertEqual(child.terminationStatus, 0)
            outputs.append(try String(contentsOfFile: path, encoding: .utf8))
            try? FileManager.default.removeItem(atPath: path)
        }
        XCTAssertFalse(outputs[0].isEmpty)
        XCTAssertEqual(outputs[0], outputs[1])
        XCTAssertEqual(outputs[0], Self.fingerprint(seed: 7).map { String($0, radix: 16) }.joined(separator: "\n"))
    }
}
