import Engine
import Foundation
import HDF5IO

/// Procedural dSprites (Matthey et al. 2017) in the official layout and factor order, drawn
/// with the geometry measured on the real file (shape areas, scale steps, position grid):
/// a pixel is on iff its centre lies inside the shape; white on black, no anti-aliasing.
public enum DSprites {
    public static let factorNames = ["color", "shape", "scale", "orientation", "posX", "posY"]
    public static let factorSizes = [1, 3, 6, 40, 32, 32]
    /// Row-major bases: index = Σ class_i · base_i.
    public static let bases = [737_280, 245_760, 40_960, 1024, 32, 1]
    public static let count = 737_280
    public static let size = 64

    public enum Shape: Int, CaseIterable { case square = 0, ellipse = 1, heart = 2 }

    /// The factor values of each class, as the official `latents_values`.
    public static func value(factor: Int, class c: Int) -> Double {
        switch factor {
        case 0: return 1
        case 1: return Double(c + 1)
        case 2: return 0.5 + 0.1 * Double(c)
        case 3: return 2 * Double.pi * Double(c) / 39
        default: return Double(c) / 31
        }
    }

    /// Factor classes of image `index`.
    public static func classes(of index: Int) -> [Int] {
        (0..<6).map { (index / bases[$0]) % factorSizes[$0] }
    }

    /// Is the point (u, v) (shape frame, y up, scale 1) inside the shape?
    @inline(__always)
    static func inside(_ shape: Shape, _ u: Double, _ v: Double) -> Bool {
        switch shape {
        case .square: return Swift.abs(u) <= 9.55 && Swift.abs(v) <= 9.55
        case .ellipse: return (u / 12.75) * (u / 12.75) + (v / 7.22) * (v / 7.22) <= 1
        case .heart:
            let r2 = 4.62 * 4.62
            if (u - 4.91) * (u - 4.91) + (v - 4.68) * (v - 4.68) <= r2 { return true }
            if (u + 4.91) * (u + 4.91) + (v - 4.68) * (v - 4.68) <= r2 { return true }
            return v >= -8.93 && v <= 3.43 && Swift.abs(u) <= 0.885 * (v + 8.93)
        }
    }

    /// Renders one 64×64 image (values 0/1) into `out`.
    public static func render(shape: Shape, scaleClass: Int, orientationClass: Int, posX: Int, posY: Int, into out: UnsafeMutablePointer<UInt8>) {
        let s = value(factor: 2, class: scaleClass), theta = value(factor: 3, class: orientationClass)
        let cx = 16 + 32 * Double(posX) / 31, cy = 16 + 32 * Double(posY) / 31
        let (c, sn) = (Foundation.cos(theta), Foundation.sin(theta))
        out.update(repeating: 0, count: size * size)
        let reach = 13.0 * s + 1   // every shape fits in this radius
        let r0 = Swift.max(0, Int(cy - reach)), r1 = Swift.min(size - 1, Int(cy + reach) + 1)
        let c0 = Swift.max(0, Int(cx - reach)), c1 = Swift.min(size - 1, Int(cx + reach) + 1)
        for row in r0...r1 {
            for col in c0...c1 {
                // Pixel centre in the shape frame: y up, rotated back by θ (the shape turns CCW on screen).
                let dx = Double(col) + 0.5 - cx, dy = cy - (Double(row) + 0.5)
                let u = (c * dx + sn * dy) / s, v = (-sn * dx + c * dy) / s
                if inside(shape, u, v) { out[row * size + col] = 1 }
            }
        }
    }

    /// Renders every image in order into `path` (`imgs`, `latents/classes`,
    /// `latents/values`), in blocks so memory stays small; written atomically.
    public static func write(to path: String, progress: (Int) -> Void = { _ in }) throws {
        try writeAtomically(to: path) { tmp in
            let f = try HDF5File(creating: tmp)
            try f.createDataset("/imgs", type: .uint8, shape: [count, size, size], chunkRows: 1024, compressionLevel: 1)
            let block = 32 * 1024
            var buffer = [UInt8](repeating: 0, count: block * size * size)
            for start in stride(from: 0, to: count, by: block) {
                let n = Swift.min(block, count - start)
                buffer.withUnsafeMutableBufferPointer { b in
                    let base = b.baseAddress!
                    Threads.parallelFor(n, grain: 256) { _, r in
                        for i in r {
                            let k = classes(of: start + i)
                            render(shape: Shape(rawValue: k[1])!, scaleClass: k[2], orientationClass: k[3], posX: k[4], posY: k[5],
                                   into: base + i * size * size)
                        }
                    }
                }
                try buffer.withUnsafeBytes { try f.writeRows("/imgs", type: .uint8, start: start, count: n, bytes: $0.baseAddress!) }
                progress(start + n)
            }
            let table = (0..<count).flatMap { i in DSprites.classes(of: i).map(Int64.init) }
            try f.write("/latents/classes", int64s: table, shape: [count, 6], compress: true)
            let values = (0..<(count * 6)).map { value(factor: $0 % 6, class: Int(table[$0])) }
            try f.write("/latents/values", doubles: values, shape: [count, 6], compress: true)
            try f.setAttribute("latents_names", strings: factorNames)
            try f.setAttribute("description", string: "Procedural dSprites rendered by Replica (geometry measured from the official frames); same layout and factor order as dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5")
        }
    }
}
