import CHDF5
import Foundation
import HDF5Shim

/// An HDF5 failure, naming the file and the object.
public struct HDF5Error: Error, CustomStringConvertible, Equatable {
    public let file: String, message: String
    public init(file: String, message: String) { self.file = file; self.message = message }
    public var description: String { "\(file): \(message)" }
}

/// The element types Replica stores.
public enum HDF5Type: String, Sendable {
    case uint8, int64, float32, float64

    var native: hid_t {
        switch self {
        case .uint8: return replica_H5T_NATIVE_UINT8()
        case .int64: return replica_H5T_NATIVE_INT64()
        case .float32: return replica_H5T_NATIVE_FLOAT()
        case .float64: return replica_H5T_NATIVE_DOUBLE()
        }
    }
}

/// One HDF5 file, open for reading or writing. Paths inside are `/group/name`; groups are
/// created as needed.
public final class HDF5File {
    public let path: String
    let id: hid_t

    /// Creates (or truncates) a file.
    public init(creating path: String) throws {
        replica_H5_silence_errors()
        self.path = path
        id = H5Fcreate(path, replica_H5F_ACC_TRUNC(), replica_H5P_DEFAULT(), replica_H5P_DEFAULT())
        if id < 0 { throw HDF5Error(file: path, message: "cannot create HDF5 file") }
    }

    /// Opens an existing file.
    public init(reading path: String, writable: Bool = false) throws {
        replica_H5_silence_errors()
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else { throw HDF5Error(file: path, message: "no such file") }
        id = H5Fopen(path, writable ? replica_H5F_ACC_RDWR() : replica_H5F_ACC_RDONLY(), replica_H5P_DEFAULT())
        if id < 0 { throw HDF5Error(file: path, message: "not a readable HDF5 file (truncated or corrupt?)") }
    }

    deinit { H5Fclose(id) }

    func fail(_ message: String) -> HDF5Error { HDF5Error(file: path, message: message) }

    public func exists(_ name: String) -> Bool {
        // Check each prefix: H5Lexists fails on a missing intermediate group.
        var prefix = ""
        for part in name.split(separator: "/") {
            prefix += "/" + part
            if H5Lexists(id, prefix, replica_H5P_DEFAULT()) <= 0 { return false }
        }
        return true
    }

    // MARK: datasets

    /// Writes a dataset of `type` with `shape` from raw elements; gzip-chunked when
    /// `compress` (chunks of whole rows, about 1 MB).
    public func write(_ name: String, type: HDF5Type, shape: [Int], bytes: UnsafeRawPointer, compress: Bool = false) throws {
        let rowSize = shape.dropFirst().reduce(1, *)
        let chunked = compress && !shape.isEmpty && shape.reduce(1, *) > 0
        let d = try makeDataset(name, type: type, shape: shape, chunkRows: chunked ? max(1, (1 << 20) / max(rowSize, 1)) : nil, compressionLevel: 4)
        defer { H5Dclose(d) }
        if H5Dwrite(d, type.native, replica_H5S_ALL(), replica_H5S_ALL(), replica_H5P_DEFAULT(), bytes) < 0 {
            throw fail("cannot write dataset '\(name)'")
        }
    }

    /// Creates a dataset (groups as needed), contiguous or gzip-chunked by `chunkRows` rows.
    private func makeDataset(_ name: String, type: HDF5Type, shape: [Int], chunkRows: Int?, compressionLevel: Int) throws -> hid_t {
        var dims = shape.map { hsize_t($0) }
        let space = H5Screate_simple(Int32(dims.count), &dims, nil)
        defer { H5Sclose(space) }
        let lcpl = H5Pcreate(replica_H5P_LINK_CREATE())
        defer { H5Pclose(lcpl) }
        H5Pset_create_intermediate_group(lcpl, 1)
        let dcpl = H5Pcreate(replica_H5P_DATASET_CREATE())
        defer { H5Pclose(dcpl) }
        H5Pset_obj_track_times(dcpl, false)   // no creation time in the header: the same data gives the same file bytes (and sha256)
        if let rows = chunkRows {
            var chunk = [hsize_t(max(1, min(rows, shape[0])))] + shape.dropFirst().map { hsize_t($0) }
            H5Pset_chunk(dcpl, Int32(chunk.count), &chunk)
            H5Pset_deflate(dcpl, UInt32(compressionLevel))
        }
        let d = H5Dcreate2(id, name, type.native, space, lcpl, dcpl, replica_H5P_DEFAULT())
        if d < 0 { throw fail("cannot create dataset '\(name)'") }
        return d
    }

