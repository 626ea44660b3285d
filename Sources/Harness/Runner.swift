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
    /// False for the second and later seeds of `runSeeds`.
    public var firstSeed = true
    /// Writes every optimizer step's loss (mean over the ranks) to this file, a line
    /// "arm epoch step loss" each (the loss as its bit pattern too, for exact comparison).
    public var stepLosses: String?
    /// Run one arm as one task of a sweep (`replica sweep`): its summary and checkpoints go to
    /// <seed folder>/arms/<arm>/ (`armTaskFolder`), and only the task that `computesReferences`
    /// computes the reference rows and imports; `mergeArmTasks` writes the seed folder.
    public var armTask: ArmTask?
    public struct ArmTask { public var computesReferences: Bool; public init(computesReferences: Bool) { self.computesReferences = computesReferences } }
    public var log: (String) -> Void = { print($0) }
    public init() {}
}

/// One arm's outcome.
public struct ArmResult {
    public let name: String
    public let config: [String: Any]
    public let metrics: [String: Double]
    public let history: [[String: Double]]
    /// Optimizer steps taken, and training images per step (batch × views).
    public let steps: Int, imagesPerStep: Int
    public let seconds: Double
    public let peakRSSMegabytes: Double
    public let note: String?
}

/// results/<experiment>/<profile>[-<dataset>][-seed<N>]: another dataset or seed than the
/// file's gets its own folder (results/simsiam/default-cifar10, results/simsiam/default-seed1).
public func resultsFolder(_ file: ExperimentFile, _ options: RunOptions, seed: UInt64? = nil) -> String {
    let seed = seed ?? options.seed ?? file.seed, dataset = options.dataset ?? file.dataset
    return "\(options.resultsRoot)/\(file.experiment)/\(options.profile)" + (dataset == file.dataset ? "" : "-" + datasetStem(dataset))
        + (seed == file.seed ? "" : "-seed\(seed)")
}

/// Everything a run of `file` decides before it trains: the arms' configs, the evaluation
/// and reference sections, and the checks of every name the file uses.
struct RunPlan<E: Experiment> {
    let arms: [(name: String, resolved: [String: Any], config: E.Config)]
    let evaluation: EvaluationSettings, references: ReferenceSettings
    let evaluationJSON: [String: Any], referencesJSON: [String: Any]

    init(_ file: ExperimentFile, _ options: RunOptions) throws {
        let names = options.arms ?? file.arms.map(\.key)
        for a in names where !file.arms.contains(where: { $0.key == a }) {
            throw ConfigError(file.path, "no arm '\(a)' (have: \(file.arms.map(\.key).joined(separator: ", ")))")
        }
        evaluationJSON = file.section("evaluation", profile: options.profile, overrides: options.overrides)
        referencesJSON = file.section("references", profile: options.profile, overrides: options.overrides)
        evaluation = try decodeConfig(EvaluationSettings.self, from: evaluationJSON, file: file.path, key: "evaluation")
        references = try decodeConfig(ReferenceSettings.self, from: referencesJSON, file: file.path, key: "references")
        do { try evaluation.validate(); try references.validate() } catch let e as RangeError { throw ConfigError(file.path, e.description) }
        try file.validate(metrics: E.metrics + [.epoch] + (evaluation.knn == nil ? [] : [.knnTop1]), references: E.referenceNames)
        arms = try names.map { arm in
            let resolved = try file.resolved(arm: arm, profile: options.profile, overrides: options.overrides)
            return (arm, resolved, try decodeConfig(E.Config.self, from: resolved, file: file.path))
        }
        // The file as written, not only this run's resolution: `config` with each arm, and
        // every profile, must decode (a wrong type that this profile overrides is still an error).
        for arm in file.arms.map(\.key) {
            for profile in [nil] + file.profiles.keys.sorted() {
                let written = try profile.map { try file.resolved(arm: arm, profile: $0, overrides: []) } ?? file.asWritten(arm: arm)
                do { _ = try decodeConfig(E.Config.self, from: written, file: file.path) } catch let e as ConfigError {
                    throw ConfigError(file.path, e.message + (profile.map { " (profile '\($0)', arm '\(arm)')" } ?? " (arm '\(arm)' as written)"))
                }
            }
        }
    }
}

