import Datasets
import Foundation
import HDF5IO
import TestSupport
import XCTest

/// The renderer against reference masks measured on the real dSprites file and the
/// official factor layout.
final class DSpritesTests: XCTestCase {
    func render(_ shape: DSprites.Shape, scale: Int = 5, orientation: Int = 0, x: Int = 0, y: Int = 0) -> [UInt8] {
        var img = [UInt8](repeating: 0, count: 64 * 64)
        img.withUnsafeMutableBufferPointer { DSprites.render(shape: shape, scaleClass: scale, orientationClass: orientation, posX: x, posY: y, into: $0.baseAddress!) }
        return img
    }

    /// A 64×64 mask from ASCII rows placed at (row0, col0).
    func mask(_ rows: [String], row0: Int, col0: Int) -> [UInt8] {
        var m = [UInt8](repeating: 0, count: 64 * 64)
        for (r, line) in rows.enumerated() { for (c, ch) in line.enumerated() where ch == "#" { m[(row0 + r) * 64 + col0 + c] = 1 } }
        return m
    }

    func testSquareAndEllipseMatchTheRealMasksExactly() {
        var square = [UInt8](repeating: 0, count: 64 * 64)
        for r in 6...25 { for c in 6...25 { square[r * 64 + c] = 1 } }
        XCTAssertEqual(render(.square), square)
        let ellipse = mask([
            "........############........", "......################......", "....####################....",
            "...######################...", "..########################..", "..########################..",
            ".##########################.", ".##########################.", "..########################..",
            "..########################..", "...######################...", "....####################....",
            "......################......", "........############........",
        ], row0: 9, col0: 2)
        XCTAssertEqual(render(.ellipse), ellipse)
    }

    func testHeartIsWithinTenPixelsOfTheRealMask() {
        let heart = mask([
            "....#####....#####....", "...#######..#######...", "..########..########..", "..##################..",
            ".####################.", ".####################.", "..##################..", "..##################..",
            "...################...", "...################...", "....##############....", ".....############.....",
            "......##########......", ".......########.......", "........######........", ".........####.........",
            "..........##..........",
        ], row0: 7, col0: 5)
        let diff = zip(render(.heart), heart).filter { $0 != $1 }.count
        XCTAssertLessThanOrEqual(diff, 10)
    }

    func testAreasScaleWithTheSquareOfScale() {
        // At posX = posY = 0 the centre (16, 16) sits on a pixel corner, as in the spec's masks.
        let area = { (s: DSprites.Shape, k: Int) in self.render(s, scale: k).reduce(0) { $0 + Int($1) } }
        XCTAssertEqual(area(.square, 5), 400)
        XCTAssertEqual(area(.square, 0), 100)                          // 10×10 at scale 0.5
        XCTAssertEqual(Double(area(.ellipse, 5)), 288, accuracy: 12)
        XCTAssertEqual(Double(area(.heart, 5)), 222, accuracy: 12)
        XCTAssertEqual(Double(area(.heart, 0)), 58, accuracy: 6)
        XCTAssertEqual(area(.ellipse, 0), 76)                          // 12×8 mask at scale 0.5
    }

    func testFactorLayoutAndSymmetries() {
        XCTAssertEqual(DSprites.factorSizes.reduce(1, *), DSprites.count)
        for index in [0, 1, 31, 32, 1023, 1024, 40_959, 40_960, 245_759, 245_760, 737_279] {
            let k = DSprites.classes(of: index)
            XCTAssertEqual(zip(k, DSprites.bases).map { $0 * $1 }.reduce(0, +), index)
        }
        XCTAssertEqual(DSprites.classes(of: 1), [0, 0, 0, 0, 0, 1])           // posY varies fastest
        XCTAssertEqual(DSprites.value(factor: 3, class: 39), 2 * Double.pi, accuracy: 1e-12)
        XCTAssertEqual(render(.heart, orientation: 0), render(.heart, orientation: 39))   // 0 and 2π
        XCTAssertNotEqual(render(.heart, x: 3), render(.heart, x: 4))          // one posX step moves pixels
        XCTAssertNotEqual(render(.heart, orientation: 10), render(.heart))
        // Rotation moves pixels but keeps each shape's area, within the raster's rounding at
        // its edges. (Rotated squares cover 364 pixels at every angle against 400 upright: not
        // checked here, since no real rotated frame was measured to say which is right.)
        for shape in [DSprites.Shape.ellipse, .heart] {
            let upright = render(shape).reduce(0) { $0 + Int($1) }
            for o in [5, 10, 20, 33] {
                XCTAssertEqual(Double(render(shape, orientation: o).reduce(0) { $0 + Int($1) }), Double(upright), accuracy: 0.05 * Double(upright), "\(shape) at \(o)")
            }
        }
    }
}

