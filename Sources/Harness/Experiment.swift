import Engine
import Evaluation
import Foundation
import NN

/// What an experiment gets from the runner for one arm.
public struct RunContext {
    public let experiment: String, arm: String, profile: String
    /// The dataset file (the experiment's default, or --dataset) and its sha256.
    public let dataset: String, datasetSHA256: String
    public let seed: UInt64
    /// False for the second and later seeds of `--seeds` (reference rows that the file
    /// shares across seeds are computed at the first one only).
    public let firstSeed: Bool
    /// The shared evaluation protocol and the reference rows, as the experiment file sets them.
    public let evaluation: EvaluationSettings
    public let references: ReferenceSettings
    /// This run's results folder (results/<experiment>/<profile>), for pictures.
    public let output: String
    /// Values shared by the arms and reference rows of one run (the loaded dataset).
    public let cache: RunCache
    public let log: (String) -> Void

    public init(experiment: String, arm: String, profile: String, dataset: String, datasetSHA256: String = "", seed: UInt64,
                firstSeed: Bool = true, evaluation: EvaluationSettings = EvaluationSettings(), references: ReferenceSettings = ReferenceSettings(),
                output: String, cache: RunCache = RunCache(), log: @escaping (String) -> Void) {
        (self.experiment, self.arm, self.profile, self.dataset, self.datasetSHA256, self.seed) = (experiment, arm, profile, dataset, datasetSHA256, seed)
        (self.firstSeed, self.evaluation, self.references, self.output, self.cache, self.log) = (firstSeed, evaluation, references, output, cache, log)
    }
}

/// Values computed once per run and shared by its arms and reference rows.
public final class RunCache {
    var values: [String: Any] = [:]
    public init() {}
    public func value<T>(_ key: String, _ make: () throws -> T) rethrows -> T {
        if let v = values[key] as? T { return v }
        let v = try make()
        values[key] = v
        return v
    }
}

/// The experiment file's `evaluation:` section: the shared protocol's settings, declared
/// once per experiment (profiles may override them, e.g. fewer probe epochs for smoke).
public struct EvaluationSettings: Codable, Equatable {
    /// kNN top-1 every `every` epochs and after the last one; k is capped at the bank size.
    public struct KNN: Codable, Equatable { public var every: Int, k: Int, temperature: Float }
    public struct Linear: Codable, Equatable { public var epochs: Int }
    public struct KMeans: Codable, Equatable { public var restarts: Int }
    public var knn: KNN?
    public var linear: Linear?
    public var kmeans: KMeans?
    public init(knn: KNN? = nil, linear: Linear? = nil, kmeans: KMeans? = nil) { (self.knn, self.linear, self.kmeans) = (knn, linear, kmeans) }

    /// The protocol with these settings (kNN on a full bank, probe, k-means).
    public var sharedProtocol: SharedProtocol {
        var p = SharedProtocol()
        if let m = knn { (p.k, p.temperature) = (m.k, m.temperature) }
        if let l = linear { p.linear.epochs = l.epochs }
        if let c = kmeans { p.kmeansRestarts = c.restarts }
        return p
    }

    func validate() throws {
        if let m = knn {
            try require("evaluation.knn.every", m.every, atLeast: 1)
            try require("evaluation.knn.k", m.k, atLeast: 1)
            try require("evaluation.knn.temperature", m.temperature, above: 0)
        }
        if let l = linear { try require("evaluation.linear.epochs", l.epochs, atLeast: 1) }
        if let c = kmeans { try require("evaluation.kmeans.restarts", c.restarts, atLeast: 1) }
    }
}

/// The experiment file's `references:` section.
public struct ReferenceSettings: Codable, Equatable {
    public enum Supervised: String, Codable { case all, firstSeed = "first_seed", none }
    /// The supervised reference row: at every seed, at the first seed of `--seeds` only, or never.
    public var supervised: Supervised?
    /// Clean batches that re-estimate the random-init network's BN statistics.
    public var bnStatisticsBatches: Int?
    /// Reuse reference rows of an earlier run with the same dataset, settings, seed and code.
    public var cache: Bool?
    public init(supervised: Supervised? = nil, bnStatisticsBatches: Int? = nil, cache: Bool? = nil) {
        (self.supervised, self.bnStatisticsBatches, self.cache) = (supervised, bnStatisticsBatches, cache)
    }

    func validate() throws { if let n = bnStatisticsBatches { try require("references.bn_statistics_batches", n, atLeast: 1) } }
}

