import Datasets
import Foundation
import TestSupport
import XCTest

extension TempDirTestCase {
    /// Asserts that `body` throws a DataError naming `file` and containing `text`.
    func assertDataError(_ file: String, _ text: String, line: UInt = #line, _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), line: line) { e in
            guard let d = e as? DataError else { return XCTFail("not a DataError: \(e)", line: line) }
            XCTAssertEqual(d.file, file, line: line)
            XCTAssertTrue(d.message.contains(text), "message: \(d.message)", line: line)
        }
    }
}
