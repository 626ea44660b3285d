import Foundation

/// A problem with an input file: printed as one line, exit status 1, no usage text
/// (ValidationError is for bad options).
struct InputError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
