import Engine
import TestSupport
import XCTest

final class RNGTests: XCTestCase {
    func testMomentsOfUniformAndNormal() {
        var rng = RNG(seed: 1)
        let n = 200_000
        let u = (0..<n).map { _ in Double(rng.uniform()) }
        let mu = u.reduce(0, +) / Double(n)
        XCTAssertEqual(mu, 0.5, accuracy: 0.005)
        XCTAssertEqual(u.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(n), 1.0 / 12, accuracy: 0.002)
        XCTAssertTrue(u.allSatisfy { $0 >= 0 && $0 < 1 })
        let z = (0..<n).map { _ in Double(rng.normal()) }
        let zm = z.reduce(0, +) / Double(n)
        XCTAssertEqual(zm, 0, accuracy: 0.01)
        XCTAssertEqual(z.map { ($0 - zm) * ($0 - zm) }.reduce(0, +) / Double(n), 1, accuracy: 0.02)
        XCTAssertEqual(Double(z.filter { Swift.abs($0) < 1 }.count) / Double(n), 0.6827, accuracy: 0.005)
    }

    func testIntegersPermutationAndBernoulli() {
        var rng = RNG(seed: 2)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 { counts[rng.int(below: 7)] += 1 }
        XCTAssertTrue(counts.allSatisfy { Swift.abs($0 - 10_000) < 400 }, "\(counts)")
        let p = rng.permutation(1000)
        XCTAssertEqual(p.sorted(), Array(0..<1000))
        XCTAssertNotEqual(p, Array(0..<1000))
        let hits = (0..<100_000).filter { _ in rng.bernoulli(0.3) }.count
        XCTAssertEqual(Double(hits) / 100_000, 0.3, accuracy: 0.005)
    }

    func testDerivedStreamsAreReproducibleAndIndependentOfConsumption() {
        let run = RNG(seed: 42)
        var a = run.derive("augment"), b = run.derive("augment"), c = run.derive("init")
        let sa = (0..<8).map { _ in a.next() }
        XCTAssertEqual(sa, (0..<8).map { _ in b.next() })
        XCTAssertNotEqual(sa, (0..<8).map { _ in c.next() })
        // Drawing from the parent does not change what a derived stream yields.
        var parent = run
        _ = parent.next()
        var d = parent.derive("augment")
        XCTAssertEqual(sa, (0..<8).map { _ in d.next() })
        var s1 = run.derive(1), s2 = run.derive(2)
        XCTAssertNotEqual(s1.next(), s2.next())
        XCTAssertNotEqual(RNG(seed: 42).derive(0).key, RNG(seed: 43).derive(0).key)
    }
}
