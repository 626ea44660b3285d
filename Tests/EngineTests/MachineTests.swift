import CKernels
import Engine
import Foundation
import XCTest

/// What the engine measures or fixes about the machine at start-up: the FMA peak loop and
/// the OpenBLAS kernel choice.
final class MachineTests: XCTestCase {
    /// The peak loop does the work it reports: 16 chains × lanes × 2 operations per round,
    /// and its result is the naive loop's (each chain a = a · x + y, fused where the ISA has
    /// FMA, then the sum over chains and lanes).
    func testFMALoopCountsItsOperationsAndComputesItsChains() {
        let isa = replica_dots_best_isa(), lanes = isa >= 2 ? 16 : isa == 1 ? 8 : 4
        var sink: Float = 0
        XCTAssertEqual(replica_fma_loop(1000, &sink), 1000 * 16 * lanes * 2)
        var expected = 0.0
        for c in 0..<16 {
            var a = Float(c)
            for _ in 0..<1000 { a = isa >= 1 ? Float(1e-7).addingProduct(a, 0.999999) : a * 0.999999 + 1e-7 }
            expected += Double(a) * Double(lanes)
        }
        XCTAssertEqual(Double(sink), expected, accuracy: 1e-5 * expected)
    }

    /// Where OpenBLAS cannot name the CPU it falls back to SSE3 ("Prescott") kernels; on a
    /// CPU with AVX2 and FMA the engine's start-up moves it to its Haswell kernels.
    func testOpenBLASDoesNotRunSSE3KernelsOnAnAVX2CPU() throws {
        try XCTSkipIf(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] != nil, "OPENBLAS_CORETYPE chooses the kernels here")
        try XCTSkipUnless(replica_dots_best_isa() >= 1, "this CPU has no AVX2 + FMA")
        XCTAssertFalse(Platform.blas.lowercased().contains("kernel prescott"), Platform.blas)
    }
}
