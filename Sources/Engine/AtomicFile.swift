import Foundation

/// A file write that failed, naming the file the caller asked for (never the temporary one).
public struct FileWriteError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Writes `path` through a temporary file beside it (`write` receives its name), then renames
/// it into place: readers never see half a file, and a failed or interrupted write leaves
/// none. A missing folder is reported before anything is written.
public func writeAtomically(to path: String, suffix: String = "", _ write: (_ temporary: String) throws -> Void) throws {
    let folder = (path as NSString).deletingLastPathComponent
    var isDirectory: ObjCBool = false
    guard folder.isEmpty || (FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) && isDirectory.boolValue) else {
        throw FileWriteError("\(path): cannot write: the folder \(folder) does not exist")
    }
    let tmp = path + ".tmp-\(getpid())" + suffix
    do { try write(tmp) } catch {
        try? FileManager.default.removeItem(atPath: tmp)
        throw error
    }
    guard rename(tmp, path) == 0 else {
        let reason = String(cString: strerror(errno))
        try? FileManager.default.removeItem(atPath: tmp)
        throw FileWriteError("\(path): cannot move the finished file into place: \(reason)")
    }
}
