import ArgumentParser
import Baselines
import Datasets
import Engine
import Foundation
import NN

/// `replica baseline`: the supervised cross-entropy reference (convnet4 on Fashion-MNIST).
struct Baseline: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train the supervised convnet4 baseline on Fashion-MNIST and report test accuracy.")

    @Option(help: "Folder with the Fashion-MNIST IDX .gz files.") var idx: String = FashionMNIST.defaultDirectory
    @Option(help: "lite or standard.") var width: String = "standard"
    @Option var epochs: Int = SupervisedConfig().epochs
    @Option var batchSize: Int = SupervisedConfig().batchSize
    @Option var seed: UInt64 = 0
    @Option(help: "Use only this many images per class (smoke runs).") var perClass: Int?
    @Option(help: "Write a JSON summary here.") var summary: String?
    @Option(help: "Write the trained model here (HDF5).") var checkpoint: String?

    func run() throws {
        guard let w = ConvNet4.Width(rawValue: width) else { throw ValidationError("--width must be lite or standard, got '\(width)'") }
        guard epochs >= 1, batchSize >= 2 else { throw ValidationError("--epochs must be ≥ 1 and --batch-size ≥ 2") }
        var config = SupervisedConfig()
        (config.width, config.epochs, config.batchSize, config.seed) = (w, epochs, batchSize, seed)
        var train = try FashionMNIST.load(split: "train", directory: idx), test = try FashionMNIST.load(split: "test", directory: idx)
        if let n = perClass { train = train.perClassSubset(n); test = test.perClassSubset(max(1, n / 6)) }
        print("supervised convnet4-\(w.rawValue): \(train.count) train / \(test.count) test images, \(epochs) epochs, batch \(batchSize), \(Threads.count) threads, seed \(seed)")
        let start = Date()
        let prov = provenance(threads: Threads.count, seed: seed)   // before training: the tree as it ran
        var sources: [String: String] = [:]
        for file in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
            sources[file] = try sha256(file: "\(idx)/\(file)")
        }
        let (model, history) = trainSupervised(config, train: train, test: test, mean: FashionMNIST.mean, std: FashionMNIST.std) { e in
            print(String(format: "epoch %d/%d  loss %.4f  test top-1 %.2f%%  %.1f s", e.epoch, config.epochs, e.loss, e.testAccuracy * 100, e.seconds))
        }
        if let checkpoint {
            let spec = BackboneSpec(name: "convnet4", width: w, inputChannels: 1)
            let json = try JSONEncoder().encode(["backbone": AnyEncodable(spec),
                                                 "normalize": AnyEncodable(["mean": FashionMNIST.mean, "std": FashionMNIST.std]),
                                                 "supervised": AnyEncodable(config)])
            try Checkpoint.save(model, metadata: CheckpointMetadata(config: String(decoding: json, as: UTF8.self), seed: seed,
                                                                    epoch: epochs, step: epochs * (train.count / batchSize),
                                                                    gitCommit: prov["git_commit"] as! String), to: checkpoint)
            print("wrote \(checkpoint)")
        }
        if let summary {
            let json: [String: Any] = [
                "config": ["width": w.rawValue, "epochs": epochs, "batch_size": batchSize, "seed": seed, "per_class": perClass as Any],
                "provenance": prov, "dataset": ["path": idx, "sha256": sources],
                "test_top1": history.last!.testAccuracy, "seconds": Date().timeIntervalSince(start), "threads": Threads.count,
                "epochs": history.map { ["epoch": $0.epoch, "loss": $0.loss, "test_top1": $0.testAccuracy, "seconds": $0.seconds] },
            ]
            try writeAtomically(try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]), to: summary)
        }
    }
}

/// Type-erased Encodable, for JSON objects mixing configs.
struct AnyEncodable: Encodable {
    let encode: (Encoder) throws -> Void
    init<T: Encodable>(_ value: T) { encode = value.encode }
    func encode(to encoder: Encoder) throws { try encode(encoder) }
}
