import Foundation

/// Bad input, reported as one clear line naming the file (and dataset or key) and what
/// was expected.
public struct DataError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let message: String
    public init(_ file: String, _ message: String) { self.file = file; self.message = message }
    public var description: String { "\(file): \(message)" }
}
