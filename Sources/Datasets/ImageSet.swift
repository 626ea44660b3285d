import Engine
import Foundation

/// Images as uint8 [N, H, W, C] with integer labels: one split of a dataset, in memory.
public struct ImageSet {
    public let pixels: [UInt8]
    public let labels: [Int]
    public let height: Int, width: Int, channels: Int
    public var count: Int { labels.count }
    public var imageSize: Int { height * width * channels }

    public init(pixels: [UInt8], labels: [Int], height: Int, width: Int, channels: Int) {
        precondition(pixels.count == labels.count * height * width * channels, "pixels for \(labels.count) images of \(height)x\(width)x\(channels)")
        self.pixels = pixels
        self.labels = labels
        self.height = height
        self.width = width
        self.channels = channels
    }

    /// The first `n` images of each class, in original order (smoke profiles).
    public func perClassSubset(_ n: Int) -> ImageSet {
        var taken: [Int: Int] = [:], idx: [Int] = []
        for (i, y) in labels.enumerated() where taken[y, default: 0] < n { taken[y, default: 0] += 1; idx.append(i) }
        return subset(idx)
    }

    public func subset(_ indices: [Int]) -> ImageSet {
        var p = [UInt8](); p.reserveCapacity(indices.count * imageSize)
        for i in indices { p += pixels[(i * imageSize)..<((i + 1) * imageSize)] }
        return ImageSet(pixels: p, labels: indices.map { labels[$0] }, height: height, width: width, channels: channels)
    }

    /// A normalized float batch [B, C, H, W]: (x/255 − mean)/std, no augmentation.
    public func batch(_ indices: [Int], mean: Float, std: Float) -> Tensor {
        let t = Tensor.zeros([indices.count, channels, height, width])
        let hw = height * width, scale = 1 / (255 * std), shift = -mean / std
        pixels.withUnsafeBufferPointer { px in
            for (b, i) in indices.enumerated() {
                let src = px.baseAddress! + i * imageSize, dst = t.pointer + b * imageSize
                for p in 0..<hw { for c in 0..<channels { dst[c * hw + p] = Float(src[p * channels + c]) * scale + shift } }
            }
        }
        return t
    }
}

/// Fashion-MNIST from the IDX files of Debian's dataset-fashion-mnist.
public enum FashionMNIST {
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    public static let classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    /// Loads `train` (60,000) or `test` (10,000) from `directory`.
    public static func load(split: String, directory: String = defaultDirectory) throws -> ImageSet {
        let prefix = split == "train" ? "train" : "t10k"
        let imagesPath = "\(directory)/\(prefix)-images-idx3-ubyte.gz", labelsPath = "\(directory)/\(prefix)-labels-idx1-ubyte.gz"
        let images = try readIDX(imagesPath), labels = try readIDX(labelsPath)
        guard images.dimensions.count == 3, images.dimensions[1] == 28, images.dimensions[2] == 28 else {
            throw DataError(imagesPath, "expected images [N, 28, 28], found \(images.dimensions)")
        }
        guard labels.dimensions == [images.dimensions[0]] else {
            throw DataError(labelsPath, "expected \(images.dimensions[0]) labels, found shape \(labels.dimensions)")
        }
        if let bad = labels.bytes.first(where: { $0 > 9 }) { throw DataError(labelsPath, "label \(bad) outside 0..<10") }
        return ImageSet(pixels: images.bytes, labels: labels.bytes.map(Int.init), height: 28, width: 28, channels: 1)
    }
}
