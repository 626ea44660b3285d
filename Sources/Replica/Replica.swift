import ArgumentParser
import Foundation

@main
struct Replica: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replica",
        abstract: "Reproduce representation-learning papers on one engine, with one evaluation protocol.",
        subcommands: [Run.self, Sweep.self, LeaderboardCommand.self, Compare.self, Evaluate.self, Embed.self, DataCommand.self, Bench.self])

    static func main() {
        setvbuf(stdout, nil, _IOLBF, 0)   // progress lines reach a log file as they happen
        main(nil)
    }
}
