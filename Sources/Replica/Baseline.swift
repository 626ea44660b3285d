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

    func run() throws {
        guard let w = ConvNet4.Width(rawValue: width) else { throw ValidationError("--width must be lite or standard, got '\(width)'") }
        guard epochs >= 1, batchSize >= 2 else { throw ValidationError("--epochs must be ≥ 1 and --batch-size ≥ 2") }
        var config = SupervisedConfig()
        (config.width, config.epochs, config.batchSize, config.seed) = (w, epochs, batchSize, seed)
        var train = try FashionMNIST.load(split: "train", directory: idx), test = try FashionMNIST.load(split: "test", directory: idx)
        if let n = perClass { train = train.perClassSubset(n); test = test.perClassSubset(max(1, n / 6)) }
        print("supervised convnet4-\(w.rawValue): \(train.count) train / \(test.count) test images, \(epochs) epochs, batch \(batchSize), \(Threads.count) threads, seed \(seed)")
        let start = Date()
        let (_, history) = trainSupervised(config, train: train, test: test, mean: FashionMNIST.mean, std: FashionMNIST.std) { e in
            print(String(format: "epoch %d/%d  loss %.4f  test top-1 %.2f%%  %.1f s", e.epoch, config.epochs, e.loss, e.testAccuracy * 100, e.seconds))
        }
        if let summary {
            let json: [String: Any] = [
                "config": ["width": w.rawValue, "epochs": epochs, "batch_size": batchSize, "seed": seed, "per_class": perClass as Any],
                "provenance": provenance(threads: Threads.count, seed: seed), "dataset": idx,
                "test_top1": history.last!.testAccuracy, "seconds": Date().timeIntervalSince(start), "threads": Threads.count,
                "epochs": history.map { ["epoch": $0.epoch, "loss": $0.loss, "test_top1": $0.testAccuracy, "seconds": $0.seconds] },
            ]
            try writeAtomically(try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]), to: summary)
        }
    }
}
