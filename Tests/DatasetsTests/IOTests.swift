import CZLib
import Datasets
import Foundation
import HDF5IO
import TestSupport
import XCTest

final class PNGTests: TempDirTestCase {
    func testRoundTripEveryColorTypeAndDepth() throws {
        for channels in 1...4 {
            for depth in [8, 16] {
                let maxValue = depth == 8 ? 255 : 65535
                let img = PNGImage(width: 7, height: 3, channels: channels, bitDepth: depth,
                                   samples: (0..<(21 * channels)).map { UInt16(($0 * 7919) % (maxValue + 1)) })
                let path = dir + "/c\(channels)d\(depth).png"
                try img.write(to: path)
                XCTAssertEqual(try PNGImage(contentsOf: path), img, "channels \(channels), depth \(depth)")
            }
        }
    }

    func testPaletteExpandsToRGB() throws {
        let palette: [UInt8] = [255, 0, 0, 0, 255, 0, 0, 0, 255]
        try PNGImage(width: 3, height: 1, channels: 1, samples: [2, 0, 1]).write(to: dir + "/p.png", palette: palette)
        let back = try PNGImage(contentsOf: dir + "/p.png")
        XCTAssertEqual(back.channels, 3)
        XCTAssertEqual(back.samples, [0, 0, 255, 255, 0, 0, 0, 255, 0])
    }

    func testSixteenBitReducesToEightBitsByRounding() {
        let img = PNGImage(width: 2, height: 1, channels: 1, bitDepth: 16, samples: [65535, 32896])
        XCTAssertEqual(img.bytes(channels: 1), [255, 128])
        XCTAssertEqual(img.bytes(channels: 3), [255, 255, 255, 128, 128, 128])
    }

    func testMissingTruncatedAndCorruptFiles() throws {
        assertDataError(dir + "/none.png", "cannot open") { _ = try PNGImage(contentsOf: dir + "/none.png") }
        try Data("not a png at all".utf8).write(to: URL(fileURLWithPath: dir + "/text.png"))
        assertDataError(dir + "/text.png", "not a PNG") { _ = try PNGImage(contentsOf: dir + "/text.png") }
        try PNGImage(width: 16, height: 16, channels: 3, samples: (0..<768).map { UInt16($0 % 251) }).write(to: dir + "/ok.png")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/ok.png"))
        try bytes.prefix(bytes.count - 30).write(to: URL(fileURLWithPath: dir + "/cut.png"))
        assertDataError(dir + "/cut.png", "PNG:") { _ = try PNGImage(contentsOf: dir + "/cut.png") }
        var corrupt = bytes
        corrupt[40] ^= 0xFF   // inside IDAT: the CRC check fails
        try corrupt.write(to: URL(fileURLWithPath: dir + "/crc.png"))
        assertDataError(dir + "/crc.png", "PNG:") { _ = try PNGImage(contentsOf: dir + "/crc.png") }
    }
}

final class IDXTests: TempDirTestCase {
    func writeGzip(_ bytes: [UInt8], _ path: String) {
        let gz = gzopen(path, "wb")!
        bytes.withUnsafeBytes { _ = gzwrite(gz, $0.baseAddress, UInt32($0.count)) }
        gzclose(gz)
    }

    func testReadsHeaderAndPayload() throws {
        writeGzip([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3] + Array(1...12), dir + "/a.gz")
        let a = try readIDX(dir + "/a.gz")
        XCTAssertEqual(a.dimensions, [2, 2, 3])
        XCTAssertEqual(a.bytes, Array(1...12))
    }

    func testRejectsBadInput() {
        writeGzip([0, 0, 8, 1, 0, 0, 0, 5, 1, 2], dir + "/short.gz")
        assertDataError(dir + "/short.gz", "truncated") { _ = try readIDX(dir + "/short.gz") }
        writeGzip([1, 2, 8, 1, 0, 0, 0, 1, 1], dir + "/magic.gz")
        assertDataError(dir + "/magic.gz", "bad magic") { _ = try readIDX(dir + "/magic.gz") }
        writeGzip([0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0], dir + "/float.gz")
        assertDataError(dir + "/float.gz", "expected 0x08") { _ = try readIDX(dir + "/float.gz") }
        assertDataError(dir + "/none.gz", "no such file") { _ = try readIDX(dir + "/none.gz") }
    }
}

