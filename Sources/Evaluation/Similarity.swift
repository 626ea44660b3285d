import CKernels
import Engine
import Foundation

/// Dot products of query rows with every bank row, computed so that a value depends only on
/// its two vectors. BLAS kernels do not promise that: OpenBLAS's Haswell sgemm kernel (the one
/// it picks on AVX2 machines and on CPUs it does not know) rounds rows 6–11 of every 12-row
/// tile differently from rows 0–5, so a query's similarities changed with its position in a
/// block. Here every value is one accumulation in k order with the same instruction in every
/// lane (`replica_dots`), over bank blocks of `bankBlock` rows (zero-padded, packed for the
/// kernel), one block per task: a query's similarities (and so its neighbours) are the same
/// alone, inside a large file at any position, and at any thread count.
public struct SimilarityBlocks {
    public static let queryBlock = 256, bankBlock = 1024
    /// The bank, block by block, each block packed by `replica_dots_pack`.
    let bankT: [Float]
    let count: Int, dimension: Int

    /// `bank`: row-major [count, dimension].
    public init(bank values: [Float], count: Int, dimension d: Int) {
        let b = Self.bankBlock, blocks = (count + b - 1) / b
        bankT = [Float](unsafeUninitializedCapacity: blocks * b * d) { t, initialized in
            values.withUnsafeBufferPointer { v in
                for j in 0..<blocks {
                    replica_dots_pack(v.baseAddress! + j * b * d, Int32(Swift.min(b, count - j * b)), Int32(d), Int32(b), t.baseAddress! + j * b * d)
                }
            }
            initialized = blocks * b * d
        }
        (self.count, self.dimension) = (count, d)
    }

    /// Similarities of `m` ≤ `queryBlock` query rows (row-major, `dimension` each) into
    /// `out` [m, count].
    public func compute(queries: UnsafePointer<Float>, count m: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(m <= Self.queryBlock, "at most \(Self.queryBlock) queries per call")
        guard m > 0, count > 0 else { return }
        let (b, d) = (Self.bankBlock, dimension)
        guard d > 0 else { out.update(repeating: 0, count: m * count); return }
        let rows = (m + Int(REPLICA_DOTS_ROWS) - 1) / Int(REPLICA_DOTS_ROWS) * Int(REPLICA_DOTS_ROWS)
        var block = [Float](repeating: 0, count: rows * d)
        block.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: queries, count: m * d) }
        block.withUnsafeBufferPointer { qp in bankT.withUnsafeBufferPointer { bp in
            Threads.parallelFor(bankT.count / (b * d)) { _, r in
                var staging: [Float] = []   // for a block whose padding rows or columns do not fit `out`
                for j in r {
                    let columns = Swift.min(b, count - j * b)
                    if rows == m && columns == b {
                        replica_dots(qp.baseAddress!, Int32(rows), bp.baseAddress! + j * b * d, Int32(b), Int32(d), out + j * b, Int32(count))
                        continue
                    }
                    if staging.isEmpty { staging = [Float](repeating: 0, count: rows * b) }
                    staging.withUnsafeMutableBufferPointer { cp in
                        replica_dots(qp.baseAddress!, Int32(rows), bp.baseAddress! + j * b * d, Int32(b), Int32(d), cp.baseAddress!, Int32(b))
                        for i in 0..<m { (out + i * count + j * b).update(from: cp.baseAddress! + i * b, count: columns) }
                    }
                }
            }
        } }
    }
}
