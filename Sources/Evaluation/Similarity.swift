import Engine
import Foundation

/// Dot products of query rows with every bank row, computed so that a value depends only on
/// its two vectors: the work is cut into blocks of one fixed shape (`queryBlock` queries ×
/// `bankBlock` bank rows, zero-padded at the ends), each one single-threaded sgemm. A BLAS
/// kernel may order a dot product differently for another matrix shape or another position
/// at an edge; with every call the same shape, a query's similarities (and so its
/// neighbours) are the same alone, inside a large file, or at any thread count.
public struct SimilarityBlocks {
    public static let queryBlock = 256, bankBlock = 1024
    let bank: [Float], count: Int, dimension: Int

    /// `bank`: row-major [count, dimension], zero-padded here to whole blocks.
    public init(bank values: [Float], count: Int, dimension: Int) {
        let padded = (count + Self.bankBlock - 1) / Self.bankBlock * Self.bankBlock
        bank = values + [Float](repeating: 0, count: (padded - count) * dimension)
        (self.count, self.dimension) = (count, dimension)
    }

    /// Similarities of `m` ≤ `queryBlock` query rows (row-major, `dimension` each) into
    /// `out` [m, count].
    public func compute(queries: UnsafePointer<Float>, count m: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(m <= Self.queryBlock, "at most \(Self.queryBlock) queries per call")
        let (q, b, d) = (Self.queryBlock, Self.bankBlock, dimension)
        var block = [Float](repeating: 0, count: q * d)
        block.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: queries, count: m * d) }
        let blocks = bank.count / (b * max(d, 1))
        block.withUnsafeBufferPointer { qp in bank.withUnsafeBufferPointer { bp in
            Threads.parallelFor(blocks) { _, r in
                var c = [Float](repeating: 0, count: q * b)
                c.withUnsafeMutableBufferPointer { cp in
                    for j in r {
                        gemm(transB: true, m: q, n: b, k: d, a: qp.baseAddress!, lda: d, b: bp.baseAddress! + j * b * d, ldb: d,
                             c: cp.baseAddress!, ldc: b, parallel: false)
                        let columns = Swift.min(b, count - j * b)
                        for i in 0..<m { (out + i * count + j * b).update(from: cp.baseAddress! + i * b, count: columns) }
                    }
                }
            }
        } }
    }
}