    public func write(_ name: String, floats: [Float], shape: [Int], compress: Bool = false) throws {
        try checkCount(name, floats.count, shape)
        try floats.withUnsafeBytes { try write(name, type: .float32, shape: shape, bytes: $0.baseAddress!, compress: compress) }
    }

    public func write(_ name: String, doubles: [Double], shape: [Int], compress: Bool = false) throws {
        try checkCount(name, doubles.count, shape)
        try doubles.withUnsafeBytes { try write(name, type: .float64, shape: shape, bytes: $0.baseAddress!, compress: compress) }
    }

    public func write(_ name: String, int64s: [Int64], shape: [Int], compress: Bool = false) throws {
        try checkCount(name, int64s.count, shape)
        try int64s.withUnsafeBytes { try write(name, type: .int64, shape: shape, bytes: $0.baseAddress!, compress: compress) }
    }

    public func write(_ name: String, uint8s: [UInt8], shape: [Int], compress: Bool = true) throws {
        try checkCount(name, uint8s.count, shape)
        try uint8s.withUnsafeBytes { try write(name, type: .uint8, shape: shape, bytes: $0.baseAddress!, compress: compress) }
    }

    /// Creates an empty dataset to be filled by `writeRows`, gzip-chunked by `chunkRows`.
    public func createDataset(_ name: String, type: HDF5Type, shape: [Int], chunkRows: Int, compressionLevel: Int = 4) throws {
        H5Dclose(try makeDataset(name, type: type, shape: shape, chunkRows: chunkRows, compressionLevel: compressionLevel))
    }

    /// Writes rows `start..<start+count` of a dataset made by `createDataset`.
    public func writeRows(_ name: String, type: HDF5Type, start: Int, count: Int, bytes: UnsafeRawPointer) throws {
        let d = H5Dopen2(id, name, replica_H5P_DEFAULT())
        if d < 0 { throw fail("no dataset '\(name)'") }
        defer { H5Dclose(d) }
        let full = try shape(of: d, name)
        guard start >= 0, count >= 0, start + count <= full[0] else { throw fail("rows \(start)..<\(start + count) outside '\(name)' \(full)") }
        let space = H5Dget_space(d)
        defer { H5Sclose(space) }
        var offset = [hsize_t](repeating: 0, count: full.count), extent = full.map { hsize_t($0) }
        offset[0] = hsize_t(start); extent[0] = hsize_t(count)
        H5Sselect_hyperslab(space, H5S_SELECT_SET, &offset, nil, &extent, nil)
        let mem = H5Screate_simple(Int32(extent.count), &extent, nil)
        defer { H5Sclose(mem) }
        if H5Dwrite(d, type.native, mem, space, replica_H5P_DEFAULT(), bytes) < 0 { throw fail("cannot write rows of '\(name)'") }
    }

    private func checkCount(_ name: String, _ count: Int, _ shape: [Int]) throws {
        if count != shape.reduce(1, *) { throw fail("dataset '\(name)': \(count) values for shape \(shape)") }
    }

    /// Shape and element type of a dataset.
    public func info(_ name: String) throws -> (shape: [Int], type: HDF5Type?) {
        guard exists(name) else { throw fail("no dataset '\(name)'") }
        let d = H5Dopen2(id, name, replica_H5P_DEFAULT())
        if d < 0 { throw fail("'\(name)' is not a dataset") }
        defer { H5Dclose(d) }
        return (try shape(of: d, name), elementType(d))
    }

    private func shape(of d: hid_t, _ name: String) throws -> [Int] {
        let space = H5Dget_space(d)
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        if rank < 0 { throw fail("cannot read the shape of '\(name)'") }
        var dims = [hsize_t](repeating: 0, count: rank)
        H5Sget_simple_extent_dims(space, &dims, nil)
        return dims.map { Int($0) }
    }

    private func elementType(_ d: hid_t) -> HDF5Type? {
        let t = H5Dget_type(d)
        defer { H5Tclose(t) }
        let size = H5Tget_size(t)
        switch H5Tget_class(t) {
        case H5T_FLOAT: return size == 4 ? .float32 : size == 8 ? .float64 : nil
        case H5T_INTEGER:
            let signed = H5Tget_sign(t) == H5T_SGN_2
            if size == 1 && !signed { return .uint8 }
            if size == 8 && signed { return .int64 }
            return nil
        default: return nil
        }
    }

