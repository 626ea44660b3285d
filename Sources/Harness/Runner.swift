import Datasets
import Engine
import Evaluation
import Foundation
import NN

public struct RunOptions {
    public var profile = "default"
    /// Arms to run (all when nil), in the file's order.
    public var arms: [String]?
    public var seed: UInt64?
    public var overrides: [(String, Any)] = []
    public var resume = false
    public var dataset: String?
    /// Stop after this many epochs of each arm (a checkpoint is kept; `resume` continues).
    public var stopAfterEpoch: Int?
    public var resultsRoot = "results"
    public var log: (String) -> Void = { print($0) }
    public init() {}
}

/// One arm's outcome.
public struct ArmResult {
    public let name: String
    public let config: [String: Any]
    public let metrics: [String: Double]
    public let history: [[String: Double]]
    /// Optimizer steps taken.
    public let steps: Int
    public let seconds: Double
    public let peakRSSMegabytes: Double
    public let note: String?
}

/// Runs every selected arm of `file` with experiment type `E` and writes
/// results/<experiment>/<profile>/. Returns nil when `stopAfterEpoch` interrupted the run.
@discardableResult
public func runExperiment<E: Experiment>(_ type: E.Type, file: ExperimentFile, options: RunOptions) throws -> RunSummary? {
    let profile = options.profile, seed = options.seed ?? file.seed, dataset = options.dataset ?? file.dataset
    // Another dataset or seed than the file's gets its own folder: results/simsiam/default-cifar10,
    // results/simsiam/default-seed1.
    let out = "\(options.resultsRoot)/\(file.experiment)/\(profile)" + (dataset == file.dataset ? "" : "-" + datasetStem(dataset))
        + (seed == file.seed ? "" : "-seed\(seed)")
    let checkpoints = out + "/checkpoints"
    try FileManager.default.createDirectory(atPath: checkpoints, withIntermediateDirectories: true)
    let provenance = Provenance.current(threads: Threads.count, seed: seed)   // the tree as it ran
    let armNames = options.arms ?? file.arms.map(\.key)
    for a in armNames where !file.arms.contains(where: { $0.key == a }) {
        throw ConfigError(file.path, "no arm '\(a)' (have: \(file.arms.map(\.key).joined(separator: ", ")))")
    }
    // Decode every arm first: a bad key fails before anything runs.
    var configs: [(String, [String: Any], E.Config)] = []
    for arm in armNames {
        let resolved = try file.resolved(arm: arm, profile: profile, overrides: options.overrides)
        configs.append((arm, resolved, try decodeConfig(E.Config.self, from: resolved, file: file.path)))
    }
    let start = Date()
    var results: [ArmResult] = []
    for (arm, resolved, config) in configs {
        let context = RunContext(experiment: file.experiment, arm: arm, profile: profile, dataset: dataset, seed: seed, knn: file.knnMonitor, output: out, log: options.log)
        let armStart = Date()
        let exp = try E(config: config, context: context)
        let path = "\(checkpoints)/\(arm).h5"
        var history: [[String: Double]] = []
        var firstEpoch = 0, secondsBefore = 0.0
        if options.resume && FileManager.default.fileExists(atPath: path) {
            let meta = try Checkpoint.load(into: exp.model, optimizer: exp.optimizer, from: path)
            let saved = try JSONSerialization.jsonObject(with: Data(meta.config.utf8)) as? [String: Any] ?? [:]
            func canonical(_ v: Any) throws -> Data { try JSONSerialization.data(withJSONObject: v, options: [.sortedKeys]) }
            guard try canonical(saved["config"] ?? [:]) == (try canonical(resolved)) else {
                throw RunError("\(path): the checkpoint was made with another configuration of arm '\(arm)'; run without --resume to start over")
            }
            history = (saved["history"] as? [[String: Double]]) ?? []
            secondsBefore = saved["seconds"] as? Double ?? 0
            firstEpoch = meta.epoch
            options.log("\(arm): resuming after epoch \(firstEpoch) from \(path)")
        }
        var note: String?
        let progress = ProgressLine(arm: arm, epochs: exp.epochs, steps: exp.stepsPerEpoch)
        for epoch in firstEpoch..<exp.epochs {
            var step = 0
            let trained = try exp.trainEpoch(epoch) { loss in
                step += 1
                guard loss.isFinite else {
                    throw RunError("arm '\(arm)', epoch \(epoch + 1), step \(step): the loss is \(loss); stopped. "
                                   + (epoch > 0 ? "The last good checkpoint is \(path) (epoch \(epoch))." : "No checkpoint was written."))
                }
                progress.update(epoch: epoch, step: step, loss: loss)
            }
            progress.trained()
            var row = trained.merging(try exp.evaluate(epoch: epoch, final: false)) { a, _ in a }
            if let m = file.knnMonitor, (epoch + 1) % m.every == 0 || epoch + 1 == exp.epochs, let knn = try knnMonitor(exp, m) {
                row["knn_top1"] = knn
            }
            row["epoch"] = Double(epoch + 1)
            history.append(row)
            progress.finish(epoch: epoch, metrics: row, log: options.log)
            let state = exp.checkpointInfo.merging(["config": resolved, "history": history,
                                                    "seconds": secondsBefore + Date().timeIntervalSince(armStart)]) { _, b in b }
            let json = String(decoding: try JSONSerialization.data(withJSONObject: state, options: [.sortedKeys]), as: UTF8.self)
            try Checkpoint.save(exp.model, optimizer: exp.optimizer,
                                metadata: CheckpointMetadata(config: json, seed: seed, epoch: epoch + 1, step: (epoch + 1) * exp.stepsPerEpoch,
                                                             gitCommit: provenance.gitCommit), to: path)
            if let stop = options.stopAfterEpoch, epoch + 1 >= stop, epoch + 1 < exp.epochs {
                options.log("\(arm): stopped after epoch \(epoch + 1) as asked; continue with --resume")
                return nil
            }
            if let reason = exp.earlyStop(history: history) { note = "stopped after epoch \(epoch + 1) of \(exp.epochs): \(reason)"; break }
        }
        var metrics = try exp.evaluate(epoch: history.count - 1, final: true).merging(exp.summary(of: history)) { a, _ in a }
        if let m = file.knnMonitor, metrics["knn_top1"] == nil {   // the monitored value after the last epoch run
            if let last = history.last?["knn_top1"] { metrics["knn_top1"] = last } else { metrics["knn_top1"] = try knnMonitor(exp, m) }
        }
        results.append(ArmResult(name: arm, config: resolved, metrics: metrics, history: history, steps: history.count * exp.stepsPerEpoch,
                                 seconds: secondsBefore + Date().timeIntervalSince(armStart), peakRSSMegabytes: peakRSSMegabytes(), note: note))
    }
    let (firstArm, _, firstConfig) = configs[0]
    let references = try E.references(config: firstConfig, context: RunContext(experiment: file.experiment, arm: firstArm, profile: profile,
                                                                             dataset: dataset, seed: seed, knn: file.knnMonitor, output: out, log: options.log))
    let summary = RunSummary(file: file, profile: profile, dataset: dataset, datasetSHA256: try sha256(file: dataset), arms: results,
                             references: references, provenance: provenance, seconds: Date().timeIntervalSince(start))
    try summary.write(to: out)
    options.log(summary.claimsTable())
    return summary
}