/// Runs every selected arm of `file` with experiment type `E` at one seed and writes its
/// results folder. Returns nil when `stopAfterEpoch` interrupted the run.
@discardableResult
public func runExperiment<E: Experiment>(_ type: E.Type, file: ExperimentFile, options: RunOptions) throws -> RunSummary? {
    let profile = options.profile, seed = options.seed ?? file.seed, dataset = options.dataset ?? file.dataset
    let plan = try RunPlan<E>(file, options)   // a bad key fails before anything runs
    let seedFolder = resultsFolder(file, options)
    if options.armTask != nil && plan.arms.count != 1 { throw RunError("an arm task runs exactly one arm (--arms), got \(plan.arms.count)") }
    let out = options.armTask == nil ? seedFolder : armTaskFolder(seedFolder, arm: plan.arms[0].name)
    let checkpoints = out + "/checkpoints"
    // Data-parallel runs: every rank trains; rank 0 alone writes (checkpoints, results, log).
    let leader = Distributed.isLeader
    if leader { for f in [checkpoints, seedFolder] { try FileManager.default.createDirectory(atPath: f, withIntermediateDirectories: true) } }
    let provenance = Provenance.current(threads: Threads.count, seed: seed)   // the tree as it ran
    let code = codePaths(of: E.self) + ["experiments/\(file.experiment).yaml"]
    let cache = RunCache()
    let datasetSHA256 = try sha256(file: dataset)
    func context(_ arm: String) -> RunContext {
        RunContext(experiment: file.experiment, arm: arm, profile: profile, dataset: dataset, datasetSHA256: datasetSHA256, seed: seed,
                   firstSeed: options.firstSeed, evaluation: plan.evaluation, references: plan.references, output: seedFolder, cache: cache, log: options.log)
    }
    let start = Date()
    var results: [ArmResult] = []
    var stepLosses: [String] = []
    for (arm, resolved, config) in plan.arms {
        let armStart = Date()
        let exp: E
        do { exp = try E(config: config, context: context(arm)) } catch let e as RangeError { throw ConfigError(file.path, e.description) }
        guard exp.epochs >= 1, exp.stepsPerEpoch >= 1, exp.imagesPerStep >= 1 else {
            throw RunError("arm '\(arm)': \(exp.epochs) epochs of \(exp.stepsPerEpoch) steps of \(exp.imagesPerStep) images: nothing to train")
        }
        let path = "\(checkpoints)/\(arm).h5"
        var history: [[String: Double]] = []
        var firstEpoch = 0, secondsBefore = 0.0, lastGood: Int?   // the epoch of the checkpoint on disk
        if options.resume && FileManager.default.fileExists(atPath: path) {
            let meta = try Checkpoint.load(into: exp.model, optimizer: exp.optimizer, from: path)
            let saved = try JSONSerialization.jsonObject(with: Data(meta.config.utf8)) as? [String: Any] ?? [:]
            guard try canonicalJSON(saved["config"] ?? [:]) == (try canonicalJSON(resolved)) else {
                throw RunError("\(path): the checkpoint was made with another configuration of arm '\(arm)'; run without --resume to start over")
            }
            history = try decodeHistory(saved["history"], path: path)
            secondsBefore = saved["seconds"] as? Double ?? 0
            firstEpoch = meta.epoch
            lastGood = meta.epoch
            options.log("\(arm): resuming after epoch \(firstEpoch) from \(path)")
        }
        var note: String?
        let progress = ProgressLine(arm: arm, epochs: exp.epochs, steps: exp.stepsPerEpoch, quiet: !leader)
        let monitor = plan.evaluation.knn
        var trainSeconds = 0.0, communication = 0.0
        // Training throughput (what `make bench-mpi` reads), and under mpirun the share of rank
        // 0's training time spent in collectives, waiting for the other ranks included.
        func logThroughput() {
            let images = Double((history.count - firstEpoch) * exp.stepsPerEpoch * exp.imagesPerStep)
            let gradientMB = Double(exp.model.trainableParameters().reduce(0) { $0 + $1.count }) * 4 / 1e6
            options.log(String(format: "%@: %d rank%@ × %d thread%@, %.1f images/s in training, %.1f%% of it in communication; %.2f MB of gradients per step",
                               arm, Distributed.size, Distributed.size == 1 ? "" : "s", Threads.count, Threads.count == 1 ? "" : "s",
                               images / max(trainSeconds, 1e-9), 100 * communication / max(trainSeconds, 1e-9), gradientMB))
        }
        for epoch in firstEpoch..<exp.epochs {
            var step = 0
            let (epochStart, communicationBefore) = (Date(), Distributed.communicationSeconds)
            var trained = try Distributed.dataParallel {
                try exp.trainEpoch(epoch) { rankLoss in
                step += 1
                var mean = [rankLoss]   // every rank's, averaged: the global batch's loss
                Distributed.sum(&mean)
                let loss = mean[0] / Double(Distributed.size)
                if options.stepLosses != nil { stepLosses.append("\(arm) \(epoch + 1) \(step) \(loss) \(String(loss.bitPattern, radix: 16))") }
                guard loss.isFinite else {
                    throw RunError("arm '\(arm)', epoch \(epoch + 1), step \(step): the loss is \(loss); stopped. "
                                   + (lastGood.map { "The last good checkpoint is \(path) (epoch \($0))." } ?? "No checkpoint was written."))
                }
                progress.update(epoch: epoch, step: step, loss: loss)
                }
            }
            trainSeconds += Date().timeIntervalSince(epochStart)
            communication += Distributed.communicationSeconds - communicationBefore
            if Distributed.size > 1 {
                // The epoch's training metrics as the mean over the ranks, and rank 0's
                // parameters and buffers on every rank (BN running statistics of per-rank BN).
                trained = Distributed.mean(trained)
                Distributed.broadcast(exp.model.stateDict().map(\.tensor))
            }
            if let path = options.stepLosses, leader { try writeAtomically(Data((stepLosses.joined(separator: "\n") + "\n").utf8), to: path) }
            progress.trained()
            var row = trained.merging(try exp.evaluate(epoch: epoch, final: false)) { a, _ in a }
            if let m = monitor, (epoch + 1) % m.every == 0 || epoch + 1 == exp.epochs, let knn = try knnMonitor(exp, m) {
                row[Metric.knnTop1] = knn
            }
            row[Metric.epoch] = Double(epoch + 1)
            history.append(row)
            progress.finish(epoch: epoch, metrics: row, log: options.log)
            if let key = nonFiniteState(exp.model, exp.optimizer) {
                throw RunError("arm '\(arm)', epoch \(epoch + 1): '\(key)' is no longer finite; stopped. "
                               + (lastGood.map { "The last good checkpoint is \(path) (epoch \($0))." } ?? "No checkpoint was written."))
            }
            let state = exp.checkpointInfo.merging(["config": resolved, "history": encodeHistory(history), "cpu": provenance.cpu,
                                                    "blas": provenance.blas, "seconds": secondsBefore + Date().timeIntervalSince(armStart)]) { _, b in b }
            let json = String(decoding: try JSONSerialization.data(withJSONObject: state, options: [.sortedKeys]), as: UTF8.self)
            if leader { try Checkpoint.save(exp.model, optimizer: exp.optimizer,
                                metadata: CheckpointMetadata(config: json, seed: seed, epoch: epoch + 1, step: (epoch + 1) * exp.stepsPerEpoch,
                                                             gitCommit: provenance.gitCommit), to: path) }
            lastGood = epoch + 1
            if let stop = options.stopAfterEpoch, epoch + 1 >= stop, epoch + 1 < exp.epochs {
                logThroughput()
                options.log("\(arm): stopped after epoch \(epoch + 1) as asked; continue with --resume")
                return nil
            }
            if let reason = exp.earlyStop(history: history) { note = "stopped after epoch \(epoch + 1) of \(exp.epochs): \(reason)"; break }
        }
        logThroughput()
        guard leader else { continue }   // the final evaluation and the results are rank 0's
        var metrics = try exp.evaluate(epoch: history.count - 1, final: true).merging(exp.summary(of: history)) { a, _ in a }
        if let m = monitor, metrics[Metric.knnTop1] == nil {   // the monitored value after the last epoch run
            if let last = history.last?[Metric.knnTop1] { metrics[Metric.knnTop1] = last } else { metrics[Metric.knnTop1] = try knnMonitor(exp, m) }
        }
        results.append(ArmResult(name: arm, config: resolved, metrics: metrics, history: history, steps: history.count * exp.stepsPerEpoch,
                                 imagesPerStep: exp.imagesPerStep, seconds: secondsBefore + Date().timeIntervalSince(armStart),
                                 peakRSSMegabytes: peakRSSMegabytes(), note: note))
    }
    guard leader else { return nil }
    let first = plan.arms[0], rows = options.armTask?.computesReferences ?? true
    let references = !rows ? [] : try cachedReferences(E.self, config: first.config, context: context(first.name), plan: plan,
                                                       code: code.filter { $0 != "Sources/" + moduleName(of: E.self) }, root: options.resultsRoot)
    let imported = !rows ? [] : try importedRows(file, folder: seedFolder, budget: results.first.map { ($0.steps, $0.imagesPerStep) }, log: options.log)
    var summary = RunSummary(file: file, profile: profile, dataset: dataset, datasetSHA256: datasetSHA256, arms: results,
                             references: references + imported.map { ($0.row, $0.metrics) }, provenance: provenance,
                             seconds: Date().timeIntervalSince(start), code: code, evaluation: plan.evaluationJSON, referenceSettings: plan.referencesJSON)
    summary.metrics = E.metrics + [.knnTop1]
    summary.imports = imported.map(\.source)
    try summary.write(to: out)
    options.log(summary.claimsSummary(width: 100) + "\nfull table: \(out)/table.md")
    return summary
}

