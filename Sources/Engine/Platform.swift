import CBLAS
import CKernels
import Foundation

/// What decides the last digits of a run: the CPU (model, family, the widest vector ISA it
/// has) and the BLAS with the kernel it picked for that CPU. Bit-exact replay holds for the
/// same CPU kind, BLAS kernel and thread count.
public enum Platform {
    /// "AMD EPYC (family 25, model 17), AVX-512".
    public static let cpu: String = {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        func field(_ name: String) -> String? {
            info.split(separator: "\n").first { $0.hasPrefix(name) && $0.dropFirst(name.count).drop { $0 == " " || $0 == "\t" }.first == ":" }?
                .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces)
        }
        let flags = Set((field("flags") ?? "").split(separator: " ").map(String.init))
        let isa = flags.contains("avx512f") ? "AVX-512" : flags.contains("avx2") ? "AVX2" : flags.contains("avx") ? "AVX" : "SSE"
        return "\(field("model name") ?? "unknown CPU") (family \(field("cpu family") ?? "?"), model \(field("model") ?? "?")), \(isa)"
    }()

    /// "OpenBLAS 0.3.21 … kernel Haswell", or with BLIS for the GEMM "BLIS 0.9.0, kernel skx
    /// (GEMM); OpenBLAS 0.3.21 … kernel Haswell".
    public static let blas: String = {
        Threads.prepare()
        let config = String(cString: openblas_get_config()).trimmingCharacters(in: .whitespaces)
        let openBLAS = "\(config), kernel \(String(cString: openblas_get_corename()))"
        guard let blis = replica_blis_name() else { return openBLAS }
        return "\(String(cString: blis)) (GEMM); \(openBLAS)"
    }()
}
