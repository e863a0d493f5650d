#if canImport(Glibc)
import Glibc
#endif

/// The few POSIX file operations the log needs, with errors that name the file.
enum FileSystem {
    /// Makes a directory entry (a created, renamed or truncated file) durable: without this a
    /// crash can lose a freshly created segment even though its data was fsynced.
    static func syncDirectory(_ dir: String) throws(AuditError) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(operation: "open directory", path: dir, errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw .io(operation: "fsync directory", path: dir, errno: errno) }
    }

    static func syncDirectory(containing path: String) throws(AuditError) {
        try syncDirectory(parent(of: path))
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func makeDirectory(_ path: String) throws(AuditError) {
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw .io(operation: "create directory", path: path, errno: errno)
        }
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func list(_ dir: String) throws(AuditError) -> [String] {
        guard let d = opendir(dir) else { throw .io(operation: "list directory", path: dir, errno: errno) }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func readAll(_ path: String) throws(AuditError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .io(operation: "stat", path: path, errno: errno) }
        var out = [UInt8](repeating: 0, count: Int(st.st_size))
        var done = 0
        while done < out.count {
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                if n == 0 { out.removeLast(out.count - done); break }
                throw .io(operation: "read", path: path, errno: errno)
            }
            done += n
        }
        return out
    }

    /// Replaces `path` with `bytes` through a temporary file, fsync and rename, then syncs the
    /// folder: a crash leaves the old file or the new one, never a part.
    static func writeAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws(AuditError) {
        let tmp = path + ".tmp"
        _ = unlink(tmp)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw .io(operation: "create", path: tmp, errno: errno) }
        let failure = bytes.withUnsafeBytes { raw -> AuditError? in
            do throws(AuditError) { try writeAll(fd, raw, path: tmp); return nil } catch { return error }
        }
        if let failure { close(fd); _ = unlink(tmp); throw failure }
        let synced = fsync(fd) == 0
        let e = errno
        close(fd)
        guard synced else { _ = unlink(tmp); throw .io(operation: "fsync", path: tmp, errno: e) }
        guard rename(tmp, path) == 0 else { throw .io(operation: "rename to \(path)", path: tmp, errno: errno) }
        try syncDirectory(containing: path)
    }

    /// Writes all of `bytes`, retrying short writes and EINTR.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(AuditError) {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "write", path: path, errno: errno)
            }
            done += n
        }
    }
}

/// A read-only memory map of a whole file; scanning a segment this way costs no copies.
final class MappedFile {
    let path: String
    let bytes: UnsafeRawBufferPointer
    private let mapped: Bool

    init(path: String) throws(AuditError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .io(operation: "stat", path: path, errno: errno) }
        let size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            mapped = false
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw .io(operation: "mmap", path: path, errno: errno) }
        _ = madvise(p, size, MADV_SEQUENTIAL)
        bytes = UnsafeRawBufferPointer(start: p, count: size)
        mapped = true
    }

    deinit {
        if mapped, let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}
