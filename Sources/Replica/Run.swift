import ArgumentParser
import Baselines
import Foundation
import Harness
import SimSiam

/// The experiments `replica run` knows: an explicit registry, no registration magic.
let registry: [String: (ExperimentFile, RunOptions) throws -> RunSummary?] = [
    "supervised": { try runExperiment(SupervisedExperiment.self, file: $0, options: $1) },
    "simsiam": { try runExperiment(SimSiamExperiment.self, file: $0, options: $1) },
]

/// `replica run <experiment>`: one reproduction through the Harness.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run an experiment (experiments/<name>.yaml) and write results/<name>/<profile>/.")

    @Argument(help: "Experiment name: \(registry.keys.sorted().joined(separator: ", ")).") var experiment: String
    @Option(help: "smoke, default or full.") var profile: String = "default"
    @Option(help: "Only these arms (comma-separated).") var arms: String?
    @Option(help: "Run seed (default: the file's).") var seed: UInt64?
    @Option(name: .customLong("set"), help: "Override a config key, e.g. --set training.epochs=3 (repeatable).") var overrides: [String] = []
    @Flag(help: "Continue each arm from its last checkpoint.") var resume = false
    @Option(help: "Dataset file (default: the experiment's).") var dataset: String?
    @Option(help: "Experiment file (default: experiments/<name>.yaml).") var file: String?
    @Option(help: "Stop each arm after this many epochs, keeping its checkpoint (continue with --resume).") var stopAfterEpoch: Int?
    @Option(help: "Results folder.") var results: String = "results"

    func run() throws {
        guard let runner = registry[experiment] else {
            throw ValidationError("unknown experiment '\(experiment)' (known: \(registry.keys.sorted().joined(separator: ", ")))")
        }
        do {
            let spec = try ExperimentFile(path: file ?? "experiments/\(experiment).yaml")
            var options = RunOptions()
            options.profile = profile
            options.arms = arms?.split(separator: ",").map(String.init)
            options.seed = seed
            options.overrides = try overrides.map(parseOverride)
            options.resume = resume
            options.dataset = dataset
            options.stopAfterEpoch = stopAfterEpoch
            options.resultsRoot = results
            if let path = options.dataset ?? Optional(spec.dataset), !FileManager.default.fileExists(atPath: path) {
                throw InputError("\(path): no such dataset file (make data builds the standard ones)")
            }
            _ = try runner(spec, options)
        } catch let e as ConfigError { throw InputError(e.description) } catch let e as RunError { throw InputError(e.description) }
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
