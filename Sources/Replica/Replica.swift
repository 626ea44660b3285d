import ArgumentParser

@main
struct Replica: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replica",
        abstract: "Reproduce representation-learning papers on one engine, with one evaluation protocol.",
        subcommands: [Baseline.self, Bench.self])
}