/// kNN top-1 of the experiment's test features against its training features.
func knnMonitor<E: Experiment>(_ exp: E, _ m: ExperimentFile.KNNMonitor) throws -> Double? {
    guard let bank = try exp.features(split: "train"), let queries = try exp.features(split: "test") else { return nil }
    return try knnClassify(bank: bank, queries: queries, k: min(m.k, bank.count), temperature: m.temperature).top1
}

/// "data/cifar10.h5" → "cifar10".
func datasetStem(_ path: String) -> String { ((path as NSString).lastPathComponent as NSString).deletingPathExtension }

/// Peak resident memory of this process so far.
public func peakRSSMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// One live line on a terminal (epoch, step/steps, loss, images/s, ETA); a plain line per
/// epoch otherwise.
final class ProgressLine {
    let arm: String, epochs: Int, steps: Int
    let terminal = isatty(STDOUT_FILENO) != 0
    var epochStart = Date(), trainedAt = Date(), lastDraw = Date.distantPast
    init(arm: String, epochs: Int, steps: Int) { (self.arm, self.epochs, self.steps) = (arm, epochs, steps) }

    func update(epoch: Int, step: Int, loss: Double) {
        if step == 1 { epochStart = Date() }
        guard terminal, Date().timeIntervalSince(lastDraw) > 0.2 || step == steps else { return }
        lastDraw = Date()
        let elapsed = Date().timeIntervalSince(epochStart)
        let perStep = elapsed / Double(step)
        let eta = perStep * Double(steps - step + (epochs - epoch - 1) * steps)
        let line = String(format: "\r%@ epoch %d/%d  step %d/%d  loss %.4f  %.1f steps/s  ETA %@", arm, epoch + 1, epochs, step, steps, loss,
                          1 / max(perStep, 1e-9), duration(eta))
        FileHandle.standardOutput.write(Data((line + "\u{1B}[K").utf8))
    }

    /// Marks the end of the epoch's training steps (the rest is evaluation).
    func trained() { trainedAt = Date() }

    func finish(epoch: Int, metrics: [String: Double], log: (String) -> Void) {
        if terminal { FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8)) }
        let shown = metrics.filter { $0.key != "epoch" }.sorted { $0.key < $1.key }.map { String(format: "%@ %.4g", $0.key, $0.value) }
        log(String(format: "%@ epoch %d/%d  %@  (train %.1f s, eval %.1f s)", arm, epoch + 1, epochs, shown.joined(separator: "  "),
                   trainedAt.timeIntervalSince(epochStart), Date().timeIntervalSince(trainedAt)))
    }
}

func duration(_ s: Double) -> String {
    let t = Int(s.rounded())
    return t >= 3600 ? String(format: "%dh%02dm", t / 3600, t % 3600 / 60) : String(format: "%dm%02ds", t / 60, t % 60)
}
