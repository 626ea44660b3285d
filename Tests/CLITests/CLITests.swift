import Datasets
import Engine
import Foundation
import HDF5IO
import TestSupport
import XCTest

/// Every user-facing command against malformed input, as a user would meet it: the `replica`
/// binary itself, in a subprocess. Each case must end with an exit status in 1…127, one or
/// two lines on stderr naming the file or key, and nothing half-written.
final class CLITests: TempDirTestCase {
    /// The `replica` built beside this test bundle (`swift test` builds every product).
    var binary: String {
        get throws {
            let folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
            for candidate in [folder + "/replica", repositoryRoot + "/.build/release/replica", repositoryRoot + "/.build/debug/replica"]
                where FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            throw XCTSkip("no replica binary next to the tests (swift build first)")
        }
    }

    struct Outcome { let status: Int32, stdout: String, stderr: String }

    func replica(_ args: [String], environment: [String: String] = [:]) throws -> Outcome {
        try run(try binary, args, environment: environment)
    }

    func run(_ executable: String, _ args: [String], environment: [String: String] = [:]) throws -> Outcome {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, b in b }
        p.currentDirectoryURL = URL(fileURLWithPath: repositoryRoot)
        let out = Pipe(), err = Pipe()
        (p.standardOutput, p.standardError) = (out, err)
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Outcome(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    /// Asserts a clean failure naming `names`, with no temporary or result file left in `dir`.
    func assertCleanFailure(_ args: [String], naming names: [String], maxLines: Int = 2, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try replica(args)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertTrue((1...127).contains(r.status), "exit \(r.status) for \(args)", file: file, line: line)
        XCTAssertTrue((1...maxLines).contains(lines.count), "\(lines.count) lines on stderr for \(args):\n\(r.stderr)", file: file, line: line)
        for n in names { XCTAssertTrue(r.stderr.contains(n), "stderr does not name '\(n)' for \(args):\n\(r.stderr)", file: file, line: line) }
        XCTAssertFalse(r.stderr.contains("Fatal error") || r.stderr.contains("Stack dump"), r.stderr, file: file, line: line)
        let left = FileManager.default.enumerator(atPath: dir)?.compactMap { $0 as? String }
            .filter { $0.contains(".tmp-") || $0.hasSuffix("summary.json") || $0.hasSuffix("table.md") } ?? []
        XCTAssertEqual(left, [], "left behind for \(args)", file: file, line: line)
    }

    /// A dataset file of `side`×`side` gray images, 10 classes of 4 (train) and 2 (test).
    func dataset(side: Int, name: String) throws -> String {
        func set(_ n: Int) -> ImageSet {
            ImageSet(pixels: (0..<(n * 10 * side * side)).map { UInt8($0 % 251) }, labels: (0..<(n * 10)).map { $0 % 10 }, height: side, width: side, channels: 1)
        }
        let path = dir + "/" + name
        try DatasetFile.write(path, name: name, classes: (0..<10).map(String.init), splits: ["train": set(4), "test": set(2)])
        return path
    }

    func features(rows: Int, name: String) throws -> String {
        let path = dir + "/" + name
        let f = try HDF5File(creating: path)
        try f.write("/features", floats: [Float](repeating: 0.5, count: rows * 4), shape: [rows, 4])
        try f.write("/labels", int64s: [Int64](repeating: 0, count: rows), shape: [rows])
        return path
    }

    var results: [String] { ["--results", dir + "/results"] }

    func testOutOfRangeAndMistypedConfigValuesNameTheKey() throws {
        let data = try dataset(side: 28, name: "ok.h5")
        for (set, key) in [("training.epochs=-3", "config.training.epochs"), ("training.batch_size=0", "config.training.batch_size"),
                           ("training.learning_rate=nan", "training.learning_rate"), ("training.momentum=-1", "config.training.momentum"),
                           ("training.epoch=3", "config.training.epoch"), ("training.epochs=many", "config.training.epochs"),
                           ("per_class=0", "config.per_class"), ("evaluation.knn.k=0", "evaluation.knn.k")] {
            try assertCleanFailure(["run", "supervised", "--profile", "smoke", "--dataset", data, "--set", set] + results, naming: [key])
        }
        for (set, key) in [("batch_size=1", "config.batch_size"), ("augmentation.crop_scale=[0.5,0.2]", "config.augmentation.crop_scale"),
                           ("augmentation.flip=2", "config.augmentation.flip"), ("dimension=0", "config.dimension")] {
            try assertCleanFailure(["run", "simsiam", "--profile", "smoke", "--dataset", data, "--set", set] + results, naming: [key])
        }
        for experiment in ["simclr", "supcon"] {
            for (set, key) in [("temperature=0", "config.temperature"), ("temperature=-0.1", "config.temperature"),
                               ("head_dimension=0", "config.head_dimension"), ("views=1", "config.views"), ("batch_size=1", "config.batch_size")] {
                try assertCleanFailure(["run", experiment, "--profile", "smoke", "--dataset", data, "--set", set] + results, naming: [key])
            }
        }
    }

    func testBadExperimentFilesNameTheFileLineAndKey() throws {
        let data = try dataset(side: 28, name: "ok.h5")
        let yaml = try String(contentsOfFile: repositoryRoot + "/experiments/supervised.yaml", encoding: .utf8)
        let broken = dir + "/broken.yaml"
        try yaml.replacingOccurrences(of: "    epochs: 10\n", with: "    epochs: [10\n").write(toFile: broken, atomically: true, encoding: .utf8)
        try assertCleanFailure(["run", "supervised", "--file", broken, "--dataset", data] + results, naming: [broken, "line ", "column "], maxLines: 1)
        // A wrong type in `config` that every profile overrides is still an error.
        let mistyped = dir + "/mistyped.yaml"
        // The smoke profile sets batch_size itself, so only the check of the file as written sees it.
        try yaml.replacingOccurrences(of: "    batch_size: 128\n", with: "    batch_size: lots\n")
            .write(toFile: mistyped, atomically: true, encoding: .utf8)
        try assertCleanFailure(["run", "supervised", "--file", mistyped, "--profile", "smoke", "--dataset", data] + results,
                               naming: [mistyped, "config.training.batch_size"], maxLines: 1)
        try assertCleanFailure(["run", "supervised", "--file", dir + "/none.yaml"] + results, naming: ["none.yaml"])
        try assertCleanFailure(["run", "supervised", "--profile", "huge", "--dataset", data] + results, naming: ["huge"])
        try assertCleanFailure(["run", "supervised", "--arms", "nope", "--dataset", data] + results, naming: ["nope"])
    }

    func testBadDatasetsNameTheFile() throws {
        let good = try dataset(side: 28, name: "ok.h5")
        let truncated = dir + "/truncated.h5"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated))
        let garbage = dir + "/garbage.h5"
        try Data((0..<4096).map { UInt8($0 % 256) }).write(to: URL(fileURLWithPath: garbage))
        for bad in [dir + "/missing.h5", truncated, garbage] {
            try assertCleanFailure(["run", "supervised", "--profile", "smoke", "--dataset", bad] + results, naming: [bad])
            try assertCleanFailure(["data", "info", bad], naming: [bad])
        }
        // Images too small for convnet4's four 2×2 max-pools: refused before anything trains.
        let tiny = try dataset(side: 8, name: "tiny.h5")
        for experiment in ["supervised", "simsiam"] {
            try assertCleanFailure(["run", experiment, "--profile", "smoke", "--dataset", tiny] + results, naming: [tiny, "8×8", "16×16"])
        }
        let fifteen = try dataset(side: 15, name: "fifteen.h5")
        try assertCleanFailure(["run", "supervised", "--profile", "smoke", "--dataset", fifteen] + results, naming: ["15×15", "16×16"])
        try assertCleanFailure(["run", "nosuch"] + results, naming: ["nosuch"], maxLines: 3)
    }

    func testEvaluateRefusesEmptyAndMissingFeatureFiles() throws {
        let empty = try features(rows: 0, name: "empty.h5"), some = try features(rows: 5, name: "some.h5")
        try assertCleanFailure(["evaluate", "linear", "--train", empty, "--test", some], naming: [empty, "at least one row"], maxLines: 1)
        try assertCleanFailure(["evaluate", "linear", "--train", some, "--test", empty], naming: [empty], maxLines: 1)
        try assertCleanFailure(["evaluate", "knn", "--train", some, "--test", empty], naming: [empty], maxLines: 1)
        try assertCleanFailure(["evaluate", "knn", "--train", empty, "--test", some], naming: [empty], maxLines: 1)
        try assertCleanFailure(["evaluate", "kmeans", "--features", empty], naming: [empty], maxLines: 1)
        try assertCleanFailure(["evaluate", "retrieval", "--features", empty], naming: [empty], maxLines: 1)
        try assertCleanFailure(["evaluate", "knn", "--train", dir + "/nope.h5", "--test", some], naming: ["nope.h5"], maxLines: 1)
        // A usage error shows the subcommand's usage, not the top level's.
        let r = try replica(["evaluate", "knn", "--train", some])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("Usage: replica evaluate knn"), r.stderr)
    }

    /// The other data commands and bench: missing sources, unknown names.
    func testOtherCommandsNameWhatIsMissing() throws {
        try assertCleanFailure(["data", "cifar10", "--from", dir + "/no-cifar", "--out", dir + "/c.h5"], naming: ["no-cifar"], maxLines: 1)
        try assertCleanFailure(["data", "export-png", dir + "/none.h5", "--out", dir + "/e"], naming: ["none.h5"], maxLines: 1)
        try assertCleanFailure(["data", "pictures", "--data", dir + "/none.h5", "--out", dir + "/p"], naming: ["none.h5"], maxLines: 3)
        try assertCleanFailure(["bench", "--only", "R99", "--out", dir + "/b"], naming: ["R99"], maxLines: 3)
        try assertCleanFailure(["bench", "--threads", "0", "--out", dir + "/b"], naming: ["--threads"], maxLines: 3)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/b/engine.json"))
    }

    /// A run killed with SIGKILL after its first checkpoint, then resumed: the same
    /// metrics.csv, byte for byte, as a run that was never interrupted.
    func testARunKilledMidwayResumesToTheSameFiles() throws {
        let data = try dataset(side: 28, name: "ok.h5")
        let args = ["run", "supervised", "--profile", "smoke", "--dataset", data, "--set", "training.epochs=30", "--set", "training.batch_size=8"]
        XCTAssertEqual(try replica(args + ["--results", dir + "/whole"]).status, 0)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try binary)
        p.arguments = args + ["--results", dir + "/killed"]
        p.currentDirectoryURL = URL(fileURLWithPath: repositoryRoot)
        (p.standardOutput, p.standardError) = (FileHandle.nullDevice, FileHandle.nullDevice)
        try p.run()
        let checkpoint = dir + "/killed/supervised/smoke-ok/checkpoints/standard.h5"
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: checkpoint) && Date() < deadline { usleep(2_000) }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .uncaughtSignal, "the run finished before it could be killed")
        let resumed = try replica(args + ["--results", dir + "/killed", "--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("resuming after epoch"), resumed.stdout)
        let a = try Data(contentsOf: URL(fileURLWithPath: dir + "/whole/supervised/smoke-ok/metrics.csv"))
        let b = try Data(contentsOf: URL(fileURLWithPath: dir + "/killed/supervised/smoke-ok/metrics.csv"))
        XCTAssertEqual(String(decoding: a, as: UTF8.self), String(decoding: b, as: UTF8.self))
    }

    /// `replica sweep` over 2 arms × 3 seeds: the Slurm array script run here task by task
    /// (SLURM_ARRAY_TASK_ID set per task) and then its aggregate step, and `--emit local` two
    /// tasks at a time, give the aggregate, the per-seed histories and a claim between the
    /// arms as `run --seeds` writes them at the same thread count.
    func testSweepTasksMergeIntoTheSequentialAggregate() throws {
        let data = try dataset(side: 28, name: "ok.h5")
        var yaml = try String(contentsOfFile: repositoryRoot + "/experiments/supervised.yaml", encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: "arms:\n  standard: {}\n", with: "arms:\n  standard: {}\n  no_flip: {training: {flip: false, max_shift: 0}}\n")
        yaml += """
              - id: C-T
                paper_setting: "a claim between two arms"
                paper_says: "flips and shifts help"
                verified: false
                our_setting: "smoke"
                arm: standard
                metric: test_top1
                rule: {above_arm: no_flip, margin: 0}

            """
        let experimentFile = dir + "/two-arms.yaml"
        try yaml.write(toFile: experimentFile, atomically: true, encoding: .utf8)
        let common = ["supervised", "--profile", "smoke", "--dataset", data, "--file", experimentFile, "--set", "training.batch_size=8", "--seeds", "0,1,2"]
        let sequential = try replica(["run"] + common + ["--results", dir + "/seq"], environment: ["REPLICA_THREADS": "1"])
        XCTAssertEqual(sequential.status, 0, sequential.stderr)

        let emitted = try replica(["sweep"] + common + ["--emit", "slurm", "--threads", "1", "--results", dir + "/slurm"])
        XCTAssertEqual(emitted.status, 0, emitted.stderr)
        let script = dir + "/slurm/sweeps/supervised-smoke-seeds0_1_2.sbatch"
        let text = try String(contentsOfFile: script, encoding: .utf8)
        for line in ["#SBATCH --array=0-5", "#SBATCH --cpus-per-task=1", "export REPLICA_THREADS=1"] { XCTAssertTrue(text.contains(line), text) }
        XCTAssertTrue(emitted.stdout.contains("sbatch --dependency=afterok:"), emitted.stdout)
        let early = try replica(["sweep"] + common + ["--emit", "aggregate", "--results", dir + "/slurm"])
        XCTAssertEqual(early.status, 1)
        XCTAssertTrue(early.stderr.contains("smoke-ok/arms/standard/summary.json: missing"), early.stderr)
        for task in [2, 0, 5, 1, 4, 3] {   // the array's tasks in any order
            let r = try run("/bin/bash", [script], environment: ["SLURM_ARRAY_TASK_ID": String(task)])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        XCTAssertEqual(try run("/bin/bash", [script], environment: ["SLURM_ARRAY_TASK_ID": "6"]).status, 2)
        let merged = try replica(["sweep"] + common + ["--emit", "aggregate", "--results", dir + "/slurm"])
        XCTAssertEqual(merged.status, 0, merged.stderr)

        let local = try replica(["sweep"] + common + ["--emit", "local", "--jobs", "2", "--threads", "1", "--results", dir + "/local"])
        XCTAssertEqual(local.status, 0, local.stderr)

        func json(_ path: String) throws -> [String: Any] {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        }
        let expected = try json(dir + "/seq/supervised/smoke-ok-seeds3/summary.json")
        for root in ["slurm", "local"] {
            let got = try json(dir + "/\(root)/supervised/smoke-ok-seeds3/summary.json")
            for key in ["arms", "claims", "references"] {
                XCTAssertEqual(try canonical(got[key]), try canonical(expected[key]), "\(root): '\(key)' differs from the sequential aggregate")
            }
            XCTAssertEqual(Set(((got["arms"] as? [String: Any]) ?? [:]).keys), ["standard", "no_flip"])
            XCTAssertTrue(try canonical(got["claims"]).contains("C-T"))
            for folder in ["smoke-ok", "smoke-ok-seed1", "smoke-ok-seed2"] {
                let a = try String(contentsOfFile: dir + "/seq/supervised/\(folder)/metrics.csv", encoding: .utf8)
                XCTAssertEqual(try String(contentsOfFile: dir + "/\(root)/supervised/\(folder)/metrics.csv", encoding: .utf8), a, "\(root)/\(folder)")
            }
        }
    }

    func canonical(_ v: Any?) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: v ?? NSNull(), options: [.sortedKeys, .fragmentsAllowed]), as: UTF8.self)
    }

    /// An output into a folder that does not exist names the path asked for, not a temporary file.
    func testOutputsIntoMissingFoldersNameThePath() throws {
        let data = try dataset(side: 28, name: "ok.h5")
        let out = dir + "/no/such/folder/x.h5"
        try assertCleanFailure(["data", "import-png", dir + "/nothing-here", "--out", out], naming: ["nothing-here"], maxLines: 1)
        try assertCleanFailure(["data", "fashion-mnist", "--from", dir + "/no-idx", "--out", out], naming: ["no-idx"], maxLines: 1)
        let r = try replica(["data", "export-png", data, "--out", dir + "/exported"])
        XCTAssertEqual(r.status, 0, r.stderr)
        // The data commands create the folders they write into.
        XCTAssertEqual(try replica(["data", "import-png", dir + "/exported", "--out", out]).status, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out))
    }

    /// A checkpoint from a real smoke run, then `embed` against bad data and outputs.
    func testEmbedRefusesDataTheBackboneCannotTakeAndMissingFolders() throws {
        let data = try dataset(side: 28, name: "ok.h5")
        let run = try replica(["run", "supervised", "--profile", "smoke", "--dataset", data] + results)
        XCTAssertEqual(run.status, 0, run.stderr)
        let checkpoint = try XCTUnwrap(FileManager.default.enumerator(atPath: dir + "/results")?.compactMap { $0 as? String }.first { $0.hasSuffix(".h5") })
        let ckpt = dir + "/results/" + checkpoint
        try FileManager.default.removeItem(atPath: dir + "/results/supervised/smoke-ok/summary.json")   // only the checkpoint stays
        try FileManager.default.removeItem(atPath: dir + "/results/supervised/smoke-ok/table.md")
        let tiny = try dataset(side: 8, name: "tiny.h5")
        try assertCleanFailure(["embed", "--checkpoint", ckpt, "--data", tiny, "--out", dir + "/f.h5"], naming: [tiny, "8×8"], maxLines: 1)
        try assertCleanFailure(["embed", "--checkpoint", ckpt, "--data", data, "--out", dir + "/no/such/f.h5"], naming: [dir + "/no/such/f.h5"], maxLines: 1)
        try assertCleanFailure(["embed", "--checkpoint", dir + "/none.h5", "--data", data, "--out", dir + "/f.h5"], naming: ["none.h5"], maxLines: 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/f.h5"))
    }
}