/// The file's `imports`: each an arm of another experiment's run at the same profile, dataset
/// and seed (results/<experiment>/<this run's folder name>), whose training budget must equal
/// this run's first arm's (optimizer steps and images per step). A missing run or arm is
/// logged and left out (claims on it are inconclusive); a different budget is an error.
func importedRows(_ file: ExperimentFile, folder out: String, budget: (steps: Int, images: Int)?,
                  log: (String) -> Void) throws -> [(row: String, metrics: [String: Double], source: [String: Any])] {
    try file.imports.compactMap { imp in
        let root = ((out as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
        let folder = "\(root)/\(imp.experiment)/\((out as NSString).lastPathComponent)", path = folder + "/summary.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            log("import '\(imp.row)': \(path) is missing (run \(imp.experiment) with this profile and seed first); the row is left out")
            return nil
        }
        guard let s = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw RunError("\(path): not a JSON object") }
        guard let arm = (s["arms"] as? [String: Any])?[imp.arm] as? [String: Any], let metrics = arm["metrics"] as? [String: Any],
              let b = (s["budget"] as? [String: Any])?[imp.arm] as? [String: Any], let steps = b["steps"] as? Int, let seen = b["images_seen"] as? Int else {
            log("import '\(imp.row)': \(path) has no arm '\(imp.arm)'; the row is left out")
            return nil
        }
        if let (ourSteps, images) = budget, steps != ourSteps || seen != ourSteps * images {
            throw RunError("\(file.path): import '\(imp.row)' (\(path), arm '\(imp.arm)') trained \(steps) steps and saw \(seen) images; "
                           + "this run trains \(ourSteps) steps of \(images) images: the comparison needs equal budgets")
        }
        let p = s["provenance"] as? [String: Any] ?? [:]
        log("import '\(imp.row)': arm '\(imp.arm)' of \(path) (commit \((p["git_commit"] as? String ?? "?").prefix(8)))")
        return (imp.row, metrics.compactMapValues { $0 as? Double },
                ["row": imp.row, "experiment": imp.experiment, "arm": imp.arm, "folder": folder, "git_commit": p["git_commit"] ?? "unknown",
                 "dirty": p["dirty"] ?? NSNull(), "steps": steps, "images_seen": seen])
    }
}

