import ArgumentParser
import Engine
import Foundation
import Harness
import NN
import Synchronization

/// `replica bench`: the reference workloads (bench/torch_twin.py is their PyTorch twin) on our engine.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time the reference workloads (R1–R7, S1, P1, M1, A1–A2, C1–C2, F1–F2) and write results/bench/engine.json and engine.md.")

    @Option(help: "Thread counts to run, in order.") var threads: String = "2,1"
    @Option(help: "Only these workloads (comma-separated tags: R1–R7 engine, S1 SimCLR step, P1 PCL step, M1 Ranked List Loss step, A1–A2 augmentation and loading, C1–C2 clustering, F1 FactorVAE, F2 Ladder VAE).") var only: String = ""
    @Option(help: "Output folder.") var out: String = "results/bench"
    @Flag(help: "One warm-up and three timed steps per workload (a smoke run).") var quick = false

    func run() throws {
        let tags = Set(only.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) })
        let known = benchWorkloads.map(\.tag)
        if let unknown = tags.subtracting(known).sorted().first {
            throw ValidationError("--only: no workload '\(unknown)' (have: \(known.joined(separator: ", ")))")
        }
        let threadCounts = try threads.split(separator: ",").map { s -> Int in
            guard let n = Int(s), n >= 1 else { throw ValidationError("--threads: '\(s)' is not a positive integer") }
            return n
        }
        var report: [String: Any] = [
            "engine": "replica", "date": ISO8601DateFormatter().string(from: Date()),
            "machine": machineDescription(), "quick": quick, "provenance": Provenance.current(threads: Threads.count, seed: 0).json,
        ]
        var perThreads: [String: Any] = [:], peaks: [String: Double] = [:]
        var tables: [String] = []
        for n in threadCounts {
            Threads.count = n
            let peak = measuredFMAPeakGFLOPs(threads: n)
            peaks[String(n)] = peak
            print(String(format: "threads %d  %-40@ %9.1f GFLOP/s", n, "FMA peak (measured)" as NSString, peak))
            var rows: [(String, [String: Any])] = []
            for w in benchWorkloads where tags.isEmpty || tags.contains(w.tag) {
                StorageBytes.resetPeak()
                let results = w.run(quick)
                let tensorMB = Double(StorageBytes.peak) / 1_048_576   // the workload's tensors at their most
                for (name, var r) in results {
                    r["peak_tensor_mb"] = tensorMB
                    if let g = r["gflops"] as? Double { r["of_peak"] = g / peak }
                    rows.append((name, r))
                    let ms = r["ms_median"] as! Double
                    print(String(format: "threads %d  %-40@ %9.2f ms", n, name as NSString, ms))
                }
            }
            perThreads[String(n)] = Dictionary(uniqueKeysWithValues: rows)
            tables.append(markdownTable(threads: n, peak: peak, rows))
        }
        report["results"] = perThreads
        report["fma_peak_gflops"] = peaks
        report["peak_rss_mb"] = peakRSSMegabytes()
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let json = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
        try writeAtomically(json, to: out + "/engine.json")
        try writeAtomically(Data((["# Replica engine benchmark", "", "\(report["machine"]!), \(report["date"]!)", ""] + tables).joined(separator: "\n").utf8), to: out + "/engine.md")
        print("wrote \(out)/engine.json and \(out)/engine.md")
    }

    func markdownTable(threads: Int, peak: Double, _ rows: [(String, [String: Any])]) -> String {
        var lines = ["### threads = \(threads)", "", String(format: "FMA peak, measured: %.1f GFLOP/s.", peak), "",
                     "| workload | ms (median, n) | derived |", "|---|---|---|"]
        for (name, r) in rows {
            let ms = r["ms_median"] as! Double, n = r["iters"] as! Int
            let derived = derivedColumn(r)
            lines.append(String(format: "| %@ | %.2f (%d) | %@ |", name as NSString, ms, n, derived as NSString))
        }
        return (lines + [""]).joined(separator: "\n")
    }
}

/// The "derived" column: throughput in the unit that fits the workload.
func derivedColumn(_ r: [String: Any]) -> String {
    if let g = r["gflops"] as? Double {
        return String(format: "%.1f GFLOP/s", g) + ((r["of_peak"] as? Double).map { String(format: " (%.0f%% of peak)", $0 * 100) } ?? "")
    }
    if let v = r["views_per_s"] as? Double { return String(format: "%.0f views/s", v) }
    if let f = r["starved_fraction"] as? Double, let w = r["wait_ms_per_step"] as? Double {
        return String(format: "waits %.2f ms/step (%.1f%% of the step)", w, f * 100)
    }
    if let i = r["images_per_s"] as? Double { return String(format: "%.0f img/s", i) }
    return ""
}

/// The matrix-product work of one more call of `body` (FLOPs counted by the engine's gemm)
/// and its rate at the median step time `ms`.
func gemmThroughput(of body: () -> Void, ms: Double) -> [String: Any] {
    let before = gemmFlops.load(ordering: .relaxed)
    body()
    let flops = gemmFlops.load(ordering: .relaxed) - before
    return ["gemm_flops": flops, "gflops": Double(flops) / (ms * 1e-3) / 1e9]
}

/// Median-of-N timing after warm-up, as torch_reference.py's time_fn.
func timeSteps(warmup: Int, iters: Int, _ body: () -> Void) -> [String: Any] {
    for _ in 0..<warmup { body() }
    var times: [Double] = []
    for _ in 0..<iters {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
    }
    let sorted = times.sorted()
    let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    return ["ms_median": median, "ms_min": sorted.first!, "ms_max": sorted.last!, "warmup": warmup, "iters": iters,
            "all_ms": times.map { ($0 * 1000).rounded() / 1000 }]
}
