import ArgumentParser
import Datasets
import Engine
import Foundation
import Harness
import Representation
import HDF5IO
import NN

/// Configuration a checkpoint carries so that its backbone can be rebuilt and fed.
struct EmbeddingConfig: Codable {
    var backbone: BackboneSpec
    var normalize: Normalization
    struct Normalization: Codable { var mean: Float; var std: Float }
}

/// `replica embed`: backbone features of a dataset split, for `replica evaluate` or any tool.
struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write backbone features (eval mode) of a dataset split as /features float32 [N, D] and /labels int64 [N].")

    @Option(help: "Checkpoint written by a Replica run.") var checkpoint: String
    @Option(help: "Dataset file (README: Data).") var data: String
    @Option(help: "train or test.") var split: String = "test"
    @Option(help: "Output HDF5 file.") var out: String
    @Option(help: "Images per forward pass.") var batchSize: Int = 500

    func run() throws {
        guard DatasetFile.splits.contains(split) else { throw ValidationError("--split must be train or test, got '\(split)'") }
        let meta = try Checkpoint.metadata(at: checkpoint)
        let config: EmbeddingConfig
        do { config = try JSONDecoder().decode(EmbeddingConfig.self, from: Data(meta.config.utf8)) } catch {
            throw InputError("\(checkpoint): config attribute does not describe a backbone and normalization: \(error)")
        }
        var rng = RNG(seed: 0)   // the weights are overwritten by the checkpoint
        let backbone = try config.backbone.make(rng: &rng)
        try Checkpoint.load(into: backbone, from: checkpoint, prefix: "backbone.")
        backbone.eval()
        let (set, _, _) = try DatasetFile.read(data, split: split)
        guard set.channels == config.backbone.inputChannels else {
            throw InputError("\(data): images have \(set.channels) channels, the backbone expects \(config.backbone.inputChannels)")
        }
        do { try config.backbone.check(height: set.height, width: set.width, file: data) } catch { throw InputError("\(error)") }
        let features = backboneFeatures(backbone, set, mean: config.normalize.mean, std: config.normalize.std, batchSize: batchSize).values
        try writeAtomically(to: out) { tmp in
            let f = try HDF5File(creating: tmp)
            try f.write("/features", floats: features, shape: [set.count, backbone.featureCount])
            try f.write("/labels", int64s: set.labels.map(Int64.init), shape: [set.count])
            try f.setAttribute("checkpoint", string: checkpoint)
            try f.setAttribute("data", string: data)
            try f.setAttribute("split", string: split)
        }
        print("wrote \(out): \(set.count) × \(backbone.featureCount) features of \(data) [\(split)]")
    }
}
