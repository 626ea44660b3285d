import Engine
import Evaluation
import Foundation
import NN

/// What an experiment gets from the runner for one arm.
public struct RunContext {
    public let experiment: String, arm: String, profile: String
    /// The dataset file (the experiment's default, or --dataset).
    public let dataset: String
    public let seed: UInt64
    /// The experiment file's kNN monitor settings (for reference rows under the same protocol).
    public let knn: ExperimentFile.KNNMonitor?
    /// This run's results folder (results/<experiment>/<profile>), for pictures.
    public let output: String
    public let log: (String) -> Void

    public init(experiment: String, arm: String, profile: String, dataset: String, seed: UInt64, knn: ExperimentFile.KNNMonitor?,
                output: String, log: @escaping (String) -> Void) {
        (self.experiment, self.arm, self.profile, self.dataset, self.seed) = (experiment, arm, profile, dataset, seed)
        (self.knn, self.output, self.log) = (knn, output, log)
    }
}

/// One paper's method, run arm by arm by the Harness. The runner owns the loop, progress,
/// checkpoints, resume, NaN checks and result files; a method supplies its model, one
/// epoch of training and its metrics.
public protocol Experiment: AnyObject {
    /// The method's configuration, decoded from the experiment file (snake_case keys).
    associatedtype Config: Codable

    init(config: Config, context: RunContext) throws

    var epochs: Int { get }
    var stepsPerEpoch: Int { get }
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
}

extension Experiment {
    public func features(split: String) throws -> Features? { nil }
    public var checkpointInfo: [String: Any] { [:] }
    public func earlyStop(history: [[String: Double]]) -> String? { nil }
    public func summary(of history: [[String: Double]]) -> [String: Double] { [:] }
    public static func references(config: Config, context: RunContext) throws -> [(name: String, metrics: [String: Double])] { [] }
}

/// A run that cannot go on, with what happened and what was kept.
public struct RunError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
