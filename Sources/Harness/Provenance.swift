import Datasets
import Engine
import Foundation

/// Where numbers came from: commit, uncommitted changes, date, machine (CPU with its vector
/// ISA, BLAS with its kernel: what bit-exact replay depends on), threads (per rank), MPI ranks,
/// seed.
public struct Provenance: Codable, Equatable {
    public let gitCommit: String, dirty: Bool, date: String, machine: String, cpu: String, blas: String, libraries: String, threads: Int, seed: UInt64
    /// MPI ranks of a data-parallel run; nil for one process.
    public var ranks: Int? = nil

    public static func current(threads: Int, seed: UInt64) -> Provenance {
        let commit = git(["rev-parse", "HEAD"]) ?? "unknown"
        // Uncommitted changes outside results/: the runs of one `--seeds` sequence (or a
        // reproduce-all) rewrite tracked result files, which says nothing about the code.
        let dirty = !(git(["status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"]) ?? "").isEmpty
        return Provenance(gitCommit: commit, dirty: dirty, date: ISO8601DateFormatter().string(from: Date()),
                          machine: machineDescription(), cpu: Platform.cpu, blas: Platform.blas, libraries: fileLibraryVersions,
                          threads: threads, seed: seed, ranks: Distributed.size > 1 ? Distributed.size : nil)
    }

    public var json: [String: Any] {
        ["git_commit": gitCommit, "dirty": dirty, "date": date, "machine": machine, "cpu": cpu, "blas": blas, "libraries": libraries, "threads": threads, "seed": seed]
            .merging(ranks.map { ["ranks": $0] } ?? [:]) { a, _ in a }
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
    try writeAtomically(to: path) { try data.write(to: URL(fileURLWithPath: $0)) }
}

/// The module that defines `type` ("SimSiam" for SimSiam.SimSiamExperiment).
public func moduleName(of type: Any.Type) -> String { String(String(reflecting: type).prefix { $0 != "." }) }

/// The source folders an experiment's numbers depend on: its module's target and every
/// target it depends on, read from the package manifest (so the list is never kept by hand).
/// Empty when the manifest is not in the working directory.
public func codePaths(of type: Any.Type, manifest: String = "Package.swift") -> [String] {
    guard let text = try? String(contentsOfFile: manifest, encoding: .utf8) else { return [] }
    let closure = targetClosure(moduleName(of: type), manifest: text)
    let root = (manifest as NSString).deletingLastPathComponent
    return closure.map { "Sources/" + $0 }.filter { FileManager.default.fileExists(atPath: root.isEmpty ? $0 : root + "/" + $0) }
}

/// `target` and everything it depends on (transitively) among the manifest's targets, sorted.
public func targetClosure(_ target: String, manifest text: String) -> [String] {
    let regex = try! NSRegularExpression(pattern: #"\.(?:target|executableTarget|systemLibrary|testTarget)\(\s*name:\s*"(\w+)"(?:[^\[\)]*dependencies:\s*\[([^\]]*)\])?"#)
    var deps: [String: [String]] = [:]
    let ns = text as NSString
    for m in regex.matches(in: text, range: NSRange(location: 0, length: ns.length)) {
        let name = ns.substring(with: m.range(at: 1))
        let list = m.range(at: 2).location == NSNotFound ? "" : ns.substring(with: m.range(at: 2))
        // Plain "Name" entries are targets; .product(name: …, package: …) ones are other packages.
        let plainList = list.replacingOccurrences(of: #"\.product\([^)]*\)"#, with: "", options: .regularExpression)
        deps[name] = plainList.split(separator: "\"", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
    }
    var seen: Set<String> = [], todo = [target]
    while let t = todo.popLast() {
        guard let d = deps[t], seen.insert(t).inserted else { continue }
        todo += d
    }
    return seen.sorted()
}

/// What the committed tree and uncommitted changes hold under `paths` (nil without git):
/// equal fingerprints mean equal code.
public func codeFingerprint(_ paths: [String]) -> String? {
    guard !paths.isEmpty, let tree = git(["ls-tree", "-r", "HEAD", "--"] + paths), let diff = git(["diff", "HEAD", "--"] + paths) else { return nil }
    return tree + "\n" + diff
}
