import CSystemd
import Glibc

/// The two service-manager protocols the daemon speaks, through libsystemd (Debian's
/// `libsystemd0`), the implementation systemd ships for them: socket activation
/// (`LISTEN_PID`/`LISTEN_FDS`, sd_listen_fds(3)) and readiness notification (`NOTIFY_SOCKET`,
/// sd_notify(3)). Both do nothing when the daemon was not started by a service manager, so a
/// daemon started by hand binds its own socket and notifies no one.
///
/// Why the library rather than the protocols by hand: it checks that the descriptors were meant
/// for this process (`LISTEN_PID`), marks them close-on-exec, removes the variables so no child
/// inherits them, handles abstract `NOTIFY_SOCKET` addresses and passes credentials the way
/// systemd expects; each is a detail a hand-written version can get subtly wrong, and Debian
/// already carries the library on every systemd machine (and in `debian:12-slim`).
public enum ServiceManager {
    /// The first descriptor passed by socket activation (SD_LISTEN_FDS_START).
    public static let firstDescriptor: Int32 = 3

    /// Descriptors handed over by socket activation, or an error message when the environment
    /// says there are some but they cannot be taken (the daemon must not then bind a socket
    /// of its own beside the one its service manager owns).
    public static func listenDescriptors() -> Result<[Int32], ServiceManagerError> {
        let n = sd_listen_fds(1)
        if n < 0 { return .failure(ServiceManagerError("LISTEN_FDS", errno: -n)) }
        return .success((0..<n).map { firstDescriptor + $0 })
    }

    /// Whether `fd` is a listening Unix stream socket (what `custos.socket` hands over).
    public static func isListeningUnixStream(_ fd: Int32) -> Bool {
        sd_is_socket_unix(fd, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0
    }

    /// Sends `state` (`READY=1`, `STATUS=...`, `RELOADING=1`, `STOPPING=1`, newline-separated)
    /// to the service manager; false when there is none (`NOTIFY_SOCKET` unset) or it failed.
    /// The variable is kept, so every later state change reaches it too.
    @discardableResult
    public static func notify(_ state: String) -> Bool {
        sd_notify(0, state) > 0
    }

    /// The monotonic clock in microseconds, which `RELOADING=1` carries (`MONOTONIC_USEC`) so a
    /// newer systemd can tell this reload from an older one.
    public static func monotonicMicroseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000 &+ UInt64(ts.tv_nsec / 1000)
    }
}

public struct ServiceManagerError: Error, Sendable, CustomStringConvertible {
    public var message: String
    init(_ variable: String, errno e: Int32) {
        message = "socket activation (\(variable)): \(String(cString: strerror(e))) (errno \(e))"
    }
    public var description: String { message }
}
