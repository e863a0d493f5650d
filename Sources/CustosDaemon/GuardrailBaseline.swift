import CustosJSON
import Foundation
import Glibc

/// The guardrails last in service, kept in the state directory
/// (`STATE/guardrails-in-service.json`), so that the first load after a restart is held to the
/// same rule as a reload: it may not switch off a guardrail the daemon was enforcing unless
/// `guardrails/DISABLED` says why. Without it, removing `guardrails/retention.json` and
/// restarting would do silently what a reload refuses.
///
///     {"guardrails": ["guardrails/purposes.json", "guardrails/regions.json"], "revision": "sha256:..."}
public struct GuardrailBaseline: Sendable {
    public static let fileName = "guardrails-in-service.json"
    public let path: String

    public init(stateDirectory: String) {
        path = (stateDirectory.hasSuffix("/") ? stateDirectory : stateDirectory + "/") + Self.fileName
    }

    public var exists: Bool { access(path, F_OK) == 0 }

    /// The guardrail files last in service; nil when the file does not exist yet (a new state
    /// directory). A file that cannot be read or understood fails the load: what it protects
    /// cannot be guessed.
    public func read() throws(PolicyStoreError) -> [String]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw damaged("cannot be read (\(String(cString: strerror(errno))))")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while bytes.count <= 1 << 20 {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw damaged("cannot be read (\(String(cString: strerror(errno))))") }
            if n == 0 { break }
            bytes.append(contentsOf: buf[0..<n])
        }
        guard let json = try? JSON.parse(bytes), case .array(let items)? = json["guardrails"] else {
            throw damaged("is not {\"guardrails\": [...], ...}")
        }
        var files: [String] = []
        for item in items {
            guard case .string(let f) = item else { throw damaged("guardrails: expected file names") }
            files.append(f)
        }
        return files
    }

    /// Replaces the file atomically and durably (write, fsync, rename, fsync the folder).
    public func write(_ files: [String], revision: String) throws(PolicyStoreError) {
        let dir = (path as NSString).deletingLastPathComponent
        if access(dir, F_OK) != 0 {
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                     attributes: [.posixPermissions: 0o750])
        }
        var w = JSONWriter()
        w.value(.object(JSONObject([
            JSONObject.Member(key: "guardrails", value: .array(files.map { .string($0) })),
            JSONObject.Member(key: "revision", value: .string(revision)),
        ])))
        w.byte(0x0A)
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o640)
        guard fd >= 0 else { throw unwritable(tmp) }
        let ok = w.bytes.withUnsafeBytes { p -> Bool in
            var off = 0
            while off < p.count {
                let n = Glibc.write(fd, p.baseAddress! + off, p.count - off)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                off += n
            }
            return true
        }
        let synced = ok && fsync(fd) == 0
        close(fd)
        guard synced, rename(tmp, path) == 0 else { unlink(tmp); throw unwritable(path) }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    private func damaged(_ why: String) -> PolicyStoreError {
        PolicyStoreError("\(path): \(why); it records which guardrails were in service, so no policy set is loaded. Compare it with the audit log's policy.load entries and restore it, or remove it to accept the folder's guardrails as they are")
    }

    private func unwritable(_ p: String) -> PolicyStoreError {
        PolicyStoreError("\(p): cannot record the guardrails in service (\(String(cString: strerror(errno)))); the previous policy set is kept")
    }
}