/// The reference rows, from the run's own data, or from the cache when the file asks for
/// it and an earlier run had the same inputs, dataset, seed, evaluation and shared code.
func cachedReferences<E: Experiment>(_ type: E.Type, config: E.Config, context: RunContext, plan: RunPlan<E>, code: [String],
                                     root: String) throws -> [(name: String, metrics: [String: Double])] {
    guard plan.references.cache == true, let inputs = E.referenceInputs(config: config, context: context),
          let fingerprint = codeFingerprint(code) else { return try E.references(config: config, context: context) }
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    let key = sha256(data: try encoder.encode(inputs) + canonicalJSON(["dataset": context.datasetSHA256, "seed": context.seed,
        "first_seed": context.firstSeed, "evaluation": plan.evaluationJSON, "references": plan.referencesJSON.filter { $0.key != "cache" },
        "code": fingerprint]))
    let path = "\(root)/.cache/references/\(key).json"
    if let data = FileManager.default.contents(atPath: path), let rows = decodeReferences(data) {
        context.log("reference rows: reused from \(path)")
        return rows
    }
    let rows = try E.references(config: config, context: context)
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try writeAtomically(try canonicalJSON(rows.map { ["name": $0.name, "metrics": $0.metrics.mapValues { String($0.bitPattern, radix: 16) }] as [String: Any] }), to: path)
    return rows
}

