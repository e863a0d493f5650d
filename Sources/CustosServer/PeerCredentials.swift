import Glibc

/// The identity of the process at the other end of a Unix socket, as the kernel recorded it
/// when that process connected. It cannot be forged by the client.
public struct PeerCredentials: Sendable, Hashable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
    /// The peer's supplementary groups when it connected (SO_PEERGROUPS, Linux 4.13+); empty
    /// when the kernel does not report them.
    public var groups: [UInt32] = []

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
        // Without its groups a caller could not be matched against a `deny_gids` naming one of
        // its supplementary groups: refused like a caller the kernel does not name at all.
        guard let groups = groups(of: fd) else { return nil }
        return PeerCredentials(pid: cred.pid, uid: cred.uid, gid: cred.gid, groups: groups)
    }

    /// SO_PEERGROUPS is 59 in the generic Linux socket options (x86-64, arm64); Glibc's Swift
    /// module does not export it.
    static let peerGroupsOption: Int32 = 59

    /// Asks for room first: a caller may be in up to NGROUPS_MAX (65,536) groups. Nil when the
    /// kernel will not say (before Linux 4.13, or not a Unix socket).
    package static func groups(of fd: Int32) -> [UInt32]? {
        var count = 32
        while count <= 65_536 {
            var buf = [UInt32](repeating: 0, count: count)
            var len = socklen_t(count * MemoryLayout<UInt32>.size)
            let rc = buf.withUnsafeMutableBytes { getsockopt(fd, SOL_SOCKET, peerGroupsOption, $0.baseAddress, &len) }
            if rc == 0 { return Array(buf.prefix(Int(len) / MemoryLayout<UInt32>.size)) }
            // ERANGE: the kernel wrote the size it needs into len.
            guard errno == ERANGE else { return nil }
            count = max(count * 2, Int(len) / MemoryLayout<UInt32>.size)
        }
        return nil
    }
}
