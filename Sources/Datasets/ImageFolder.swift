import Foundation

/// PNG folders in torchvision's ImageFolder layout: ROOT/<split>/<class>/*.png, class index
/// = position of the class name in sorted order. Class names may contain "/" (written as
/// "%2F" in folder names). Images keep ImageFolder order (class, then file name) unless
/// every file is named by a number, as `exportImageFolder` writes them; then that number
/// orders them, so export → import is an exact round trip.
public enum ImageFolder {
    static func folderName(_ cls: String) -> String { cls.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "/", with: "%2F") }
    static func className(_ folder: String) -> String { folder.replacingOccurrences(of: "%2F", with: "/").replacingOccurrences(of: "%25", with: "%") }

    public static func read(root: String) throws -> (splits: [String: ImageSet], classes: [String]) {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else { throw DataError(root, "no such folder") }
        let trainRoot = root + "/train"
        guard let classFolders = try? fm.contentsOfDirectory(atPath: trainRoot).filter({ isDirectory(trainRoot + "/" + $0) }).sorted(), !classFolders.isEmpty else {
            throw DataError(trainRoot, "expected one folder per class (ImageFolder layout ROOT/train/<class>/*.png)")
        }
        let classes = classFolders.map(className)
        var splits: [String: ImageSet] = [:]
        var expected: (h: Int, w: Int, file: String)?
        for split in DatasetFile.splits where isDirectory(root + "/" + split) {
            var entries: [(file: String, label: Int, key: Int?)] = []
            let present = try fm.contentsOfDirectory(atPath: root + "/" + split).filter { isDirectory(root + "/\(split)/" + $0) }
            if let unknown = present.first(where: { !classFolders.contains($0) }) {
                throw DataError(root + "/\(split)/" + unknown, "class folder not present in \(trainRoot)")
            }
            for (label, folder) in classFolders.enumerated() {
                let dir = root + "/\(split)/" + folder
                guard isDirectory(dir) else { continue }
                let files = try fm.contentsOfDirectory(atPath: dir).filter { $0.lowercased().hasSuffix(".png") }.sorted()
                if files.isEmpty { throw DataError(dir, "empty class folder (expected *.png images)") }
                entries += files.map { (dir + "/" + $0, label, Int($0.dropLast(4))) }
            }
            if entries.allSatisfy({ $0.key != nil }) { entries.sort { $0.key! < $1.key! } }
            var images: [PNGImage] = []
            for e in entries {
                let img = try PNGImage(contentsOf: e.file)
                if let x = expected, (x.h, x.w) != (img.height, img.width) {
                    throw DataError(e.file, "image is \(img.width)x\(img.height), expected \(x.w)x\(x.h) like \(x.file) (mixed image sizes)")
                }
                expected = expected ?? (img.height, img.width, e.file)
                images.append(img)
            }
            let channels = images.contains { $0.channels >= 3 } ? 3 : 1
            var pixels: [UInt8] = []
            for img in images { pixels += img.bytes(channels: channels) }
            splits[split] = ImageSet(pixels: pixels, labels: entries.map(\.label), height: expected!.h, width: expected!.w, channels: channels)
        }
        return (splits, classes)
    }

    /// Writes ROOT/<split>/<class>/<index>.png (8-bit gray or RGB).
    public static func write(root: String, splits: [String: ImageSet], classes: [String]) throws {
        let fm = FileManager.default
        for (split, set) in splits {
            for cls in classes { try fm.createDirectory(atPath: "\(root)/\(split)/\(folderName(cls))", withIntermediateDirectories: true) }
            let digits = String(max(set.count - 1, 0)).count
            for i in 0..<set.count {
                let name = String(repeating: "0", count: max(0, digits - String(i).count)) + String(i)
                let start = i * set.imageSize
                let img = PNGImage(width: set.width, height: set.height, channels: set.channels,
                                   samples: set.pixels[start..<(start + set.imageSize)].map(UInt16.init))
                try img.write(to: "\(root)/\(split)/\(folderName(classes[set.labels[i]]))/\(name).png")
            }
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &d) && d.boolValue
    }
}

/// The CIFAR-10 binary release (data_batch_1…5.bin, test_batch.bin, batches.meta.txt):
/// records of one label byte and 3072 pixel bytes (R, G, B planes of 32×32).
public enum CIFAR10 {
    public static let defaultClasses = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    public static func read(directory: String) throws -> (splits: [String: ImageSet], classes: [String]) {
        func load(_ files: [String]) throws -> ImageSet {
            var pixels: [UInt8] = [], labels: [Int] = []
            for name in files {
                let path = directory + "/" + name
                guard let data = FileManager.default.contents(atPath: path) else { throw DataError(path, "no such file (expected the CIFAR-10 binary release)") }
                guard data.count > 0, data.count % 3073 == 0 else {
                    throw DataError(path, "\(data.count) bytes is not a whole number of 3073-byte records (truncated?)")
                }
                let bytes = [UInt8](data)
                for r in 0..<(bytes.count / 3073) {
                    let rec = r * 3073
                    guard bytes[rec] < 10 else { throw DataError(path, "record \(r): label \(bytes[rec]) outside 0..<10") }
                    labels.append(Int(bytes[rec]))
                    for p in 0..<1024 { for c in 0..<3 { pixels.append(bytes[rec + 1 + c * 1024 + p]) } }
                }
            }
            return ImageSet(pixels: pixels, labels: labels, height: 32, width: 32, channels: 3)
        }
        let train = try load((1...5).map { "data_batch_\($0).bin" }), test = try load(["test_batch.bin"])
        var classes = defaultClasses
        if let meta = try? String(contentsOfFile: directory + "/batches.meta.txt", encoding: .utf8) {
            let names = meta.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if names.count == 10 { classes = names }
        }
        return (["train": train, "test": test], classes)
    }
}
