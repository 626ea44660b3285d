import ArgumentParser
import Datasets
import Foundation

/// `replica data …`: building dataset files.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "data", abstract: "Build dataset files.",
                                                    subcommands: [FashionMNISTData.self, DSpritesData.self, ImportPNG.self, ExportPNG.self, CIFAR10Data.self, DataInfo.self, DataPictures.self])
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

struct DSpritesData: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dsprites", abstract: "Render procedural dSprites (737,280 images) in the official HDF5 layout.")
    @Option(help: "Output file.") var out: String = "data/dsprites.h5"

    func run() throws {
        try makeParent(out)
        let start = Date()
        try DSprites.write(to: out) { done in
            if done % (128 * 1024) == 0 || done == DSprites.count { print("rendered \(done)/\(DSprites.count)") }
        }
        print(String(format: "wrote %@ in %.1f s", out, Date().timeIntervalSince(start)))
    }
}

struct ImportPNG: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "import-png", abstract: "Convert an ImageFolder tree (ROOT/train/<class>/*.png, ROOT/test/…) to a dataset file.")
    @Argument(help: "Root folder.") var root: String
    @Option(help: "Output dataset file.") var out: String
    @Option(help: "Dataset name (default: the folder's name).") var name: String?

    func run() throws {
        let (splits, classes) = try ImageFolder.read(root: root)
        try makeParent(out)
        try DatasetFile.write(out, name: name ?? (root as NSString).lastPathComponent, classes: classes, splits: splits)
        print("wrote \(out): " + splits.sorted { $0.key > $1.key }.map { "\($0.key) \($0.value.count)" }.joined(separator: ", ") + ", \(classes.count) classes")
    }
}

struct ExportPNG: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export-png", abstract: "Write a dataset file as an ImageFolder tree of PNGs.")
    @Argument(help: "Dataset file.") var data: String
    @Option(help: "Output root folder.") var out: String

    func run() throws {
        var splits: [String: ImageSet] = [:], classes: [String] = []
        for split in DatasetFile.splits {
            let (set, c, _) = try DatasetFile.read(data, split: split)
            splits[split] = set
            classes = c
        }
        try ImageFolder.write(root: out, splits: splits, classes: classes)
        print("wrote \(out)/{train,test}/<class>/*.png")
    }
}

struct CIFAR10Data: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cifar10", abstract: "Convert the CIFAR-10 binary release to a dataset file.")
    @Option(help: "Folder with data_batch_1…5.bin and test_batch.bin.") var from: String
    @Option(help: "Output dataset file.") var out: String = "data/cifar10.h5"

    func run() throws {
        let (splits, classes) = try CIFAR10.read(directory: from)
        try makeParent(out)
        try DatasetFile.write(out, name: "cifar10", classes: classes, splits: splits)
        print("wrote \(out): train \(splits["train"]!.count), test \(splits["test"]!.count) images of 32x32x3")
    }
}

struct DataInfo: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Print a dataset file's splits, shapes, classes, per-class counts and sha256.")
    @Argument(help: "Dataset file.") var data: String

    func run() throws {
        var lines: [String] = []
        var classes: [String] = []
        for split in DatasetFile.splits {
            let (set, c, name) = try DatasetFile.read(data, split: split)
            classes = c
            if lines.isEmpty { lines.append("name: \(name)") }
            var counts = [Int](repeating: 0, count: c.count)
            for y in set.labels { counts[y] += 1 }
            lines.append("\(split): \(set.count) images [\(set.height), \(set.width), \(set.channels)] uint8; per class: \(counts.map(String.init).joined(separator: " "))")
        }
        lines.append("classes: \(classes.joined(separator: ", "))")
        lines.append("sha256: \(try sha256(file: data))")
        print(lines.joined(separator: "\n"))
    }
}

func makeParent(_ path: String) throws {
    let dir = (path as NSString).deletingLastPathComponent
    if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
}
