import Evaluation
import Foundation

/// Where an arm of a seed runs as its own task of a sweep: <seed folder>/arms/<arm>.
public func armTaskFolder(_ seedFolder: String, arm: String) -> String { seedFolder + "/arms/" + arm }

/// Writes a seed's results folder from its arm tasks (`RunOptions.armTask`) as one run of
/// those arms writes it: the arms in the order given, with their metrics, histories and
/// budgets read back exactly; the reference rows, imports and settings of the first arm's
/// task; claims decided over all of them. Every task must come from the same commit and
/// dataset.
public func mergeArmTasks<E: Experiment>(_ type: E.Type, file: ExperimentFile, options: RunOptions, seed: UInt64, arms: [String]) throws {
    let seedFolder = resultsFolder(file, options, seed: seed)
    var tasks: [[String: Any]] = [], results: [ArmResult] = []
    for arm in arms {
        let folder = armTaskFolder(seedFolder, arm: arm), path = folder + "/summary.json"
        guard let data = FileManager.default.contents(atPath: path) else { throw RunError("\(path): missing (that arm's task has not finished)") }
        guard let s = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let entry = (s["arms"] as? [String: Any])?[arm] as? [String: Any], let config = entry["config"] as? [String: Any],
              let metrics = entry["metrics"] as? [String: Any], let budget = (s["budget"] as? [String: Any])?[arm] as? [String: Any],
              let steps = budget["steps"] as? Int, let seen = budget["images_seen"] as? Int else {
            throw RunError("\(path): not the summary of a run of arm '\(arm)'")
        }
        if let first = tasks.first {
            for key in ["git_commit", "dirty"] where "\((first["provenance"] as? [String: Any])?[key] ?? "")" != "\((s["provenance"] as? [String: Any])?[key] ?? "")" {
                throw RunError("\(path): the arm tasks ran at different commits or trees (\(key)); run them again at one commit")
            }
            let sha = { (t: [String: Any]) in (t["dataset"] as? [String: Any])?["sha256"] as? String }
            guard sha(first) == sha(s) else { throw RunError("\(path): the arm tasks read different datasets") }
        }
        tasks.append(s)
        results.append(ArmResult(name: arm, config: config, metrics: metrics.compactMapValues { $0 as? Double },
                                 history: try historyRows(folder + "/metrics.csv", arm: arm), steps: steps, imagesPerStep: steps > 0 ? seen / steps : 0,
                                 seconds: entry["seconds"] as? Double ?? 0, peakRSSMegabytes: entry["peak_rss_mb"] as? Double ?? 0, note: entry["note"] as? String))
    }
    let first = tasks[0]
    let p = first["provenance"] as? [String: Any] ?? [:], dataset = first["dataset"] as? [String: Any] ?? [:]
    let provenance = Provenance(gitCommit: p["git_commit"] as? String ?? "unknown", dirty: p["dirty"] as? Bool ?? true, date: p["date"] as? String ?? "",
                                machine: p["machine"] as? String ?? "", cpu: p["cpu"] as? String ?? "", blas: p["blas"] as? String ?? "",
                                libraries: p["libraries"] as? String ?? "", threads: p["threads"] as? Int ?? 0, seed: seed, ranks: p["ranks"] as? Int)
    // Reference rows in the method's order, then imported rows in the file's order.
    let rows = (first["references"] as? [String: [String: Any]] ?? [:]).mapValues { $0.compactMapValues { $0 as? Double } }
    let imports = first["imports"] as? [[String: Any]] ?? []
    let order = E.referenceNames + imports.compactMap { $0["row"] as? String }
    let names = rows.keys.sorted { (order.firstIndex(of: $0) ?? order.count, $0) < (order.firstIndex(of: $1) ?? order.count, $1) }
    var summary = RunSummary(file: file, profile: options.profile, dataset: dataset["path"] as? String ?? file.dataset, datasetSHA256: dataset["sha256"] as? String ?? "",
                             arms: results, references: names.map { ($0, rows[$0]!) }, provenance: provenance,
                             seconds: tasks.reduce(0) { $0 + ($1["seconds"] as? Double ?? 0) }, code: first["code"] as? [String] ?? [],
                             evaluation: first["evaluation"] as? [String: Any] ?? [:], referenceSettings: first["reference_settings"] as? [String: Any] ?? [:])
    summary.metrics = E.metrics + [.knnTop1]
    summary.imports = imports
    try summary.write(to: seedFolder)
}

/// An arm's per-epoch rows from metrics.csv (Swift prints each Double so that it reads back
/// to the same bits).
func historyRows(_ path: String, arm: String) throws -> [[String: Double]] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw RunError("\(path): missing") }
    let lines = text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    guard let header = lines.first, header.count >= 2 else { throw RunError("\(path): no header") }
    return try lines.dropFirst().filter { $0.first == arm }.map { cells in
        guard cells.count == header.count, let epoch = Double(cells[1]) else { throw RunError("\(path): a row of \(cells.count) cells under \(header.count) columns") }
        var row: [String: Double] = [Metric.epoch.key: epoch]
        for (k, v) in zip(header.dropFirst(2), cells.dropFirst(2)) where !v.isEmpty {
            guard let d = Double(v) else { throw RunError("\(path): '\(v)' under \(k) is not a number") }
            row[k] = d
        }
        return row
    }
}
