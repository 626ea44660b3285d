import Datasets
import Foundation
import XCTest

/// A fresh temporary folder per test.
class TempDirTestCase: XCTestCase {
    var dir: String!
    override func setUp() {
        dir = NSTemporaryDirectory() + "replica-\(type(of: self))-\(getpid())-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Asserts that `body` throws a DataError naming `file` and containing `text`.
    func assertDataError(_ file: String, _ text: String, line: UInt = #line, _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), line: line) { e in
            guard let d = e as? DataError else { return XCTFail("not a DataError: \(e)", line: line) }
            XCTAssertEqual(d.file, file, line: line)
            XCTAssertTrue(d.message.contains(text), "message: \(d.message)", line: line)
        }
    }

    /// A small deterministic image set.
    func sampleSet(count: Int, h: Int = 5, w: Int = 4, c: Int = 1, classes: Int = 3) -> ImageSet {
        ImageSet(pixels: (0..<(count * h * w * c)).map { UInt8(($0 * 37 + 11) % 256) }, labels: (0..<count).map { $0 % classes },
                 height: h, width: w, channels: c)
    }
}

/// The repository root (for data/ built by `make data`).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