final class DatasetFileTests: TempDirTestCase {
    func testRoundTripAndRowRanges() throws {
        let train = sampleSet(count: 10, c: 3), test = sampleSet(count: 4, c: 3)
        let path = dir + "/d.h5"
        try DatasetFile.write(path, name: "toy", classes: ["a", "b", "c"], splits: ["train": train, "test": test])
        let (back, classes, name) = try DatasetFile.read(path, split: "train")
        XCTAssertEqual(back.pixels, train.pixels)
        XCTAssertEqual(back.labels, train.labels)
        XCTAssertEqual([back.height, back.width, back.channels], [5, 4, 3])
        XCTAssertEqual(classes, ["a", "b", "c"])
        XCTAssertEqual(name, "toy")
        let f = try HDF5File(reading: path)
        let (rows, shape) = try f.readUInt8s("/train/images", rows: 3..<5)
        XCTAssertEqual(shape, [2, 5, 4, 3])
        XCTAssertEqual(rows, Array(train.pixels[(3 * 60)..<(5 * 60)]))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".tmp-\(getpid())"))
    }

    /// The provenance's dataset sha256 (and the reference cache's key) must not depend on when
    /// the file was written: HDF5 stamps each object's creation time unless told not to.
    func testTheSameDataGivesTheSameBytes() throws {
        let train = sampleSet(count: 6, c: 1), test = sampleSet(count: 2, c: 1)
        try DatasetFile.write(dir + "/a.h5", name: "toy", classes: ["a", "b", "c"], splits: ["train": train, "test": test])
        usleep(1_100_000)   // the stamp counts seconds
        try DatasetFile.write(dir + "/b.h5", name: "toy", classes: ["a", "b", "c"], splits: ["train": train, "test": test])
        XCTAssertEqual(try sha256(file: dir + "/a.h5"), try sha256(file: dir + "/b.h5"))
    }

    func testBadFilesNameTheFileAndDataset() throws {
        assertDataError(dir + "/none.h5", "no such file") { _ = try DatasetFile.read(dir + "/none.h5", split: "train") }
        try Data(repeating: 7, count: 100).write(to: URL(fileURLWithPath: dir + "/junk.h5"))
        assertDataError(dir + "/junk.h5", "not a readable HDF5 file") { _ = try DatasetFile.read(dir + "/junk.h5", split: "train") }

        let good = dir + "/good.h5"
        try DatasetFile.write(good, name: "toy", classes: ["a", "b", "c"], splits: ["train": sampleSet(count: 300, h: 28, w: 28)])
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: dir + "/cut.h5"))
        assertDataError(dir + "/cut.h5", "not a readable HDF5 file") { _ = try DatasetFile.read(dir + "/cut.h5", split: "train") }
        assertDataError(good, "no dataset '/test/images'") { _ = try DatasetFile.read(good, split: "test") }

        func variant(_ name: String, _ build: (HDF5File) throws -> Void) throws -> String {
            let p = dir + "/" + name
            let f = try HDF5File(creating: p)
            try f.setAttribute("classes", strings: ["a", "b"])
            try build(f)
            return p
        }
        let floatLabels = try variant("floatlabels.h5") { f in
            try f.write("/train/images", uint8s: [UInt8](repeating: 0, count: 8), shape: [2, 2, 2, 1])
            try f.write("/train/labels", floats: [0, 1], shape: [2])
        }
        assertDataError(floatLabels, "'/train/labels' has element type float32, expected int64 or uint8") { _ = try DatasetFile.read(floatLabels, split: "train") }
        let badRank = try variant("rank.h5") { f in
            try f.write("/train/images", uint8s: [UInt8](repeating: 0, count: 8), shape: [2, 4])
            try f.write("/train/labels", int64s: [0, 1], shape: [2])
        }
        assertDataError(badRank, "'/train/images' has shape [2, 4], expected rank 4") { _ = try DatasetFile.read(badRank, split: "train") }
        let badLabel = try variant("label.h5") { f in
            try f.write("/train/images", uint8s: [UInt8](repeating: 0, count: 8), shape: [2, 2, 2, 1])
            try f.write("/train/labels", int64s: [0, 2], shape: [2])
        }
        assertDataError(badLabel, "label 2 outside the 2 classes") { _ = try DatasetFile.read(badLabel, split: "train") }
        let countMismatch = try variant("count.h5") { f in
            try f.write("/train/images", uint8s: [UInt8](repeating: 0, count: 8), shape: [2, 2, 2, 1])
            try f.write("/train/labels", int64s: [0, 1, 1], shape: [3])
        }
        assertDataError(countMismatch, "has 3 entries, /train/images has 2 images") { _ = try DatasetFile.read(countMismatch, split: "train") }
    }
}

