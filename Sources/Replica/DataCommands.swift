import ArgumentParser
import Datasets
import Foundation

/// `replica data …`: building dataset files.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "data", abstract: "Build dataset files.",
                                                    subcommands: [FashionMNISTData.self])
}

struct FashionMNISTData: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fashion-mnist",
        abstract: "Convert the Fashion-MNIST IDX files (Debian's dataset-fashion-mnist) to a dataset file.")

    @Option(help: "Folder with the IDX .gz files.") var from: String = FashionMNIST.defaultDirectory
    @Option(help: "Output dataset file.") var out: String = "data/fashion-mnist.h5"

    func run() throws {
        let train = try FashionMNIST.load(split: "train", directory: from), test = try FashionMNIST.load(split: "test", directory: from)
        var sources: [String: String] = [:]
        for prefix in ["train", "t10k"] {
            for kind in ["images-idx3", "labels-idx1"] {
                let file = "\(prefix)-\(kind)-ubyte.gz"
                sources["sha256_\(file)"] = try sha256(file: "\(from)/\(file)")
            }
        }
        let dir = (out as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        try DatasetFile.write(out, name: "fashion-mnist", classes: FashionMNIST.classes, splits: ["train": train, "test": test], sources: sources)
        print("wrote \(out): train \(train.count), test \(test.count) images of 28x28x1, 10 classes")
    }
}
