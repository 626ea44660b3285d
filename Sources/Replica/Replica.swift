import ArgumentParser
import Engine
import Foundation

@main
struct Replica: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replica",
        abstract: "Reproduce representation-learning papers on one engine, with one evaluation protocol.",
        subcommands: [Run.self, Sweep.self, LeaderboardCommand.self, Compare.self, Evaluate.self, Embed.self, DataCommand.self, Bench.self, DistributedCheck.self])

    static func main() {
        setvbuf(stdout, nil, _IOLBF, 0)   // progress lines reach a log file as they happen
        Distributed.start()   // joins the MPI job under mpirun; nothing otherwise
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            // Under mpirun an error on any rank ends every rank, with this rank's message.
            let code = exitCode(for: error)
            if Distributed.size > 1 && code != .success { Distributed.abort(fullMessage(for: error), code: code.rawValue) }
            if code == .success { Distributed.finish() }
            exit(withError: error)
        }
        Distributed.finish()
    }
}