final class ImageFolderTests: TempDirTestCase {
    func testExportImportIsAnExactRoundTrip() throws {
        for c in [1, 3] {
            let splits = ["train": sampleSet(count: 12, c: c), "test": sampleSet(count: 5, c: c)]
            let classes = ["T-shirt/top", "b", "c%"]
            let root = dir + "/png\(c)"
            try ImageFolder.write(root: root, splits: splits, classes: classes)
            XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/train/T-shirt%2Ftop/00.png"))
            let (back, backClasses) = try ImageFolder.read(root: root)
            XCTAssertEqual(backClasses, classes)
            for s in ["train", "test"] {
                XCTAssertEqual(try XCTUnwrap(back[s]).pixels, try XCTUnwrap(splits[s]).pixels)
                XCTAssertEqual(try XCTUnwrap(back[s]).labels, try XCTUnwrap(splits[s]).labels)
                XCTAssertEqual(try XCTUnwrap(back[s]).channels, c)
            }
        }
    }

    func testImageFolderOrderWhenNamesAreNotIndices() throws {
        let root = dir + "/tree"
        for (cls, files) in [("dog", ["b.png", "a.png"]), ("cat", ["z.png"])] {
            try FileManager.default.createDirectory(atPath: "\(root)/train/\(cls)", withIntermediateDirectories: true)
            for (i, f) in files.enumerated() {
                try PNGImage(width: 2, height: 2, channels: 1, samples: [UInt16](repeating: UInt16(cls.count * 10 + i), count: 4)).write(to: "\(root)/train/\(cls)/\(f)")
            }
        }
        let (splits, classes) = try ImageFolder.read(root: root)
        XCTAssertEqual(classes, ["cat", "dog"])
        XCTAssertEqual(try XCTUnwrap(splits["train"]).labels, [0, 1, 1])   // class, then file name: cat/z, dog/a, dog/b
        XCTAssertEqual(try XCTUnwrap(splits["train"]).pixels[4], 31)         // dog/a.png was written second (value 31)
    }

    func testBadTrees() throws {
        assertDataError(dir + "/none", "no such folder") { _ = try ImageFolder.read(root: dir + "/none") }
        let root = dir + "/bad"
        try FileManager.default.createDirectory(atPath: root + "/train/a", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/train/b", withIntermediateDirectories: true)
        try PNGImage(width: 2, height: 2, channels: 1, samples: [1, 2, 3, 4]).write(to: root + "/train/a/0.png")
        assertDataError(root + "/train/b", "empty class folder") { _ = try ImageFolder.read(root: root) }
        try PNGImage(width: 3, height: 2, channels: 1, samples: [1, 2, 3, 4, 5, 6]).write(to: root + "/train/b/1.png")
        assertDataError(root + "/train/b/1.png", "mixed image sizes") { _ = try ImageFolder.read(root: root) }
        try FileManager.default.removeItem(atPath: root + "/train/b/1.png")
        try PNGImage(width: 2, height: 2, channels: 3, samples: [UInt16](repeating: 9, count: 12)).write(to: root + "/train/b/1.png")
        try FileManager.default.createDirectory(atPath: root + "/test/zebra", withIntermediateDirectories: true)
        assertDataError(root + "/test/zebra", "class folder not present") { _ = try ImageFolder.read(root: root) }
        try FileManager.default.removeItem(atPath: root + "/test")
        let (splits, _) = try ImageFolder.read(root: root)   // gray and RGB mixed: gray is replicated to RGB
        XCTAssertEqual(try XCTUnwrap(splits["train"]).channels, 3)
        XCTAssertEqual(Array(try XCTUnwrap(splits["train"]).pixels.prefix(6)), [1, 1, 1, 2, 2, 2])
    }
}

final class CIFAR10Tests: TempDirTestCase {
    func testConvertsTheBinaryFormat() throws {
        func record(_ label: UInt8, _ seed: Int) -> [UInt8] { [label] + (0..<3072).map { UInt8(($0 * 13 + seed) % 256) } }
        for b in 1...5 { try Data(record(UInt8(b), b) + record(0, 100 + b)).write(to: URL(fileURLWithPath: dir + "/data_batch_\(b).bin")) }
        try Data(record(9, 7)).write(to: URL(fileURLWithPath: dir + "/test_batch.bin"))
        let (splits, classes) = try CIFAR10.read(directory: dir)
        XCTAssertEqual(classes, CIFAR10.defaultClasses)
        XCTAssertEqual(try XCTUnwrap(splits["train"]).labels, [1, 0, 2, 0, 3, 0, 4, 0, 5, 0])
        XCTAssertEqual(try XCTUnwrap(splits["test"]).labels, [9])
        // Pixel (0, 1) of the test image: planes R, G, B at offsets 1, 1025, 2049.
        let rec = record(9, 7)
        XCTAssertEqual(Array(try XCTUnwrap(splits["test"]).pixels[3..<6]), [rec[2], rec[1026], rec[2050]])
        try Data(record(1, 1).prefix(3000)).write(to: URL(fileURLWithPath: dir + "/data_batch_3.bin"))
        assertDataError(dir + "/data_batch_3.bin", "not a whole number of 3073-byte records") { _ = try CIFAR10.read(directory: dir) }
    }
}