/// Rows stored bit-exactly (each Double's bit pattern in hex).
func decodeReferences(_ data: Data) -> [(name: String, metrics: [String: Double])]? {
    guard let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return nil }
    var rows: [(name: String, metrics: [String: Double])] = []
    for r in list {
        guard let name = r["name"] as? String, let m = r["metrics"] as? [String: String] else { return nil }
        var metrics: [String: Double] = [:]
        for (k, v) in m { guard let bits = UInt64(v, radix: 16) else { return nil }; metrics[k] = Double(bitPattern: bits) }
        rows.append((name, metrics))
    }
    return rows
}

func canonicalJSON(_ v: Any) throws -> Data { try JSONSerialization.data(withJSONObject: v, options: [.sortedKeys]) }

/// kNN top-1 of the experiment's test features against its training features.
func knnMonitor<E: Experiment>(_ exp: E, _ m: EvaluationSettings.KNN) throws -> Double? {
    guard let bank = try exp.features(split: "train"), let queries = try exp.features(split: "test") else { return nil }
    return try knnClassify(bank: bank, queries: queries, k: min(m.k, bank.count), temperature: m.temperature).top1
}

/// "data/cifar10.h5" → "cifar10".
func datasetStem(_ path: String) -> String { ((path as NSString).lastPathComponent as NSString).deletingPathExtension }

/// Peak resident memory of this process so far.
public func peakRSSMegabytes() -> Double {
    // VmHWM is this process's own peak since exec. getrusage's ru_maxrss also counts the
    // parent's resident size at fork time (Linux carries it across exec), so a run started
    // from a large process (a Python bench driver) would report the parent's size.
    if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
       let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
       let kb = Double(line.split(separator: " ").dropFirst().first ?? "") {
        return kb / 1024
    }
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// One live line on a terminal (epoch, step/steps, loss, images/s, ETA); a plain line per
/// epoch otherwise.
final class ProgressLine {
    let arm: String, epochs: Int, steps: Int
    let terminal: Bool
    var epochStart = Date(), trainedAt = Date(), lastDraw = Date.distantPast
    init(arm: String, epochs: Int, steps: Int, quiet: Bool = false) {
        (self.arm, self.epochs, self.steps) = (arm, epochs, steps)
        terminal = !quiet && isatty(STDOUT_FILENO) != 0
    }

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

/// The first parameter, buffer or optimizer state (by key) holding a NaN or infinity, or nil:
/// such a state is never written as a checkpoint.
func nonFiniteState(_ model: Module, _ optimizer: Optimizer) -> String? {
    for (key, t) in model.stateDict() where !t.array.allSatisfy(\.isFinite) { return key }
    for (key, buffers) in optimizer.state.sorted(by: { $0.key < $1.key }) {
        for (name, t) in buffers.sorted(by: { $0.key < $1.key }) where !t.array.allSatisfy(\.isFinite) { return "optimizer \(key) \(name)" }
    }
    return nil
}

/// Per-epoch rows with each value as its bit pattern in hex: a resumed run reads back exactly
/// the doubles it wrote (a decimal round trip through JSON can move the last bit).
func encodeHistory(_ history: [[String: Double]]) -> [[String: String]] {
    history.map { $0.mapValues { String($0.bitPattern, radix: 16) } }
}

func decodeHistory(_ value: Any?, path: String) throws -> [[String: Double]] {
    guard let rows = value as? [[String: String]] else { throw RunError("\(path): the checkpoint's history is missing or not in this version's format") }
    return try rows.map { row in
        try row.mapValues { v in
            guard let bits = UInt64(v, radix: 16) else { throw RunError("\(path): the checkpoint's history holds '\(v)', not a bit pattern") }
            return Double(bitPattern: bits)
        }
    }
}
