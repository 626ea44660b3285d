import CBLAS
import CKernels
import Foundation
import Synchronization

// Matrix products through a single-threaded sgemm (BLIS or OpenBLAS, see `sgemm`).

/// The floating-point operations (2 · m · n · k) of every `gemm` since the process started:
/// `replica bench` reads it around one step for the step's GFLOP/s.
public let gemmFlops = Atomic<Int>(0)

/// `C = alpha · op(A) · op(B) + beta · C`, row-major, with op = transpose when `transA` /
/// `transB`. Large products are split into per-thread row (or column) blocks of C, each a
/// single-threaded sgemm, so results depend only on the thread count.
@inline(__always)
public func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                 a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                 beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, parallel: Bool = true) {
    if m == 0 || n == 0 { return }
    gemmFlops.add(2 * m * n * k, ordering: .relaxed)
    let chunks = parallel && m * n * k >= 1 << 21 ? Threads.chunkCount(max(m, n), grain: 64) : 1
    if chunks <= 1 {
        sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    }
    DispatchQueue.concurrentPerform(iterations: chunks) { i in
        if m >= n {
            let r = Threads.chunkRange(i, of: chunks, total: m)
            let ap = transA ? a + r.lowerBound : a + r.lowerBound * lda
            sgemm(transA, transB, r.count, n, k, alpha, ap, lda, b, ldb, beta, c + r.lowerBound * ldc, ldc)
        } else {
            let r = Threads.chunkRange(i, of: chunks, total: n)
            let bp = transB ? b + r.lowerBound * ldb : b + r.lowerBound
            sgemm(transA, transB, m, r.count, k, alpha, a, lda, bp, ldb, beta, c + r.lowerBound, ldc)
        }
    }
}

/// Whether a product of this shape goes to BLIS when BLIS is loaded, as measured per shape
/// (2 threads, each its own product; OpenBLAS on its Haswell kernels). AMD Zen 5: BLIS wins
/// once C has a side of 256 and the other side is not thin, in every transposition and
/// down to k = 8 (GFLOP/s, BLIS against OpenBLAS: 128 × 576 × 539 with B transposed 354
/// against 243; 144 × 588 × 32 with A transposed 310 against 222; 48 × 600 × 144 319
/// against 219; 288 × 512 × 8 150 against 140), and loses where both sides are small or
/// one is thin (16 × 784 × 9: 49 against 76; 32 × 144 × 588, B transposed: 167 against
/// 183; 2–13× slower below 64 × 64), so a side ≥ 256, the other ≥ 48 and k ≥ 8, or both
/// sides ≥ 256. Intel Emerald Rapids: BLIS wins
/// from about 10⁶ multiply-adds in every transposition (1.2–1.7×: 128 × 784 × 400 with B
/// transposed 534 µs against 777, 96³ 15 against 18), and loses on thin products (64³, or
/// a side of 10), so both sides ≥ 32 and m · n · k ≥ 2²⁰.
public func gemmUsesBLIS(_ m: Int, _ n: Int, _ k: Int) -> Bool {
    if CPUVendor.intel { return Swift.min(m, n) >= 32 && m * n * k >= 1 << 20 }
    return (m >= 256 && n >= 256) || (Swift.min(m, n) >= 48 && Swift.max(m, n) >= 256 && k >= 8)
}

enum CPUVendor {
    static let intel = replica_cpu_is_intel() == 1
    static let avx512 = replica_cpu_has_avx512f() == 1
}