    /// Reads rows `rows` (all when nil) of a dataset whose element type is one of
    /// `accepted`, converted by HDF5 to `type` (whose Swift element is `T`) straight into the
    /// returned array; checks the rank when `rank` is given.
    func read<T>(_ name: String, as type: HDF5Type, _: T.Type, accepted: Set<HDF5Type>, rank: Int?, rows: Range<Int>?) throws -> (values: [T], shape: [Int]) {
        guard exists(name) else { throw fail("no dataset '\(name)'") }
        let d = H5Dopen2(id, name, replica_H5P_DEFAULT())
        if d < 0 { throw fail("'\(name)' is not a dataset") }
        defer { H5Dclose(d) }
        let full = try shape(of: d, name)
        guard let found = elementType(d), accepted.contains(found) else {
            throw fail("dataset '\(name)' has element type \(elementType(d)?.rawValue ?? "unsupported"), expected \(accepted.map(\.rawValue).sorted().joined(separator: " or "))")
        }
        if let rank, full.count != rank { throw fail("dataset '\(name)' has shape \(full), expected rank \(rank)") }
        var outShape = full
        let space = H5Dget_space(d)
        defer { H5Sclose(space) }
        var memSpace = replica_H5S_ALL(), fileSpace = replica_H5S_ALL()
        if let rows {
            guard !full.isEmpty, rows.lowerBound >= 0, rows.upperBound <= full[0] else { throw fail("rows \(rows) outside dataset '\(name)' of shape \(full)") }
            outShape[0] = rows.count
            var start = [hsize_t](repeating: 0, count: full.count), count = full.map { hsize_t($0) }
            start[0] = hsize_t(rows.lowerBound); count[0] = hsize_t(rows.count)
            H5Sselect_hyperslab(space, H5S_SELECT_SET, &start, nil, &count, nil)
            memSpace = H5Screate_simple(Int32(count.count), &count, nil)
            fileSpace = space
        }
        defer { if rows != nil { H5Sclose(memSpace) } }
        let n = outShape.reduce(1, *)
        var status: herr_t = 0
        let values = [T](unsafeUninitializedCapacity: n) { buffer, initialized in
            if n > 0 { status = H5Dread(d, type.native, memSpace, fileSpace, replica_H5P_DEFAULT(), buffer.baseAddress) }
            initialized = n
        }
        if status < 0 { throw fail("cannot read dataset '\(name)' (truncated or corrupt?)") }
        return (values, outShape)
    }

    public func readFloats(_ name: String, rank: Int? = nil, rows: Range<Int>? = nil) throws -> (values: [Float], shape: [Int]) {
        try read(name, as: .float32, Float.self, accepted: [.float32, .float64], rank: rank, rows: rows)
    }

    public func readDoubles(_ name: String, rank: Int? = nil, rows: Range<Int>? = nil) throws -> (values: [Double], shape: [Int]) {
        try read(name, as: .float64, Double.self, accepted: [.float32, .float64], rank: rank, rows: rows)
    }

    public func readInt64s(_ name: String, rank: Int? = nil, rows: Range<Int>? = nil) throws -> (values: [Int64], shape: [Int]) {
        try read(name, as: .int64, Int64.self, accepted: [.int64, .uint8], rank: rank, rows: rows)
    }

    public func readUInt8s(_ name: String, rank: Int? = nil, rows: Range<Int>? = nil) throws -> (values: [UInt8], shape: [Int]) {
        try read(name, as: .uint8, UInt8.self, accepted: [.uint8], rank: rank, rows: rows)
    }

    /// Names directly inside a group, sorted.
    public func children(of group: String) throws -> [String] {
        guard group == "/" || exists(group) else { throw fail("no group '\(group)'") }
        final class Box { var names: [String] = [] }
        let box = Box()
        var idx: hsize_t = 0
        let status = withUnsafeMutablePointer(to: &idx) { ip in
            H5Literate_by_name(id, group, H5_INDEX_NAME, H5_ITER_INC, ip, { _, name, _, data in
                Unmanaged<Box>.fromOpaque(data!).takeUnretainedValue().names.append(String(cString: name!))
                return 0
            }, Unmanaged.passUnretained(box).toOpaque(), replica_H5P_DEFAULT())
        }
        if status < 0 { throw fail("cannot list group '\(group)'") }
        return box.names.sorted()
    }

    // MARK: attributes (on the root or any object)

    private func withObject<R>(_ object: String, _ body: (hid_t) throws -> R) throws -> R {
        let o = H5Oopen(id, object, replica_H5P_DEFAULT())
        if o < 0 { throw fail("no object '\(object)'") }
        defer { H5Oclose(o) }
        return try body(o)
    }

