import Glibc

/// A listening socket for another front end of the same dispatcher (the HTTP front door):
/// bound with the same rules as the JSON-RPC socket, and removed by `close` only if the path
/// still names it.
public final class BoundSocket: Sendable {
    public let fd: Int32
    public let path: String?
    private let listener: Socket.Listener?

    private init(fd: Int32, path: String?, listener: Socket.Listener?) {
        self.fd = fd
        self.path = path
        self.listener = listener
    }

    /// A Unix stream socket at `path`, mode and group applied before it listens; a stale file
    /// nobody answers on is replaced, a live one refused (see the JSON-RPC socket).
    public static func unix(path: String, mode: mode_t, group: gid_t?, backlog: Int32 = 1024) throws(SocketError) -> BoundSocket {
        let l = try Socket.listen(path: path, mode: mode, group: group, backlog: backlog)
        return BoundSocket(fd: l.fd, path: path, listener: l)
    }

    /// A TCP socket on a loopback address (127.0.0.0/8 or ::1) only: there is no kernel
    /// identity on TCP, so the caller is whoever the configuration says, and nothing off the
    /// machine may connect. `host` is a numeric address.
    public static func loopbackTCP(host: String, port: UInt16, backlog: Int32 = 1024) throws(SocketError) -> BoundSocket {
        let what = "\(host):\(port)"
        var v4 = in_addr()
        var v6 = in6_addr()
        let fd: Int32
        let rc: Int32
        if inet_pton(AF_INET, host, &v4) == 1 {
            // 127.0.0.0/8 in network byte order: the first byte is 127.
            guard withUnsafeBytes(of: v4.s_addr, { $0[0] }) == 127 else { throw .notLoopback(address: what) }
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw .system(call: "socket", path: what, errno: errno) }
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = port.bigEndian
            addr.sin_addr = v4
            rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        } else if inet_pton(AF_INET6, host, &v6) == 1 {
            var loop = in6_addr()
            _ = inet_pton(AF_INET6, "::1", &loop)
            guard withUnsafeBytes(of: v6, { a in withUnsafeBytes(of: loop) { b in a.elementsEqual(b) } }) else {
                throw .notLoopback(address: what)
            }
            fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw .system(call: "socket", path: what, errno: errno) }
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var addr = sockaddr_in6()
            addr.sin6_family = sa_family_t(AF_INET6)
            addr.sin6_port = port.bigEndian
            addr.sin6_addr = v6
            rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        } else {
            throw .notLoopback(address: what)
        }
        if rc != 0 || Glibc.listen(fd, backlog) != 0 {
            let e = errno
            close(fd)
            throw .system(call: rc != 0 ? "bind" : "listen", path: what, errno: e)
        }
        return BoundSocket(fd: fd, path: nil, listener: nil)
    }

    /// The port a TCP socket is bound to (the kernel's choice when 0 was asked).
    public var port: UInt16? {
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &ss) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard rc == 0 else { return nil }
        switch Int32(ss.ss_family) {
        case AF_INET: return withUnsafePointer(to: &ss) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) } }
        case AF_INET6: return withUnsafePointer(to: &ss) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) } }
        default: return nil
        }
    }

    /// Removes the socket file if it is still ours (the descriptor is closed by its user).
    public func removeFile() {
        if let path, let listener { Socket.removeIfOurs(path: path, listener: listener) }
    }
}
