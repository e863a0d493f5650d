import Foundation
import Glibc

/// Scratch folders for tests, so that `make test` leaves nothing behind in /tmp.
///
/// Every folder lives under one root of this test process, `/tmp/cxt-<pid>`, removed when the
/// process exits. A root whose process is gone (a crash, a kill -9, a runner timing out) is
/// removed by the next test process, so leftovers do not pile up across runs either. Without
/// this, each run left about 600 folders, some with daemons' audit logs, and a dev machine's
/// /tmp grew by gigabytes. The root's name is short because Unix socket paths, which tests
/// put in these folders, are limited to 107 bytes.
public enum Scratch {
    /// A fresh folder, `<root>/<tag>-XXXXXX`, mode 0700 (as `mkdtemp` makes it).
    public static func directory(_ tag: String) -> String {
        var template = Array("\(root)/\(tag)-XXXXXX".utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            fatalError("mkdtemp under \(root): \(String(cString: strerror(errno)))")
        }
        return String(cString: p)
    }

    /// `directory(_:)` as a file URL.
    public static func url(_ tag: String) -> URL { URL(fileURLWithPath: directory(tag), isDirectory: true) }

    static let prefix = "cxt-"

    /// Created on first use, after removing the roots of test processes that no longer exist.
    static let root: String = {
        removeOrphanedRoots()
        let path = "/tmp/\(prefix)\(getpid())"
        // A root left by an earlier process with our pid (pids are reused) is stale too.
        try? FileManager.default.removeItem(atPath: path)
        // 0755: tests run servers as other users (postgres, nobody) in their folders below.
        guard mkdir(path, 0o755) == 0, chmod(path, 0o755) == 0 else {
            fatalError("mkdir \(path): \(String(cString: strerror(errno)))")
        }
        atexit { try? FileManager.default.removeItem(atPath: Scratch.root) }
        return path
    }()

    private static func removeOrphanedRoots() {
        let me = getpid()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? [] where name.hasPrefix(prefix) {
            guard let pid = pid_t(name.dropFirst(prefix.count)), pid != me else { continue }
            if kill(pid, 0) == -1 && errno == ESRCH { try? FileManager.default.removeItem(atPath: "/tmp/" + name) }
        }
    }
}
