import Foundation

/// Row-major features [count, dimension] with integer labels: what every metric consumes.
public struct Features {
    public var values: [Float]
    public var count: Int, dimension: Int
    public var labels: [Int]

    public init(values: [Float], count: Int, dimension: Int, labels: [Int]) {
        precondition(values.count == count * dimension, "\(values.count) values for \(count)×\(dimension) features")
        precondition(labels.count == count, "\(labels.count) labels for \(count) features")
        (self.values, self.count, self.dimension, self.labels) = (values, count, dimension, labels)
    }

    /// Each row divided by its Euclidean norm (rows of zeros stay zero).
    public func l2Normalized() -> Features {
        var out = values
        for i in 0..<count {
            var s: Float = 0
            for j in 0..<dimension { s += values[i * dimension + j] * values[i * dimension + j] }
            let inv = 1 / Swift.max(s.squareRoot(), 1e-12)
            for j in 0..<dimension { out[i * dimension + j] *= inv }
        }
        return Features(values: out, count: count, dimension: dimension, labels: labels)
    }

    public func row(_ i: Int) -> ArraySlice<Float> { values[(i * dimension)..<((i + 1) * dimension)] }
}

/// Invalid evaluation input, with what was expected.
public struct EvaluationError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
