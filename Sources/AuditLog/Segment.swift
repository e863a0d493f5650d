import CFileSync
#if canImport(Glibc)
import Glibc
#endif

/// Segment files are named by the index of their first entry, zero-padded so that name order
/// is log order.
package enum SegmentName {
    static let prefix = "segment-"
    static let suffix = ".log"

    package static func name(firstIndex: UInt64) -> String {
        let digits = String(firstIndex)
        return prefix + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
    }

    package static func firstIndex(of name: String) -> UInt64? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
        let digits = name.utf8.dropFirst(prefix.utf8.count).dropLast(suffix.utf8.count)
        guard digits.count == 20, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return UInt64(String(decoding: digits, as: UTF8.self))
    }

    /// (firstIndex, file name) of every segment in the directory, in log order.
    package static func list(_ dir: String) throws(AuditError) -> [(first: UInt64, name: String)] {
        try FileSystem.list(dir).compactMap { n in firstIndex(of: n).map { ($0, n) } }.sorted { $0.first < $1.first }
    }
}

/// An append-only file of framed records, owned by the writer thread.
final class AppendFile {
    let path: String
    private(set) var fd: Int32
    private(set) var length: Int

    private init(path: String, fd: Int32, length: Int) {
        self.path = path
        self.fd = fd
        self.length = length
    }

    /// Creates a new, empty file and makes its name durable.
    static func createNew(path: String) throws(AuditError) -> AppendFile {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io(operation: "create", path: path, errno: errno) }
        try FileSystem.syncDirectory(containing: path)
        return AppendFile(path: path, fd: fd, length: 0)
    }

    /// Opens an existing file, first cutting it to `validLength` when a torn record follows.
    static func reopen(path: String, validLength: Int) throws(AuditError) -> AppendFile {
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { Glibc.close(fd); throw .io(operation: "stat", path: path, errno: errno) }
        if Int(st.st_size) != validLength {
            guard ftruncate(fd, off_t(validLength)) == 0, fsync(fd) == 0 else {
                let e = errno
                Glibc.close(fd)
                throw .io(operation: "truncate torn record", path: path, errno: e)
            }
        }
        return AppendFile(path: path, fd: fd, length: validLength)
    }

    func append(_ bytes: [UInt8]) throws(AuditError) {
        let failure = bytes.withUnsafeBytes { raw -> AuditError? in
            do throws(AuditError) { try FileSystem.writeAll(fd, raw, path: path); return nil } catch { return error }
        }
        if let failure { throw failure }
        length += bytes.count
    }

    /// Starts writing the last `count` bytes appended to the disk without waiting for them (a
    /// hint: only `sync` makes them durable). Errors are left to the `sync` that must follow.
    func startWriteback(lastBytes count: Int) {
        _ = custos_start_writeback(fd, Int64(length - count), Int64(count))
    }

    /// fdatasync: data plus the size change, without forcing unrelated metadata such as mtime.
    func sync() throws(AuditError) {
        guard fdatasync(fd) == 0 else { throw .io(operation: "fdatasync", path: path, errno: errno) }
    }

    func closeFile() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    deinit { closeFile() }
}
