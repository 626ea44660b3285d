import ArgumentParser
import Baselines
import DeepCluster
import FactorVAE
import LVAE
import Foundation
import Engine
import Harness
import NAT
import PCL
import RankedListLoss
import SimCLR
import SimSiam
import SupCon

/// The experiments `replica run` knows: an explicit registry, no registration magic. A new
/// method adds one line here (docs/adding-a-method.md).
let registry: [String: Method] = [
    "supervised": Method(SupervisedExperiment.self),
    "simsiam": Method(SimSiamExperiment.self),
    "simclr": Method(SimCLRExperiment.self),
    "supcon": Method(SupConExperiment.self),
    "pcl": Method(PCLExperiment.self),
    "deepcluster": Method(DeepClusterExperiment.self),
    "nat": Method(NATExperiment.self),
    "ranked-list-loss": Method(RankedListLossExperiment.self),
    "factorvae": Method(FactorVAEExperiment.self),
    "lvae": Method(LVAEExperiment.self),
]

/// One experiment type behind the three ways to run it.
struct Method {
    let run: (ExperimentFile, RunOptions) throws -> Void
    let seeds: (ExperimentFile, RunOptions, [UInt64]) throws -> Void
    let leaderboard: (ExperimentFile, RunOptions) throws -> Void
    let mergeArms: (ExperimentFile, RunOptions, UInt64, [String]) throws -> Void
    init<E: Experiment>(_ type: E.Type) {
        mergeArms = { try mergeArmTasks(E.self, file: $0, options: $1, seed: $2, arms: $3) }
        run = { _ = try runExperiment(E.self, file: $0, options: $1) }
        seeds = { _ = try runSeeds(E.self, file: $0, options: $1, seeds: $2) }
        leaderboard = { try runLeaderboard(E.self, file: $0, options: $1) }
    }
}

/// `replica run <experiment>`: one reproduction through the Harness.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run an experiment (experiments/<name>.yaml) and write results/<name>/<profile>/.")

    @Argument(help: "Experiment name: \(registry.keys.sorted().joined(separator: ", ")).") var experiment: String
    @Option(help: "smoke, default or full.") var profile: String = "default"
    @Option(help: "Only these arms (comma-separated).") var arms: String?
    @Option(help: "Run seed (default: the file's).") var seed: UInt64?
    @Option(help: "Run each of these seeds (comma-separated, e.g. 0,1,2) and write the aggregate to results/<name>/<profile>-seeds<N>/.") var seeds: String?
    @Option(name: .customLong("set"), help: "Override a config key, e.g. --set training.epochs=3 (repeatable).") var overrides: [String] = []
    @Flag(help: "Continue each arm from its last checkpoint.") var resume = false
    @Option(help: "Dataset file (default: the experiment's).") var dataset: String?
    @Option(help: "Experiment file (default: experiments/<name>.yaml).") var file: String?
    @Option(help: "Stop each arm after this many epochs, keeping its checkpoint (continue with --resume).") var stopAfterEpoch: Int?
    @Option(help: "Results folder.") var results: String = "results"
    @Option(help: "Batch norm under mpirun: global (the global batch's statistics, SimCLR's global BN) or per-rank.")
    var batchNorm: String = Distributed.BatchNormMode.global.rawValue
    @Option(help: "Write each optimizer step's loss (the mean over MPI ranks) to this file: 'arm epoch step loss bits' per line.")
    var stepLosses: String?
    @Flag(help: ArgumentHelp("Run as a later seed of an aggregate (what `run --seeds` does for every seed but the first; `sweep` tasks use it).", visibility: .hidden))
    var laterSeed = false
    @Flag(help: ArgumentHelp("Run the one arm of --arms as a sweep task, into <seed folder>/arms/<arm>/.", visibility: .hidden))
    var armTask = false
    @Flag(help: ArgumentHelp("As an arm task, also compute the reference rows and imports (the sweep's first arm).", visibility: .hidden))
    var taskReferences = false

    func run() throws {
        guard let runner = registry[experiment] else {
            throw ValidationError("unknown experiment '\(experiment)' (known: \(registry.keys.sorted().joined(separator: ", ")))")
        }
        guard let mode = Distributed.BatchNormMode(rawValue: batchNorm) else {
            throw ValidationError("--batch-norm: expected global or per-rank, got '\(batchNorm)'")
        }
        Distributed.batchNorm = mode
        do {
            let spec = try ExperimentFile(path: file ?? "experiments/\(experiment).yaml")
            var options = RunOptions()
            if !Distributed.isLeader { options.log = { _ in } }   // rank 0 alone prints
            options.stepLosses = stepLosses
            options.profile = profile
            options.arms = arms?.split(separator: ",").map(String.init)
            options.seed = seed
            options.overrides = try overrides.map(parseOverride)
            options.resume = resume
            options.dataset = dataset
            options.stopAfterEpoch = stopAfterEpoch
            options.resultsRoot = results
            options.firstSeed = !laterSeed
            if armTask { options.armTask = RunOptions.ArmTask(computesReferences: taskReferences) }
            if let path = options.dataset ?? Optional(spec.dataset), !FileManager.default.fileExists(atPath: path) {
                throw InputError("\(path): no such dataset file (make data builds the standard ones)")
            }
            if let list = seeds {
                let parsed = list.split(separator: ",").map { UInt64($0.trimmingCharacters(in: .whitespaces)) }
                guard seed == nil, !parsed.isEmpty, parsed.allSatisfy({ $0 != nil }) else {
                    throw InputError("--seeds: expected comma-separated seeds such as 0,1,2 (and no --seed), got '\(list)'")
                }
                try runner.seeds(spec, options, parsed.map { $0! })
            } else {
                try runner.run(spec, options)
            }
        } catch let e as ConfigError { throw InputError(e.description) } catch let e as RunError { throw InputError(e.description) }
    }
}

/// `replica leaderboard`: every method's leaderboard profile on its main arm (runs that are
/// up to date are kept), then `compare`.
struct LeaderboardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "leaderboard",
        abstract: "Run each experiment's leaderboard profile (equal budget) unless up to date, then write results/README.md.")
    @Option var results: String = "results"
    func run() throws {
        do {
            for name in registry.keys.sorted() {
                let spec = try ExperimentFile(path: "experiments/\(name).yaml")
                guard spec.leaderboard != nil else { continue }
                var options = RunOptions()
                options.resultsRoot = results
                try registry[name]!.leaderboard(spec, options)
            }
            try compareResults(root: results)
        } catch let e as ConfigError { throw InputError(e.description) } catch let e as RunError { throw InputError(e.description) }
        print("wrote \(results)/README.md")
    }
}

/// `replica compare`: results/README.md from every summary.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write results/README.md: leaderboards per family, the claims ledger, stale-row flags.")
    @Option var results: String = "results"
    func run() throws {
        try compareResults(root: results)
        print("wrote \(results)/README.md")
    }
}
