import CZLib
import Foundation

/// An IDX array (the MNIST file format): unsigned-byte data with its dimensions.
public struct IDXArray {
    public let dimensions: [Int]
    public let bytes: [UInt8]
}

/// Reads an IDX file of unsigned bytes (type 0x08), gzip-compressed or plain.
public func readIDX(_ path: String) throws -> IDXArray {
    guard FileManager.default.fileExists(atPath: path) else { throw DataError(path, "no such file") }
    guard let gz = gzopen(path, "rb") else { throw DataError(path, "cannot open") }
    defer { gzclose(gz) }
    var raw = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = chunk.withUnsafeMutableBytes { gzread(gz, $0.baseAddress, UInt32($0.count)) }
        if n < 0 { throw DataError(path, "corrupt gzip stream") }
        if n == 0 { break }
        raw.append(contentsOf: chunk[0..<Int(n)])
    }
    guard raw.count >= 4, raw[0] == 0, raw[1] == 0 else { throw DataError(path, "not an IDX file (bad magic number)") }
    guard raw[2] == 0x08 else { throw DataError(path, "IDX element type 0x\(String(raw[2], radix: 16)), expected 0x08 (unsigned byte)") }
    let rank = Int(raw[3])
    guard rank >= 1, raw.count >= 4 + 4 * rank else { throw DataError(path, "truncated IDX header") }
    let dims = (0..<rank).map { i in raw[(4 + 4 * i)..<(8 + 4 * i)].reduce(0) { $0 << 8 | Int($1) } }
    let count = dims.reduce(1, *), start = 4 + 4 * rank
    guard raw.count == start + count else {
        throw DataError(path, "IDX payload has \(raw.count - start) bytes, header \(dims) needs \(count) (truncated or trailing data)")
    }
    return IDXArray(dimensions: dims, bytes: Array(raw[start...]))
}
