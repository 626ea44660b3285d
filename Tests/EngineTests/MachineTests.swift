import CBLAS
import CKernels
import Engine
import Foundation
import XCTest

/// What the engine measures or fixes about the machine at start-up: the FMA peak loop and
/// the OpenBLAS kernel choice.
final class MachineTests: XCTestCase {
    /// The peak loop does the work it reports: 12 chains × lanes × 2 operations per round,
    /// and its result is the naive loop's (each chain a = a · x + y, fused where the ISA has
    /// FMA, then the sum over chains and lanes).
    func testFMALoopCountsItsOperationsAndComputesItsChains() {
        let isa = replica_dots_best_isa(), lanes = isa >= 2 ? 16 : isa == 1 ? 8 : 4
        var sink: Float = 0
        XCTAssertEqual(replica_fma_loop(1000, &sink), 1000 * 12 * lanes * 2)
        var expected = 0.0
        for c in 0..<12 {
            var a = Float(c)
            for _ in 0..<1000 { a = isa >= 1 ? Float(1e-7).addingProduct(a, 0.999999) : a * 0.999999 + 1e-7 }
            expected += Double(a) * Double(lanes)
        }
        XCTAssertEqual(Double(sink), expected, accuracy: 1e-5 * expected)
    }

    /// Where OpenBLAS cannot name the CPU it falls back to SSE3 ("Prescott") kernels, and
    /// it gives AVX2 kernels to CPUs with AVX-512 it does not know; the engine's start-up
    /// moves it to its SkylakeX kernels on CPUs with AVX-512 F, BW, DQ and VL, and to its
    /// Haswell kernels on the other CPUs with AVX2 and FMA.
    func testOpenBLASRunsTheWidestKernelsOfTheCPU() throws {
        try XCTSkipIf(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] != nil, "OPENBLAS_CORETYPE chooses the kernels here")
        try XCTSkipUnless(replica_dots_best_isa() >= 1, "this CPU has no AVX2 + FMA")
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let flags = Set(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        let kernel = Platform.blas.lowercased()
        XCTAssertFalse(kernel.contains("kernel prescott"), Platform.blas)
        if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512dq", "avx512vl"]) {
            XCTAssertFalse(kernel.contains("kernel haswell") || kernel.contains("kernel zen"), Platform.blas)
        }
    }

    /// BLIS is the GEMM only where OpenBLAS runs kernels narrower than the CPU's AVX-512.
    func testBLISOnlyBesideOpenBLASsAVX2Kernels() throws {
        try XCTSkipIf(ProcessInfo.processInfo.environment["REPLICA_BLAS"] != nil, "REPLICA_BLAS chooses the library here")
        let openBLAS = String(cString: openblas_get_corename()).lowercased()
        if ["skylakex", "cooperlake", "sapphirerapids"].contains(openBLAS) || replica_dots_best_isa() < 2 {
            XCTAssertFalse(Threads.usesBLIS, Platform.blas)
        }
    }
}

/// The tensor buffer pool (CKernels buffers.c): size classes, reuse, and giving idle blocks
/// back when a new phase starts (and only then).
final class BufferPoolTests: XCTestCase {
    func testSizeClassesRoundUpByAtMostAnEighth() {
        XCTAssertEqual(replica_buffer_class_size(1000), 1000)             // small: malloc, as asked
        XCTAssertEqual(replica_buffer_class_size(1 << 20), 1 << 20)
        XCTAssertEqual(replica_buffer_class_size((1 << 20) + 1), (1 << 20) + (1 << 17))
        XCTAssertEqual(replica_buffer_class_size(3 << 20), 3 << 20)
        XCTAssertEqual(replica_buffer_class_size((1 << 21) - 1), 1 << 21)
        var seed: UInt64 = 3
        for _ in 0..<10_000 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            let bytes = (1 << 20) + Int(seed >> 36)   // 1 MiB … 257 MiB
            let size = replica_buffer_class_size(bytes)
            XCTAssertGreaterThanOrEqual(size, bytes)
            XCTAssertLessThanOrEqual(Double(size), Double(bytes) * 1.125)
            XCTAssertEqual(replica_buffer_class_size(size), size, "a class size is its own class")
        }
    }

    func testFreedBlocksAreReusedAndIdleOnesGivenBackOnANewPhase() throws {
        replica_buffer_release_idle()
        var idle = 0, used0 = 0, used = 0
        replica_buffer_stats(&idle, &used0)
        XCTAssertEqual(idle, 0)
        let big = 96 << 20
        try XCTSkipIf(used0 >= 48 << 20, "more than 48 MiB of tensors alive in this process")
        let a = try XCTUnwrap(replica_buffer_alloc(big))
        XCTAssertEqual(Int(bitPattern: a) % 64, 0)
        a.storeBytes(of: 1.5, as: Float.self)   // writable
        replica_buffer_stats(&idle, &used)
        XCTAssertEqual(used - used0, big)
        replica_buffer_free(a, big)
        replica_buffer_stats(&idle, &used)
        XCTAssertEqual([idle, used], [big, used0])
        let b = try XCTUnwrap(replica_buffer_alloc(big - 1000))   // the same class: the same block
        XCTAssertEqual(b, a)
        // A size asked for recently that misses maps a block and keeps the idle ones, even
        // with more idle than in use (an inference pass, which frees each activation early).
        let mid = 40 << 20, midSize = replica_buffer_class_size(mid)
        let m0 = try XCTUnwrap(replica_buffer_alloc(mid))
        replica_buffer_free(m0, mid)
        replica_buffer_free(b, big - 1000)
        let m1 = try XCTUnwrap(replica_buffer_alloc(mid)), m2 = try XCTUnwrap(replica_buffer_alloc(mid))   // a hit, then a miss
        XCTAssertEqual(m1, m0)
        replica_buffer_stats(&idle, &used)
        XCTAssertEqual([idle, used], [big, used0 + 2 * midSize])
        replica_buffer_free(m1, mid)
        replica_buffer_free(m2, mid)
        // A size nobody asked for lately, while more waits idle than is in use (a new
        // phase): the idle blocks are unmapped.
        let fresh = 200 << 20
        let c = try XCTUnwrap(replica_buffer_alloc(fresh))
        replica_buffer_stats(&idle, &used)
        XCTAssertEqual([idle, used], [0, used0 + replica_buffer_class_size(fresh)])
        replica_buffer_free(c, fresh)
        let small = try XCTUnwrap(replica_buffer_alloc(100))
        XCTAssertEqual(Int(bitPattern: small) % 64, 0)
        replica_buffer_free(small, 100)
        replica_buffer_release_idle()
    }
}
