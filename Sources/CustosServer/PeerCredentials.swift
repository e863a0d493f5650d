import Glibc

/// The identity of the process at the other end of a Unix socket, as the kernel recorded it
/// when that process connected. It cannot be forged by the client.
public struct PeerCredentials: Sendable, Hashable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    /// Glibc's Swift module does not import `struct ucred` (it sits behind _GNU_SOURCE), so this
    /// mirrors its layout: `{ pid_t pid; uid_t uid; gid_t gid; }`, 12 bytes.
    struct UCred {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    /// nil when the kernel will not say (not a Unix socket); callers then refuse the connection.
    public static func of(socket fd: Int32) -> PeerCredentials? {
        var cred = UCred()
        var len = socklen_t(MemoryLayout<UCred>.size)
        let rc = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)
        guard rc == 0, len == socklen_t(MemoryLayout<UCred>.size) else { return nil }
        return PeerCredentials(pid: cred.pid, uid: cred.uid, gid: cred.gid)
    }
}
