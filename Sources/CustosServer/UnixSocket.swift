import Glibc

/// Why the server's socket could not be set up; each message says what to change.
public enum SocketError: Error, Sendable, CustomStringConvertible, Equatable {
    case pathTooLong(path: String, bytes: Int)
    case pathHasNUL(path: String)
    case alreadyServing(path: String)
    case notASocket(path: String)
    /// The descriptor the service manager passed is not a listening stream socket.
    case notListening(path: String, fd: Int32)
    case system(call: String, path: String, errno: Int32)
    /// A TCP listener asked for an address that is not loopback (see `BoundSocket`).
    case notLoopback(address: String)

    public var description: String {
        switch self {
        case .pathTooLong(let p, let n):
            "socket path \(p) is \(n) bytes; Unix socket paths are limited to \(UnixAddress.maxPathBytes) bytes, choose a shorter path"
        case .pathHasNUL(let p):
            "socket path \(p.debugDescription) contains a NUL byte"
        case .alreadyServing(let p):
            "another process is already serving on \(p); stop it or choose another socket path"
        case .notASocket(let p):
            "\(p) exists and is not a socket; refusing to replace it, remove it or choose another path"
        case .notListening(let p, let fd):
            "descriptor \(fd) passed by the service manager for \(p) is not a listening stream socket; check ListenStream= in the socket unit"
        case .system(let call, let p, let e):
            "\(call) on \(p) failed: \(errnoText(e))"
        case .notLoopback(let a):
            "\(a) is not a numeric loopback address (127.0.0.0/8 or ::1); TCP callers have no kernel identity, so only this machine may connect"
        }
    }
}

func errnoText(_ e: Int32) -> String {
    guard let s = strerror(e) else { return "errno \(e)" }
    return String(cString: s) + " (errno \(e))"
}

/// A filesystem Unix socket address.
public enum UnixAddress {
    /// sun_path holds 108 bytes including the terminating NUL.
    public static let maxPathBytes = 107

    static func make(_ path: String) throws(SocketError) -> sockaddr_un {
        let bytes = Array(path.utf8)
        guard bytes.count <= maxPathBytes else { throw .pathTooLong(path: path, bytes: bytes.count) }
        guard !bytes.contains(0) else { throw .pathHasNUL(path: path) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return addr
    }
}

enum Socket {
    static func streamSocket(path: String) throws(SocketError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system(call: "socket", path: path, errno: errno) }
        return fd
    }

    /// Connects a new blocking socket; returns the errno on failure so callers can tell a dead
    /// socket (ECONNREFUSED) from other problems.
    static func connect(path: String) throws(SocketError) -> Result<Int32, SocketError> {
        var addr = try UnixAddress.make(path)
        let fd = try streamSocket(path: path)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if rc != 0 {
            let e = errno
            close(fd)
            return .failure(.system(call: "connect", path: path, errno: e))
        }
        return .success(fd)
    }

    struct Listener {
        var fd: Int32
        /// The bound file's identity, so stop removes our socket and not a successor's.
        var device: UInt64
        var inode: UInt64
        /// False for a socket the service manager bound and owns: never unlinked by us.
        var owned = true
    }

    /// Takes over a listening socket passed by the service manager (socket activation).
    static func adopt(fd: Int32, path: String) throws(SocketError) -> Listener {
        var type: Int32 = 0, listening: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 else {
            throw .system(call: "getsockopt (inherited descriptor \(fd))", path: path, errno: errno)
        }
        len = socklen_t(MemoryLayout<Int32>.size)
        guard type == Int32(SOCK_STREAM.rawValue), getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0,
              listening == 1 else {
            throw .notListening(path: path, fd: fd)
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return Listener(fd: fd, device: 0, inode: 0, owned: false)
    }

    /// Binds and listens. A leftover socket file nobody answers on is replaced; a live one is
    /// an error. The mode (and group) is applied between bind and listen, so no client can
    /// connect while the file still has the umask's permissions.
    static func listen(path: String, mode: mode_t, group: gid_t?, backlog: Int32) throws(SocketError) -> Listener {
        var addr = try UnixAddress.make(path)
        var st = stat()
        if lstat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFSOCK else { throw .notASocket(path: path) }
            switch try connect(path: path) {
            case .success(let fd):
                close(fd)
                throw .alreadyServing(path: path)
            case .failure(.system(_, _, let e)) where e == ECONNREFUSED:
                if unlink(path) != 0 && errno != ENOENT { throw .system(call: "unlink", path: path, errno: errno) }
            case .failure(let other):
                throw other
            }
        }
        let fd = try streamSocket(path: path)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if rc != 0 {
            let e = errno
            close(fd)
            if e == EADDRINUSE { throw .alreadyServing(path: path) }
            throw .system(call: "bind", path: path, errno: e)
        }
        func fail(_ call: String) throws(SocketError) -> Never {
            let e = errno
            close(fd)
            unlink(path)
            throw .system(call: call, path: path, errno: e)
        }
        if chmod(path, mode) != 0 { try fail("chmod") }
        if let group, chown(path, uid_t.max, group) != 0 { try fail("chown") }
        if lstat(path, &st) != 0 { try fail("lstat") }
        if Glibc.listen(fd, backlog) != 0 { try fail("listen") }
        return Listener(fd: fd, device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    /// Removes the socket file only if it is still the one we bound.
    static func removeIfOurs(path: String, listener: Listener) {
        guard listener.owned else { return }
        var st = stat()
        guard lstat(path, &st) == 0, UInt64(st.st_dev) == listener.device, UInt64(st.st_ino) == listener.inode else { return }
        unlink(path)
    }

    static func setTimeout(_ fd: Int32, option: Int32, _ d: Duration) {
        let (secs, attos) = d.components
        let usec = attos / 1_000_000_000_000
        var tv = timeval(tv_sec: Int(max(0, secs)), tv_usec: Int(max(0, usec)))
        if tv.tv_sec == 0 && tv.tv_usec == 0 { tv.tv_usec = 1 } // 0 would mean "never time out"
        _ = setsockopt(fd, SOL_SOCKET, option, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Writes everything or reports failure (peer gone, write timeout). MSG_NOSIGNAL keeps a
    /// vanished peer from killing the process with SIGPIPE.
    static func writeAll(_ fd: Int32, _ p: UnsafeRawBufferPointer) -> Bool {
        guard var base = p.baseAddress else { return true }
        var left = p.count
        while left > 0 {
            let n = send(fd, base, left, Int32(MSG_NOSIGNAL))
            if n > 0 {
                base += n
                left -= n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                return false
            }
        }
        return true
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { writeAll(fd, $0) }
    }
}
