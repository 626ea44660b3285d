import Foundation

/// Where a number came from: the commit, whether the tree had uncommitted changes, when,
/// on what machine and with how many threads.
func provenance(threads: Int, seed: UInt64) -> [String: Any] {
    func git(_ args: [String]) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git"] + args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return p.terminationStatus == 0 ? String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : nil
    }
    let commit = git(["rev-parse", "HEAD"]) ?? "unknown"
    let dirty = (git(["status", "--porcelain", "--untracked-files=no"]) ?? "").isEmpty == false
    return ["git_commit": commit, "dirty": dirty, "date": ISO8601DateFormatter().string(from: Date()),
            "machine": machineDescription(), "threads": threads, "seed": seed]
}

/// A problem with an input file: printed as one line, exit status 1, no usage text
/// (ValidationError is for bad options).
struct InputError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