/// One paper's method, run arm by arm by the Harness. The runner owns the loop, progress,
/// checkpoints, resume, NaN checks and result files; a method supplies its model, one
/// epoch of training and its metrics.
public protocol Experiment: AnyObject {
    /// The method's configuration, decoded from the experiment file (snake_case keys).
    associatedtype Config: Codable

    /// Range checks belong here (`require(…)`): they end the run before anything trains.
    init(config: Config, context: RunContext) throws

    /// Every metric the method and its reference rows report (the runner adds `epoch` and,
    /// with a kNN monitor, `knn_top1`). Claims and leaderboards may name only these.
    static var metrics: [Metric] { get }
    /// The names of the reference rows `references` returns (claims may compare with them).
    static var referenceNames: [String] { get }

    var epochs: Int { get }
    var stepsPerEpoch: Int { get }
    /// Training images one optimizer step consumes (batch size × views), for the budget.
    var imagesPerStep: Int { get }
    /// What checkpoints hold and resume restores.
    var model: Module { get }
    var optimizer: Optimizer { get }

    /// Trains one epoch, calling `step(loss)` after every optimizer step.
    func trainEpoch(_ epoch: Int, step: (Double) throws -> Void) throws -> [String: Double]
    /// Per-epoch monitors (`final` false) or the final metrics (`final` true).
    func evaluate(epoch: Int, final: Bool) throws -> [String: Double]
    /// Backbone features of a split (BN in evaluation mode, no augmentation) for the kNN
    /// monitor; nil when the method has none.
    func features(split: String) throws -> Features?
    /// Extra JSON stored in every checkpoint's config (e.g. `backbone` and `normalize`, which
    /// `replica embed` reads to rebuild and feed the backbone).
    var checkpointInfo: [String: Any] { get }
    /// A reason to stop this arm early (a collapse signature reached), or nil.
    func earlyStop(history: [[String: Double]]) -> String?
    /// Final metrics derived from the per-epoch history (the last epoch's monitors, a
    /// minimum over training, …), merged into the arm's metrics.
    func summary(of history: [[String: Double]]) -> [String: Double]
    /// Reference rows (raw pixels, random network, …) computed once per run.
    static func references(config: Config, context: RunContext) throws -> [(name: String, metrics: [String: Double])]
    /// Everything of the config the reference rows depend on (with the dataset, seed,
    /// evaluation settings and shared code it keys the reference cache); nil: never cached.
    static func referenceInputs(config: Config, context: RunContext) -> (any Encodable)?
}

extension Experiment {
    public static var referenceNames: [String] { [] }
    public func features(split: String) throws -> Features? { nil }
    public var checkpointInfo: [String: Any] { [:] }
    public func earlyStop(history: [[String: Double]]) -> String? { nil }
    public func summary(of history: [[String: Double]]) -> [String: Double] { [:] }
    public static func references(config: Config, context: RunContext) throws -> [(name: String, metrics: [String: Double])] { [] }
    public static func referenceInputs(config: Config, context: RunContext) -> (any Encodable)? { nil }
}

/// A run that cannot go on, with what happened and what was kept.
public struct RunError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A config value out of its range, naming the key; the runner adds the file.
public struct RangeError: Error, CustomStringConvertible {
    public let key: String, message: String
    public var description: String { "key '\(key)': \(message)" }
}

/// Range checks for config values (`key` as in the experiment file: "config.epochs").
public func require(_ key: String, _ value: Int, atLeast low: Int) throws {
    guard value >= low else { throw RangeError(key: key, message: "expected an integer ≥ \(low), got \(value)") }
}

public func require(_ key: String, _ value: Float, atLeast low: Float) throws {
    guard value.isFinite, value >= low else { throw RangeError(key: key, message: "expected a finite value ≥ \(low), got \(value)") }
}

public func require(_ key: String, _ value: Float, above low: Float) throws {
    guard value.isFinite, value > low else { throw RangeError(key: key, message: "expected a finite value > \(low), got \(value)") }
}

public func require(_ key: String, _ value: Float, in range: ClosedRange<Float>) throws {
    guard range.contains(value) else { throw RangeError(key: key, message: "expected a value in [\(range.lowerBound), \(range.upperBound)], got \(value)") }
}

public func require(_ key: String, _ condition: Bool, _ expected: String) throws {
    guard condition else { throw RangeError(key: key, message: "expected \(expected)") }
}
