import Foundation

/// Where numbers came from: commit, uncommitted changes, date, machine, threads, seed.
public struct Provenance: Codable, Equatable {
    public let gitCommit: String, dirty: Bool, date: String, machine: String, threads: Int, seed: UInt64

    public static func current(threads: Int, seed: UInt64) -> Provenance {
        let commit = git(["rev-parse", "HEAD"]) ?? "unknown"
        let dirty = !(git(["status", "--porcelain", "--untracked-files=no"]) ?? "").isEmpty
        return Provenance(gitCommit: commit, dirty: dirty, date: ISO8601DateFormatter().string(from: Date()),
                          machine: machineDescription(), threads: threads, seed: seed)
    }

    public var json: [String: Any] {
        ["git_commit": gitCommit, "dirty": dirty, "date": date, "machine": machine, "threads": threads, "seed": seed]
    }
}

/// Runs git; nil when it fails.
public func git(_ args: [String]) -> String? {
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

public func machineDescription() -> String {
    let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
        .split(separator: "\n").first { $0.hasPrefix("model name") }?
        .split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
    return "\(cpu), \(ProcessInfo.processInfo.activeProcessorCount) cores"
}

/// Writes to a temporary file beside `path`, then renames: readers never see half a file.
public func writeAtomically(_ data: Data, to path: String) throws {
    let tmp = path + ".tmp-\(getpid())"
    try data.write(to: URL(fileURLWithPath: tmp))
    guard rename(tmp, path) == 0 else { throw RunError("cannot rename \(tmp) to \(path): \(String(cString: strerror(errno)))") }
}
