import Engine
import Foundation
import HDF5IO

/// The dataset file layout (README: Data): `/train/images`, `/test/images` uint8
/// [N, H, W, C]; `/train/labels`, `/test/labels` int64 [N]; root attributes `name` and
/// `classes`.
public enum DatasetFile {
    public static let splits = ["train", "test"]

    /// Writes both splits atomically (temporary file, then rename).
    public static func write(_ path: String, name: String, classes: [String], splits: [String: ImageSet], sources: [String: String] = [:]) throws {
        try writeAtomically(to: path) { tmp in
            let f = try HDF5File(creating: tmp)
            for (split, set) in splits.sorted(by: { $0.key < $1.key }) {
                try f.write("/\(split)/images", uint8s: set.pixels, shape: [set.count, set.height, set.width, set.channels])
                try f.write("/\(split)/labels", int64s: set.labels.map(Int64.init), shape: [set.count], compress: true)
            }
            try f.setAttribute("name", string: name)
            try f.setAttribute("classes", strings: classes)
            for (k, v) in sources.sorted(by: { $0.key < $1.key }) { try f.setAttribute(k, string: v) }
        }
    }

    /// Reads one split, checking layout, dtype, rank and labels against the class list.
    public static func read(_ path: String, split: String) throws -> (set: ImageSet, classes: [String], name: String) {
        let f: HDF5File
        do { f = try HDF5File(reading: path) } catch let e as HDF5Error { throw DataError(path, e.message) }
        do {
            let classes = try f.stringsAttribute("classes")
            let name = (try? f.stringAttribute("name")) ?? ""
            let (pixels, shape) = try f.readUInt8s("/\(split)/images", rank: 4)
            let (labels, lshape) = try f.readInt64s("/\(split)/labels", rank: 1)
            guard lshape[0] == shape[0] else {
                throw DataError(path, "/\(split)/labels has \(lshape[0]) entries, /\(split)/images has \(shape[0]) images")
            }
            if let bad = labels.first(where: { $0 < 0 || $0 >= classes.count }) {
                throw DataError(path, "/\(split)/labels: label \(bad) outside the \(classes.count) classes")
            }
            return (ImageSet(pixels: pixels, labels: labels.map(Int.init), height: shape[1], width: shape[2], channels: shape[3]), classes, name)
        } catch let e as HDF5Error {
            throw DataError(path, e.message)
        }
    }
}

/// SHA-256 of a file, hex (for provenance).
public func sha256(file path: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path) else { throw DataError(path, "cannot read") }
    return SHA256.hex(data)
}

/// SHA-256 of bytes, hex (cache keys).
public func sha256(data: Data) -> String { SHA256.hex(data) }
