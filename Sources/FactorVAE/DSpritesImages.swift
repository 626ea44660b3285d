import Datasets
import Engine
import Foundation
import HDF5IO
import Harness

/// The dSprites images of a file in the official layout (`/imgs` uint8 [737280, 64, 64] of
/// 0/1, `/latents/classes` int64 [737280, 6] in the official order), held in memory at
/// `resolution` 64 (as stored) or 32: each 2 × 2 block becomes one pixel, on when at least
/// two of its four pixels are.
public final class DSpritesImages {
    public let resolution: Int
    /// count × resolution² pixels, 0 or 1, in the file's (the official) order.
    let pixels: [UInt8]
    public var imageSize: Int { resolution * resolution }

    init(resolution: Int, pixels: [UInt8]) { (self.resolution, self.pixels) = (resolution, pixels) }

    /// Reads and checks `path`, once per process for each file (path, size and modification
    /// date) and resolution: the arms of a run, the seeds of `--seeds` and the tests share it.
    public static func load(_ path: String, resolution: Int) throws -> DSpritesImages {
        try require("config.resolution", resolution == 64 || resolution == 32, "64 or 32, got \(resolution)")
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let key = "\(path)|\(resolution)|\(attributes?[.size] ?? "")|\(attributes?[.modificationDate] ?? "")"
        lock.lock()
        defer { lock.unlock() }
        if let cached = loaded[key] { return cached }
        let images = try read(path, resolution: resolution)
        loaded[key] = images
        return images
    }
    nonisolated(unsafe) static var loaded: [String: DSpritesImages] = [:]
    static let lock = NSLock()

    static func read(_ path: String, resolution: Int) throws -> DSpritesImages {
        let n = DSprites.count, side = DSprites.size
        do {
            let f = try HDF5File(reading: path)
            let (shape, type) = try f.info("/imgs")
            guard shape == [n, side, side], type == .uint8 else {
                throw DataError(path, "/imgs: expected uint8 [\(n), \(side), \(side)] (the dSprites layout), got \(type.map { "\($0)" } ?? "another type") \(shape)")
            }
            let (classes, cshape) = try f.readInt64s("/latents/classes", rank: 2)
            guard cshape == [n, 6] else { throw DataError(path, "/latents/classes: expected [\(n), 6], got \(cshape)") }
            for i in stride(from: 0, to: n, by: 997) where DSprites.classes(of: i).map(Int64.init) != Array(classes[(i * 6)..<(i * 6 + 6)]) {
                throw DataError(path, "/latents/classes: row \(i) is \(Array(classes[(i * 6)..<(i * 6 + 6)])), expected \(DSprites.classes(of: i)) (the official order)")
            }
            let factor = side / resolution, out = resolution * resolution
            var pixels = [UInt8](repeating: 0, count: n * out)
            let block = 32 * 1024
            for start in stride(from: 0, to: n, by: block) {
                let rows = start..<Swift.min(start + block, n)
                let (values, _) = try f.readUInt8s("/imgs", rank: 3, rows: rows)
                if let bad = values.first(where: { $0 > 1 }) { throw DataError(path, "/imgs: pixel value \(bad) in images \(rows.lowerBound)..<\(rows.upperBound), expected 0 or 1") }
                pixels.withUnsafeMutableBufferPointer { dst in values.withUnsafeBufferPointer { src in
                    for i in 0..<rows.count {
                        let s = src.baseAddress! + i * side * side, d = dst.baseAddress! + (start + i) * out
                        for r in 0..<resolution { for c in 0..<resolution {
                            var on = 0
                            for dy in 0..<factor { for dx in 0..<factor { on += Int(s[(r * factor + dy) * side + c * factor + dx]) } }
                            d[r * resolution + c] = factor == 1 ? UInt8(on) : (2 * on >= factor * factor ? 1 : 0)
                        } }
                    }
                } }
            }
            return DSpritesImages(resolution: resolution, pixels: pixels)
        } catch let e as HDF5Error { throw DataError(path, e.message) }
    }

    /// The images of factor-class vectors (color, shape, scale, orientation, posX, posY) as a
    /// float batch [B, resolution²] of 0/1.
    public func batch(_ factors: [[Int]]) -> Tensor {
        let size = imageSize, t = Tensor.zeros([factors.count, size])
        pixels.withUnsafeBufferPointer { p in
            for (b, f) in factors.enumerated() {
                let src = p.baseAddress! + zip(f, DSprites.bases).reduce(0) { $0 + $1.0 * $1.1 } * size, dst = t.pointer + b * size
                for i in 0..<size { dst[i] = Float(src[i]) }
            }
        }
        return t
    }

    /// `count` factor vectors drawn independently and uniformly per factor
    /// (disentanglement_lib's `sample_factors`).
    public static func sampleFactors(_ count: Int, rng: inout RNG) -> [[Int]] {
        (0..<count).map { _ in DSprites.factorSizes.map { rng.int(below: $0) } }
    }
}