/// One single-threaded row-major sgemm. Where BLIS is loaded (`Threads.usesBLIS`: CPUs with
/// AVX-512 whose OpenBLAS is pinned to its AVX2 kernels), the products `gemmUsesBLIS`
/// picks go to BLIS's AVX-512 kernels; the rest stay on OpenBLAS, whose per-call cost is
/// lower. The rule depends on the shape and the CPU vendor only, so a run's numbers do not
/// depend on timing (docs/architecture.md).
@inline(__always)
func sgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float, _ a: UnsafePointer<Float>, _ lda: Int,
           _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    if Threads.usesBLIS && gemmUsesBLIS(m, n, k) {
        replica_blis_sgemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    } else {
        var beta = beta
        if beta == 0 && (transA || transB || !CPUVendor.avx512) {
            // OpenBLAS zeroes C for β = 0 with one scalar store per float (sgemm_beta of its
            // Haswell and Zen kernels: 4.7 % of R7's step on a Zen 3); vector stores do it
            // several times faster, and a product added onto zeros has the same bits. Not
            // for untransposed products on AVX-512 CPUs, where OpenBLAS may send β = 0 to its
            // "direct" small-product kernel, whose sums differ.
            if ldc == n { c.initialize(repeating: 0, count: m * n) } else { for r in 0..<m { (c + r * ldc).initialize(repeating: 0, count: n) } }
            beta = 1
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

extension Tensor {
    /// Matrix product of [M, K] and [K, N], or batched [B, M, K] × [B, K, N].
    public func matmul(_ other: Tensor) -> Tensor {
        if rank == 3 && other.rank == 3 { return batchedMatmul(other) }
        precondition(rank == 2 && other.rank == 2, "matmul of \(shape) and \(other.shape): need two matrices or two batches")
        let (m, k, n) = (shape[0], shape[1], other.shape[1])
        precondition(other.shape[0] == k, "matmul of \(shape) and \(other.shape): inner sizes differ")
        let out = Tensor(shape: [m, n], zeroed: false)
        gemm(m: m, n: n, k: k, a: pointer, lda: k, b: other.pointer, ldb: n, c: out.pointer, ldc: n)
        let a = self, b = other
        return Tensor.result(out, [a, b]) { g in
            var ga: Tensor?, gb: Tensor?
            if a.requiresGrad {   // dA = G · Bᵀ
                ga = Tensor(shape: [m, k], zeroed: false)
                gemm(transB: true, m: m, n: k, k: n, a: g.pointer, lda: n, b: b.pointer, ldb: n, c: ga!.pointer, ldc: k)
            }
            if b.requiresGrad {   // dB = Aᵀ · G
                gb = Tensor(shape: [k, n], zeroed: false)
                gemm(transA: true, m: k, n: n, k: m, a: a.pointer, lda: k, b: g.pointer, ldb: n, c: gb!.pointer, ldc: n)
            }
            return [ga, gb]
        }
    }

    private func batchedMatmul(_ other: Tensor) -> Tensor {
        let (bs, m, k, n) = (shape[0], shape[1], shape[2], other.shape[2])
        precondition(other.shape[0] == bs && other.shape[1] == k, "batched matmul of \(shape) and \(other.shape)")
        let out = Tensor(shape: [bs, m, n], zeroed: false)
        let pa = pointer, pb = other.pointer, pc = out.pointer
        Threads.parallelFor(bs) { _, r in
            for i in r {
                gemm(m: m, n: n, k: k, a: pa + i * m * k, lda: k, b: pb + i * k * n, ldb: n, c: pc + i * m * n, ldc: n, parallel: false)
            }
        }
        let a = self, b = other
        return Tensor.result(out, [a, b]) { g in
            let ga = a.requiresGrad ? Tensor(shape: [bs, m, k], zeroed: false) : nil
            let gb = b.requiresGrad ? Tensor(shape: [bs, k, n], zeroed: false) : nil
            Threads.parallelFor(bs) { _, r in
                for i in r {
                    let gi = g.pointer + i * m * n
                    if let ga { gemm(transB: true, m: m, n: k, k: n, a: gi, lda: n, b: pb + i * k * n, ldb: n, c: ga.pointer + i * m * k, ldc: k, parallel: false) }
                    if let gb { gemm(transA: true, m: k, n: n, k: m, a: pa + i * m * k, lda: k, b: gi, ldb: n, c: gb.pointer + i * k * n, ldc: n, parallel: false) }
                }
            }
            return [ga, gb]
        }
    }
}

/// `x · Wᵀ + b` for x [N, in], W [out, in] (PyTorch's layout), b [out].
public func linear(_ x: Tensor, weight w: Tensor, bias b: Tensor?) -> Tensor {
    precondition(x.rank == 2 && w.rank == 2 && x.shape[1] == w.shape[1], "linear: input \(x.shape) for weight \(w.shape)")
    let (n, i, o) = (x.shape[0], x.shape[1], w.shape[0])
    if let b { precondition(b.shape == [o], "linear: bias \(b.shape) for \(o) outputs") }
    let out = Tensor(shape: [n, o], zeroed: false)
    if let b { for r in 0..<n { (out.pointer + r * o).update(from: b.pointer, count: o) } }
    gemm(transB: true, m: n, n: o, k: i, a: x.pointer, lda: i, b: w.pointer, ldb: i, beta: b == nil ? 0 : 1, c: out.pointer, ldc: o)
    let inputs = b.map { [x, w, $0] } ?? [x, w]
    return Tensor.result(out, inputs) { g in
        var gx: Tensor?, gw: Tensor?, gb: Tensor?
        if x.requiresGrad {   // dX = G · W
            gx = Tensor(shape: [n, i], zeroed: false)
            gemm(m: n, n: i, k: o, a: g.pointer, lda: o, b: w.pointer, ldb: i, c: gx!.pointer, ldc: i)
        }
        if w.requiresGrad {   // dW = Gᵀ · X
            gw = Tensor(shape: [o, i], zeroed: false)
            gemm(transA: true, m: o, n: i, k: n, a: g.pointer, lda: o, b: x.pointer, ldb: i, c: gw!.pointer, ldc: i)
        }
        if let b, b.requiresGrad { gb = g.sum(axis: 0) }
        return b == nil ? [gx, gw] : [gx, gw, gb]
    }
}

/// The machine's single-precision peak at `threads` threads, GFLOP/s: every thread runs the
/// CKernels FMA loop (12 independent vector FMA chains at the widest instruction set) at
/// once; the best of three tries. Two threads on one physical core share its FMA units, so
/// this measures what the cores really give, not the data sheet.
public func measuredFMAPeakGFLOPs(threads: Int, iterations: Int = 40_000_000) -> Double {
    var best = 0.0
    for _ in 0..<3 {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let flops = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            var sink: Float = 0   // an opaque C call that writes it: the loop cannot be dropped
            flops.add(replica_fma_loop(iterations, &sink), ordering: .relaxed)
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        best = Swift.max(best, Double(flops.load(ordering: .relaxed)) / seconds / 1e9)
    }
    return best
}
