import CKernels
import CBLAS
import Dispatch
import Foundation

/// The engine's worker count and its parallel loop.
///
/// Kernels split work into `Threads.count` contiguous chunks whose boundaries depend only on
/// the problem size and the thread count, and reduce partial results in chunk order, so a
/// run replays bit-exactly for the same thread count. OpenBLAS is kept single-threaded; the
/// engine splits large GEMMs itself, so the two never oversubscribe the cores.
public enum Threads {
    /// Whether the engine's GEMM runs on BLIS (`replica_blis_open` in CKernels) instead of
    /// OpenBLAS.
    public static var usesBLIS: Bool { setup }

    private static let setup: Bool = {
        _ = replica_openblas_repin()
        openblas_set_num_threads(1)
        // Buffers of 1 MiB and more come from the engine's own pool (CKernels buffers.c).
        // Below that, glibc would serve 128 KiB–1 MiB blocks with fresh mmaps (or trim
        // them back to the OS), and every reuse would page-fault and zero the pages again;
        // keep them in the heap instead.
        mallopt(M_MMAP_THRESHOLD, 1 << 30)
        mallopt(M_TRIM_THRESHOLD, Int32.max)
        return replica_blis_open() == 1
    }()

    /// Runs the one-time set-up (OpenBLAS single-threaded, the GEMM library, allocator tuning) if nothing has
    /// yet; the BLAS and LAPACK call sites call it first, so that no product runs on
    /// OpenBLAS's own threads before the engine has claimed the cores.
    @inline(__always) public static func prepare() { _ = setup }

    nonisolated(unsafe) private static var configured: Int = {
        let environment = ProcessInfo.processInfo.environment
        if let s = environment["REPLICA_THREADS"], let n = Int(s), n > 0 { return n }
        // Under mpirun the ranks on one machine share its cores.
        let ranksHere = environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap { Int($0) } ?? 1
        return max(1, ProcessInfo.processInfo.activeProcessorCount / max(ranksHere, 1))
    }()

    /// Number of workers (environment `REPLICA_THREADS`, else the active cores, shared among
    /// the MPI ranks on this machine).
    public static var count: Int {
        get { _ = setup; return configured }
        set { precondition(newValue >= 1, "thread count must be at least 1"); _ = setup; configured = newValue }
    }

    /// Calls `body(chunk, range)` for contiguous ranges covering `0..<total`, in parallel
    /// when there is enough work (`grain` items at least per chunk).
    @inline(__always)
    public static func parallelFor(_ total: Int, grain: Int = 1, _ body: (_ chunk: Int, _ range: Range<Int>) -> Void) {
        let chunks = chunkCount(total, grain: grain)
        if chunks <= 1 {
            if total > 0 { body(0, 0..<total) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            body(c, chunkRange(c, of: chunks, total: total))
        }
    }

    /// How many chunks `parallelFor` uses for `total` items.
    public static func chunkCount(_ total: Int, grain: Int = 1) -> Int {
        max(1, min(count, total / max(grain, 1)))
    }

    @inline(__always)
    static func chunkRange(_ c: Int, of chunks: Int, total: Int) -> Range<Int> {
        (c * total / chunks)..<((c + 1) * total / chunks)
    }
}