    private func writeAttribute(_ object: String, _ name: String, type: hid_t, dims: [Int], data: UnsafeRawPointer) throws {
        try withObject(object) { o in
            if H5Aexists(o, name) > 0 { H5Adelete(o, name) }
            var d = dims.map { hsize_t($0) }
            let space = dims.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(d.count), &d, nil)
            defer { H5Sclose(space) }
            let a = H5Acreate2(o, name, type, space, replica_H5P_DEFAULT(), replica_H5P_DEFAULT())
            if a < 0 { throw fail("cannot create attribute '\(name)' on '\(object)'") }
            defer { H5Aclose(a) }
            if H5Awrite(a, type, data) < 0 { throw fail("cannot write attribute '\(name)' on '\(object)'") }
        }
    }

    private func stringType() -> hid_t {
        let t = H5Tcopy(replica_H5T_C_S1())
        H5Tset_size(t, replica_H5T_VARIABLE())
        H5Tset_cset(t, H5T_CSET_UTF8)
        return t
    }

    /// A UTF-8 string attribute (variable length, as h5py writes `str`).
    public func setAttribute(_ name: String, string: String, on object: String = "/") throws {
        try setAttribute(name, strings: [string], on: object, scalar: true)
    }

    /// A list of strings (class names).
    public func setAttribute(_ name: String, strings: [String], on object: String = "/", scalar: Bool = false) throws {
        let t = stringType()
        defer { H5Tclose(t) }
        let cs = strings.map { strdup($0) }
        defer { cs.forEach { free($0) } }
        var ptrs: [UnsafePointer<CChar>?] = cs.map { UnsafePointer($0) }
        try ptrs.withUnsafeMutableBytes { try writeAttribute(object, name, type: t, dims: scalar ? [] : [strings.count], data: $0.baseAddress!) }
    }

    public func setAttribute(_ name: String, double value: Double, on object: String = "/") throws {
        var v = value
        try writeAttribute(object, name, type: replica_H5T_NATIVE_DOUBLE(), dims: [], data: &v)
    }

    public func setAttribute(_ name: String, int value: Int64, on object: String = "/") throws {
        var v = value
        try writeAttribute(object, name, type: replica_H5T_NATIVE_INT64(), dims: [], data: &v)
    }

    private func openAttribute<R>(_ name: String, on object: String, _ body: (hid_t, Int) throws -> R) throws -> R {
        try withObject(object) { o in
            guard H5Aexists(o, name) > 0 else { throw fail("no attribute '\(name)' on '\(object)'") }
            let a = H5Aopen(o, name, replica_H5P_DEFAULT())
            defer { H5Aclose(a) }
            let space = H5Aget_space(a)
            defer { H5Sclose(space) }
            return try body(a, Int(H5Sget_simple_extent_npoints(space)))
        }
    }

    public func stringsAttribute(_ name: String, on object: String = "/") throws -> [String] {
        try openAttribute(name, on: object) { a, n in
            let ft = H5Aget_type(a)
            defer { H5Tclose(ft) }
            guard H5Tget_class(ft) == H5T_STRING, H5Tis_variable_str(ft) > 0 else { throw fail("attribute '\(name)' on '\(object)' is not a variable-length string") }
            let t = stringType()
            defer { H5Tclose(t) }
            var ptrs = [UnsafeMutablePointer<CChar>?](repeating: nil, count: n)
            if H5Aread(a, t, &ptrs) < 0 { throw fail("cannot read attribute '\(name)' on '\(object)'") }
            defer { ptrs.forEach { free($0) } }
            return ptrs.map { $0.map { String(cString: $0) } ?? "" }
        }
    }

    public func stringAttribute(_ name: String, on object: String = "/") throws -> String {
        guard let s = try stringsAttribute(name, on: object).first else { throw fail("attribute '\(name)' on '\(object)' is empty") }
        return s
    }

    public func doubleAttribute(_ name: String, on object: String = "/") throws -> Double {
        try openAttribute(name, on: object) { a, n in
            guard n == 1 else { throw fail("attribute '\(name)' on '\(object)' has \(n) values, expected one number") }
            var v = 0.0
            if H5Aread(a, replica_H5T_NATIVE_DOUBLE(), &v) < 0 { throw fail("attribute '\(name)' on '\(object)' is not a number") }
            return v
        }
    }

    public func hasAttribute(_ name: String, on object: String = "/") -> Bool {
        (try? withObject(object) { H5Aexists($0, name) > 0 }) ?? false
    }
}

extension HDF5File {
    /// The HDF5 library this process runs with ("1.10.8").
    public static var libraryVersion: String {
        var (major, minor, release): (UInt32, UInt32, UInt32) = (0, 0, 0)
        H5get_libversion(&major, &minor, &release)
        return "\(major).\(minor).\(release)"
    }
}
