import Engine
import Foundation
import HDF5IO

/// One HDF5 file holding a model's state_dict, optimizer state and run metadata.
///
/// Layout (loadable with h5py into the same PyTorch module, see README):
/// - `/model/<state_dict key>`: float32 in PyTorch's layout (conv OIHW, conv-transpose
///   IOHW, linear [out, in]); `num_batches_tracked` as int64 scalars.
/// - `/optimizer/<parameter key>/<buffer>`: `momentum_buffer`, `exp_avg`, `exp_avg_sq`;
///   attributes `kind` and `step`.
/// - root attributes: `format`, `config` (JSON), `seed`, `epoch`, `step`, `git_commit`.
public struct CheckpointMetadata: Equatable {
    public var config: String
    public var seed: UInt64
    public var epoch: Int
    public var step: Int
    public var gitCommit: String

    public init(config: String = "{}", seed: UInt64 = 0, epoch: Int = 0, step: Int = 0, gitCommit: String = "unknown") {
        (self.config, self.seed, self.epoch, self.step, self.gitCommit) = (config, seed, epoch, step, gitCommit)
    }
}

public enum Checkpoint {
    public static let format = "replica-checkpoint-1"

    /// Writes atomically: a temporary file beside `path`, then a rename.
    public static func save(_ model: Module, optimizer: Optimizer? = nil, metadata: CheckpointMetadata, to path: String) throws {
        try writeAtomically(to: path) { tmp in
            let f = try HDF5File(creating: tmp)
            for (key, t) in model.stateDict() {
                if key.hasSuffix("num_batches_tracked") {
                    try f.write("/model/\(key)", int64s: [Int64(t.item)], shape: [])
                } else {
                    try f.write("/model/\(key)", floats: t.array, shape: t.shape)
                }
            }
            if let optimizer {
                try f.write("/optimizer/.step", int64s: [Int64(optimizer.stepCount)], shape: [])
                try f.setAttribute("kind", string: String(describing: type(of: optimizer)), on: "/optimizer")
                for (key, buffers) in optimizer.state.sorted(by: { $0.key < $1.key }) {
                    for (name, t) in buffers.sorted(by: { $0.key < $1.key }) {
                        try f.write("/optimizer/\(key)/\(name)", floats: t.array, shape: t.shape)
                    }
                }
            }
            try f.setAttribute("format", string: format)
            try f.setAttribute("config", string: metadata.config)
            try f.setAttribute("seed", string: String(metadata.seed))   // a string: UInt64 does not fit a double
            try f.setAttribute("epoch", int: Int64(metadata.epoch))
            try f.setAttribute("step", int: Int64(metadata.step))
            try f.setAttribute("git_commit", string: metadata.gitCommit)
        }
    }

    /// Reads only the metadata.
    public static func metadata(at path: String) throws -> CheckpointMetadata {
        let f = try HDF5File(reading: path)
        guard f.hasAttribute("format"), (try? f.stringAttribute("format")) == format else {
            throw HDF5Error(file: path, message: "not a Replica checkpoint (no attribute format = \(format))")
        }
        return CheckpointMetadata(config: try f.stringAttribute("config"), seed: UInt64(try f.stringAttribute("seed")) ?? 0,
                                  epoch: Int(try f.doubleAttribute("epoch")), step: Int(try f.doubleAttribute("step")),
                                  gitCommit: try f.stringAttribute("git_commit"))
    }

    /// Loads parameters and buffers into `model` (and state into `optimizer`). Every key
    /// of the model must be present with the same shape; the error names the first that is
    /// not. `prefix` selects a sub-module's keys (e.g. `backbone.`).
    @discardableResult
    public static func load(into model: Module, optimizer: Optimizer? = nil, from path: String, prefix: String = "") throws -> CheckpointMetadata {
        let meta = try metadata(at: path)
        let f = try HDF5File(reading: path)
        var state: [String: Tensor] = [:]
        for (key, t) in model.stateDict() {
            let name = "/model/\(prefix)\(key)"
            guard f.exists(name) else { throw HDF5Error(file: path, message: "checkpoint has no key '\(prefix)\(key)' that the model needs") }
            if key.hasSuffix("num_batches_tracked") {
                state[key] = Tensor(scalar: Float(try f.readInt64s(name).values.first ?? 0))
                continue
            }
            let (values, shape) = try f.readFloats(name)
            guard shape == t.shape else {
                throw HDF5Error(file: path, message: "key '\(prefix)\(key)': the model expects shape \(t.shape), the checkpoint has \(shape)")
            }
            state[key] = Tensor(values, shape: shape)
        }
        try model.load(state)
        if let optimizer {
            guard f.exists("/optimizer/.step") else { throw HDF5Error(file: path, message: "checkpoint has no optimizer state") }
            let kind = try f.stringAttribute("kind", on: "/optimizer")
            guard kind == String(describing: type(of: optimizer)) else {
                throw HDF5Error(file: path, message: "optimizer state is for \(kind), not \(type(of: optimizer))")
            }
            var saved: [String: [String: Tensor]] = [:]
            for group in optimizer.groups {
                for (key, p) in group.parameters where f.exists("/optimizer/\(key)") {
                    for name in try f.children(of: "/optimizer/\(key)") {
                        let (values, shape) = try f.readFloats("/optimizer/\(key)/\(name)")
                        guard shape == p.shape else {
                            throw HDF5Error(file: path, message: "optimizer buffer '\(key)/\(name)' has shape \(shape), parameter is \(p.shape)")
                        }
                        saved[key, default: [:]][name] = Tensor(values, shape: shape)
                    }
                }
            }
            optimizer.restore(state: saved, stepCount: Int(try f.readInt64s("/optimizer/.step").values[0]))
        }
        return meta
    }
}
