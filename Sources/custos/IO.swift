import Foundation

/// Small I/O helpers shared by commands: whole-file reads with readable errors, buffered stdout.
enum IO {
    static func readText(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
                throw UsageError(message: isDir.boolValue ? "\(path): is a directory" : "\(path): cannot be read")
            }
            throw UsageError(message: "\(path): no such file")
        }
        // Decoded as is (Foundation's decoding would drop a leading byte-order mark, which the
        // JSON reader refuses with a clear message, as the daemon does).
        guard let s = String(validating: [UInt8](data), as: UTF8.self) else {
            throw UsageError(message: "\(path): not valid UTF-8")
        }
        return s
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    static func printError(_ message: String) {
        FileHandle.standardError.write(Data(("custos: " + message + "\n").utf8))
    }
}

/// Buffered writes to standard output; one syscall per 64 KiB instead of one per line.
final class StdoutBuffer {
    private var buf: [UInt8] = []

    init() { buf.reserveCapacity(1 << 16) }

    func write(_ bytes: [UInt8]) {
        buf.append(contentsOf: bytes)
        if buf.count >= 1 << 16 { flush() }
    }

    func write(_ s: String) { write(Array(s.utf8)) }

    func flush() {
        var off = 0
        while off < buf.count {
            let n = buf.withUnsafeBytes { p in Glibc.write(1, p.baseAddress! + off, p.count - off) }
            if n <= 0 { break }
            off += n
        }
        buf.removeAll(keepingCapacity: true)
    }

    deinit { flush() }
}
