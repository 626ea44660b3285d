import Engine
import Foundation
import HDF5IO
import PNGShim

/// A decoded PNG: samples row-major, interleaved channels (1 gray, 2 gray+alpha, 3 RGB,
/// 4 RGBA; palettes arrive as RGB/RGBA), 8- or 16-bit values.
public struct PNGImage: Equatable {
    public var width: Int, height: Int, channels: Int, bitDepth: Int
    public var samples: [UInt16]

    public init(width: Int, height: Int, channels: Int, bitDepth: Int = 8, samples: [UInt16]) {
        precondition(samples.count == width * height * channels, "\(samples.count) samples for \(width)x\(height)x\(channels)")
        (self.width, self.height, self.channels, self.bitDepth, self.samples) = (width, height, channels, bitDepth, samples)
    }

    /// Reads any PNG (gray, gray+alpha, RGB, RGBA, palette; 1–16 bit).
    public init(contentsOf path: String) throws {
        var img = replica_png_image()
        var err = [CChar](repeating: 0, count: 256)
        guard replica_png_read(path, &img, &err, err.count) == 0 else {
            throw DataError(path, "PNG: " + String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        defer { replica_png_free(&img) }
        let n = Int(img.width) * Int(img.height) * Int(img.channels)
        self.init(width: Int(img.width), height: Int(img.height), channels: Int(img.channels), bitDepth: Int(img.bit_depth),
                  samples: Array(UnsafeBufferPointer(start: img.samples, count: n)))
    }

    /// Writes the image; with `palette` (RGB triples), samples are palette indices.
    public func write(to path: String, palette: [UInt8]? = nil) throws {
        var err = [CChar](repeating: 0, count: 256)
        let status = samples.withUnsafeBufferPointer { s in
            replica_png_write(path, s.baseAddress, UInt32(width), UInt32(height), Int32(channels), Int32(bitDepth),
                              palette, Int32((palette?.count ?? 0) / 3), &err, err.count)
        }
        guard status == 0 else {
            throw DataError(path, "PNG: " + String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
    }

    /// 8-bit samples without alpha, as `channels` (1 or 3): gray is replicated to RGB when
    /// asked, RGB is never reduced. 16-bit values round to 8 bits.
    public func bytes(channels target: Int) -> [UInt8] {
        let color = channels >= 3 ? 3 : 1
        precondition(target == 1 && color == 1 || target == 3, "cannot reduce RGB to gray")
        var out = [UInt8](repeating: 0, count: width * height * target)
        for p in 0..<(width * height) {
            for c in 0..<target {
                let v = samples[p * channels + (color == 1 ? 0 : c)]
                out[p * target + c] = bitDepth == 16 ? UInt8((UInt32(v) * 255 + 32767) / 65535) : UInt8(v)
            }
        }
        return out
    }
}

/// Cells ([H, W, C] 8-bit, C = 1 or 3) laid out in a grid with 2-pixel mid-gray gaps,
/// upscaled by `scale`, written atomically (temp file, then rename).
public func writePNGGrid(_ cells: [[UInt8]], rows: Int, columns: Int, height h: Int, width w: Int, channels c: Int = 1, scale: Int,
                         to path: String) throws {
    let gap = 2, cw = w * scale, ch = h * scale
    let W = columns * cw + (columns + 1) * gap, H = rows * ch + (rows + 1) * gap
    var samples = [UInt16](repeating: 128, count: W * H * c)
    for (k, cell) in cells.enumerated() {
        let r = k / columns, col = k % columns
        for y in 0..<ch { for x in 0..<cw { for z in 0..<c {
            samples[((gap + r * (ch + gap) + y) * W + gap + col * (cw + gap) + x) * c + z] = UInt16(cell[((y / scale) * w + x / scale) * c + z])
        } } }
    }
    try writeAtomically(to: path, suffix: ".png") { try PNGImage(width: W, height: H, channels: c, samples: samples).write(to: $0) }
}

extension PNGImage {
    /// The libpng this process runs with.
    public static var libraryVersion: String { String(cString: replica_png_version()) }
}

/// The file-format libraries behind the numbers' inputs, for provenance.
public var fileLibraryVersions: String { "HDF5 \(HDF5File.libraryVersion), libpng \(PNGImage.libraryVersion)" }