/// The files `make data` builds: read back and checked against their sources.
final class BuiltDataTests: XCTestCase {
    func builtFile(_ name: String) throws -> String {
        let path = repositoryRoot + "/data/" + name
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("\(path) is missing: `make data` builds it (`make test` runs it first)") }
        return path
    }

    func testFashionMNISTFileMatchesTheIDXSource() throws {
        let path = try builtFile("fashion-mnist.h5")
        for (split, n) in [("train", 60_000), ("test", 10_000)] {
            let (set, classes, name) = try DatasetFile.read(path, split: split)
            XCTAssertEqual(name, "fashion-mnist")
            XCTAssertEqual(classes, FashionMNIST.classes)
            XCTAssertEqual([set.count, set.height, set.width, set.channels], [n, 28, 28, 1])
            var counts = [Int](repeating: 0, count: 10)
            for y in set.labels { counts[y] += 1 }
            XCTAssertEqual(counts, [Int](repeating: n / 10, count: 10))
            let idx = try readIDX("\(FashionMNIST.defaultDirectory)/\(split == "train" ? "train" : "t10k")-images-idx3-ubyte.gz")
            XCTAssertEqual(set.pixels.reduce(0) { $0 &+ Int($1) }, idx.bytes.reduce(0) { $0 &+ Int($1) })
            XCTAssertEqual(set.pixels, idx.bytes)
        }
    }

    func testDSpritesFileHasTheOfficialLayout() throws {
        let path = try builtFile("dsprites.h5")
        let f = try HDF5File(reading: path)
        XCTAssertEqual(try f.info("/imgs").shape, [737_280, 64, 64])
        XCTAssertEqual(try f.info("/latents/classes").shape, [737_280, 6])
        XCTAssertEqual(try f.info("/latents/values").type, .float64)
        for start in [0, 123_456, 737_270] {
            let (imgs, _) = try f.readUInt8s("/imgs", rows: start..<(start + 10))
            let (classes, _) = try f.readInt64s("/latents/classes", rows: start..<(start + 10))
            let (values, _) = try f.readDoubles("/latents/values", rows: start..<(start + 10))
            for i in 0..<10 {
                let k = DSprites.classes(of: start + i)
                XCTAssertEqual(classes[(i * 6)..<(i * 6 + 6)].map(Int.init), k)
                XCTAssertEqual(values[i * 6 + 2], DSprites.value(factor: 2, class: k[2]), accuracy: 1e-12)
                var fresh = [UInt8](repeating: 0, count: 4096)
                let shape = try XCTUnwrap(DSprites.Shape(rawValue: k[1]))
                fresh.withUnsafeMutableBufferPointer {
                    DSprites.render(shape: shape, scaleClass: k[2], orientationClass: k[3], posX: k[4], posY: k[5], into: $0.baseAddress!)
                }
                XCTAssertEqual(Array(imgs[(i * 4096)..<((i + 1) * 4096)]), fresh)
            }
        }
        XCTAssertEqual(try f.stringsAttribute("latents_names"), DSprites.factorNames)
        // Independent of the renderer: the first image is a square at scale 0.5 in the corner,
        // 10×10 = 100 pixels; the values are the official grids (scale linspace(0.5, 1, 6),
        // orientation linspace(0, 2π, 40), position linspace(0, 1, 32)).
        let (first, _) = try f.readUInt8s("/imgs", rows: 0..<1)
        XCTAssertEqual(first.reduce(0) { $0 + Int($1) }, 100)
        let (last, _) = try f.readDoubles("/latents/values", rows: 737_279..<737_280)
        XCTAssertEqual(last[0], 1)
        XCTAssertEqual(last[1], 3)
        XCTAssertEqual(last[2], 1, accuracy: 1e-12)
        XCTAssertEqual(last[3], 2 * Double.pi, accuracy: 1e-12)
        XCTAssertEqual([last[4], last[5]], [1, 1])
        let (second, _) = try f.readDoubles("/latents/values", rows: 1..<2)
        XCTAssertEqual(second[5], 1.0 / 31, accuracy: 1e-12)
        XCTAssertEqual(second[2], 0.5, accuracy: 1e-12)
    }
}
