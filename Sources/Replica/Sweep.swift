import ArgumentParser
import Foundation
import Harness

/// `replica sweep`: an experiment's arms × seeds as independent tasks, one `replica run` of
/// one arm at one seed each, into <seed folder>/arms/<arm>/; then each seed's folder merged
/// from its arms (what `replica run --seeds` writes for that seed) and the seed aggregate.
/// The tasks are a Slurm job array (`--emit slurm`: a script to `sbatch`, and the aggregate
/// step to run after it) or run here, N at a time (`--emit local`); `--emit aggregate` is
/// the last step alone. Each task trains exactly what `replica run --seeds` trains for that
/// arm and seed, at the same thread count, so the aggregate is the sequential one.
struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an experiment's arms × seeds as independent tasks (a Slurm job array, or here N at a time), then the seed aggregate.")

    enum Emit: String, ExpressibleByArgument, CaseIterable { case slurm, local, aggregate }

    @Argument(help: "Experiment name: \(registry.keys.sorted().joined(separator: ", ")).") var experiment: String
    @Option(help: "smoke, default or full.") var profile: String = "default"
    @Option(help: "Seeds, comma-separated (e.g. 0,1,2); one task per arm and seed.") var seeds: String
    @Option(help: "slurm: write the job-array script; local: run the tasks here, then the aggregate; aggregate: only the aggregate of finished tasks.")
    var emit: Emit
    @Option(help: "Tasks at a time with --emit local.") var jobs: Int = 1
    @Option(help: "Threads per task (default: the cores here divided among --jobs; Slurm: --cpus-per-task).") var threads: Int?
    @Option(help: "Slurm time limit per task.") var time: String = "04:00:00"
    @Option(help: "Slurm memory per task.") var mem: String = "16G"
    @Option(help: "Only these arms (comma-separated).") var arms: String?
    @Option(name: .customLong("set"), help: "Override a config key (repeatable), as for run.") var overrides: [String] = []
    @Option(help: "Dataset file (default: the experiment's).") var dataset: String?
    @Option(help: "Experiment file (default: experiments/<name>.yaml).") var file: String?
    @Option(help: "Results folder.") var results: String = "results"

    func run() throws {
        guard registry[experiment] != nil else {
            throw ValidationError("unknown experiment '\(experiment)' (known: \(registry.keys.sorted().joined(separator: ", ")))")
        }
        let parsed = seeds.split(separator: ",").map { UInt64($0.trimmingCharacters(in: .whitespaces)) }
        guard !parsed.isEmpty, parsed.allSatisfy({ $0 != nil }), Set(parsed).count == parsed.count else {
            throw ValidationError("--seeds: expected distinct comma-separated seeds such as 0,1,2, got '\(seeds)'")
        }
        guard jobs >= 1 else { throw ValidationError("--jobs: expected at least 1, got \(jobs)") }
        if let t = threads, t < 1 { throw ValidationError("--threads: expected at least 1, got \(t)") }
        let seedList = parsed.map { $0! }
        let cwd = FileManager.default.currentDirectoryPath
        let spec: ExperimentFile
        do { spec = try ExperimentFile(path: file ?? "experiments/\(experiment).yaml") } catch let e as ConfigError { throw InputError(e.description) }
        let armList = arms?.split(separator: ",").map(String.init) ?? spec.arms.map(\.key)
        for a in armList where !spec.arms.contains(where: { $0.key == a }) {
            throw InputError("\(spec.path): no arm '\(a)' (have: \(spec.arms.map(\.key).joined(separator: ", ")))")
        }
        // Task i: seed i / arms, arm i % arms.
        let tasks = seedList.enumerated().flatMap { s, seed in armList.enumerated().map { a, arm in (seed: seed, firstSeed: s == 0, arm: arm, firstArm: a == 0) } }
        let name = "\(experiment)-\(profile)-seeds" + seedList.map(String.init).joined(separator: "_")
        let sweepDir = (results.hasPrefix("/") ? results : cwd + "/" + results) + "/sweeps"
        let perTask = threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / jobs)

        switch emit {
        case .aggregate:
            try aggregate(spec, seedList, armList)
        case .slurm:
            let script = sweepDir + "/\(name).sbatch"
            try writeScript(to: script, tasks, threads: perTask, directory: cwd, logs: sweepDir + "/\(name)-%a.log", slurm: true)
            let again = taskArguments(seed: nil).map(quote).joined(separator: " ") + " --seeds \(seeds) --emit aggregate"
            print("""
                wrote \(script): \(tasks.count) tasks (\(armList.count) arm\(armList.count == 1 ? "" : "s") × \(seedList.count) seed\(seedList.count == 1 ? "" : "s")), \(perTask) CPUs each
                submit it, then the aggregate once every task has finished:
                  job=$(sbatch --parsable \(quote(script)))
                  sbatch --dependency=afterok:$job --cpus-per-task=1 --wrap \(quote("cd \(quote(cwd)) && \(quote(binary)) sweep \(again)"))
                """)
        case .local:
            let script = sweepDir + "/\(name).sh"
            try writeScript(to: script, tasks, threads: perTask, directory: cwd, logs: nil, slurm: false)
            print("\(tasks.count) tasks, \(jobs) at a time, \(perTask) thread\(perTask == 1 ? "" : "s") each: \(script) (logs beside it)")
            try runLocally(script, tasks: tasks.count, logs: sweepDir + "/\(name)")
            try aggregate(spec, seedList, armList)
        }
    }

    /// This executable, as an absolute path (tasks run it from the job's directory), also when
    /// it was started through PATH.
    var binary: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? URL(fileURLWithPath: CommandLine.arguments[0], relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardized.path
    }

    /// `run`'s arguments for one arm at one seed (nil: the options every step shares).
    func taskArguments(seed: UInt64?, arm: String? = nil) -> [String] {
        var a = [experiment, "--profile", profile]
        if let arm { a += ["--arms", arm] } else if let arms { a += ["--arms", arms] }
        for o in overrides { a += ["--set", o] }
        if let dataset { a += ["--dataset", dataset] }
        if let file { a += ["--file", file] }
        a += ["--results", results]
        if let seed { a += ["--seed", String(seed)] }
        return a
    }

    /// One script for every task: task i (SLURM_ARRAY_TASK_ID) is one arm at one seed; the
    /// first arm's task also computes the seed's reference rows, and every seed but the first
    /// runs as a later seed of the aggregate, as `run --seeds` does.
    func writeScript(to path: String, _ tasks: [(seed: UInt64, firstSeed: Bool, arm: String, firstArm: Bool)], threads: Int,
                     directory: String, logs: String?, slurm: Bool) throws {
        var lines = ["#!/bin/bash"]
        if slurm, let logs {
            lines += ["#SBATCH --job-name=replica-\(experiment)-\(profile)", "#SBATCH --array=0-\(tasks.count - 1)",
                      "#SBATCH --cpus-per-task=\(threads)", "#SBATCH --mem=\(mem)", "#SBATCH --time=\(time)", "#SBATCH --output=\(logs)"]
        }
        lines += ["# replica sweep \(experiment): one task per arm and seed, results in <seed folder>/arms/<arm>/",
                  "set -euo pipefail", "cd \(quote(directory))", "export REPLICA_THREADS=\(threads)",
                  "case \"${SLURM_ARRAY_TASK_ID:?set SLURM_ARRAY_TASK_ID to the task number}\" in"]
        for (i, t) in tasks.enumerated() {
            let args = ["run"] + taskArguments(seed: t.seed, arm: t.arm) + ["--arm-task"] + (t.firstArm ? ["--task-references"] : []) + (t.firstSeed ? [] : ["--later-seed"])
            lines.append("  \(i)) exec \(quote(binary)) \(args.map(quote).joined(separator: " ")) ;;   # seed \(t.seed), arm \(t.arm)")
        }
        lines += ["  *) echo \"task ${SLURM_ARRAY_TASK_ID}: this array has tasks 0-\(tasks.count - 1)\" >&2; exit 2 ;;", "esac", ""]
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try writeAtomically(Data(lines.joined(separator: "\n").utf8), to: path)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
    }

    /// Runs the script once per task, `jobs` at a time, each with its SLURM_ARRAY_TASK_ID and
    /// its output in `<logs>-<i>.log`; stops with the first failed task's log.
    func runLocally(_ script: String, tasks: Int, logs: String) throws {
        var next = 0, running: [(Int, Process)] = []
        func start(_ i: Int) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/bash")
            p.arguments = [script]
            p.environment = ProcessInfo.processInfo.environment.merging(["SLURM_ARRAY_TASK_ID": String(i)]) { _, b in b }
            let log = "\(logs)-\(i).log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            (p.standardOutput, p.standardError) = (handle, handle)
            try p.run()
            running.append((i, p))
        }
        while next < tasks || !running.isEmpty {
            while next < tasks && running.count < jobs { try start(next); next += 1 }
            let (i, p) = running.removeFirst()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else {
                for (_, q) in running { q.terminate() }
                let tail = (try? String(contentsOfFile: "\(logs)-\(i).log", encoding: .utf8))?.split(separator: "\n").suffix(3).joined(separator: "\n") ?? ""
                throw InputError("sweep task \(i) failed (exit \(p.terminationStatus)); \(logs)-\(i).log ends:\n\(tail)")
            }
            print("task \(i) done (\(logs)-\(i).log)")
        }
    }

    /// Each seed's folder from its arm tasks, then the seed aggregate where `run --seeds`
    /// writes it.
    func aggregate(_ spec: ExperimentFile, _ seeds: [UInt64], _ arms: [String]) throws {
        var options = RunOptions()
        (options.profile, options.dataset, options.resultsRoot) = (profile, dataset, results)
        let out = seedAggregateFolder(spec, options, seeds: seeds)
        do {
            for seed in seeds { try registry[experiment]!.mergeArms(spec, options, seed, arms) }
            let aggregate = try SeedAggregate(file: spec, folders: seeds.map { resultsFolder(spec, options, seed: $0) })
            try aggregate.write(to: out)
            print(aggregate.claimsSummary(width: 100) + "\nfull table: \(out)/table.md")
        } catch let e as ConfigError { throw InputError(e.description) } catch let e as RunError { throw InputError(e.description) }
    }
}

/// `s` quoted for bash where it needs it.
func quote(_ s: String) -> String {
    if !s.isEmpty && s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:,@+".contains($0) }) { return s }
    return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
