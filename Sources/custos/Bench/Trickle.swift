import CustosJSON
import CustosServer
import Glibc

/// `custos bench trickle`: the slow-client attack, to show what the daemon's connection limits
/// do with it (docs/security.md, "Limits"). Holds up to N connections, each sending one byte
/// of a line that never ends every interval, and reconnects whatever the daemon closes, as an
/// attacker would. Prints one status line per second and a summary; run it under another uid
/// (`setpriv --reuid=65534 ...`) to see the per-uid limit and the slots kept for the admin.
enum Trickle {
    struct Counts {
        var connects = 0
        /// Answered -32002 at connect (a connection limit) and closed.
        var refused = 0
        /// Answered -32600 because the line was not complete in time, and closed.
        var cut = 0
        /// Closed without an answer this tool recognised.
        var closed = 0
        var bytesSent = 0
    }

    static func run(socket: String, connections: Int, intervalMillis: Int, seconds: Int,
                    log: (String) -> Void) -> Counts {
        var lim = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim) == 0, lim.rlim_cur < rlim_t(connections + 64) {
            lim.rlim_cur = min(rlim_t(connections + 64), lim.rlim_max)
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim)
        }
        var counts = Counts()
        var fds = [Int32](repeating: -1, count: connections)
        var pending = [[UInt8]](repeating: [], count: connections)
        let start = now()
        let end = start &+ UInt64(seconds) &* 1_000_000_000
        var nextTick = start
        var nextReport = start &+ 1_000_000_000
        let byte: [UInt8] = [UInt8(ascii: "x")]
        while now() < end {
            if now() >= nextTick {
                // Each interval, reconnect whatever was closed, as the attacker would.
                for i in fds.indices where fds[i] < 0 {
                    guard let fd = connectNonBlocking(socket) else { break }
                    fds[i] = fd
                    pending[i] = []
                    counts.connects += 1
                }
                for i in fds.indices where fds[i] >= 0 {
                    let n = byte.withUnsafeBytes { send(fds[i], $0.baseAddress, 1, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                    if n == 1 { counts.bytesSent += 1 }
                }
                nextTick = nextTick &+ UInt64(intervalMillis) &* 1_000_000
            }
            // Read whatever the daemon said, without waiting past the next tick.
            var pfds = fds.filter { $0 >= 0 }.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let wait = max(0, min(Int(Int64(bitPattern: nextTick &- now()) / 1_000_000), 100))
            _ = poll(&pfds, nfds_t(pfds.count), Int32(wait))
            for p in pfds where p.revents != 0 {
                guard let i = fds.firstIndex(of: p.fd) else { continue }
                var buf = [UInt8](repeating: 0, count: 4096)
                let n = buf.withUnsafeMutableBytes { recv(p.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n > 0 {
                    pending[i] += buf[..<n]
                    // Every answer the daemon gives such a line comes right before it closes.
                    guard pending[i].contains(0x0A) else { continue }
                    classify(pending[i], &counts)
                } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                    continue
                } else if !pending[i].isEmpty {
                    classify(pending[i], &counts)
                } else {
                    counts.closed += 1
                }
                close(p.fd)
                fds[i] = -1
            }
            if now() >= nextReport {
                let open = fds.filter { $0 >= 0 }.count
                log("t=\((now() - start) / 1_000_000_000)s open=\(open) connects=\(counts.connects) refused=\(counts.refused) cut=\(counts.cut) closed=\(counts.closed) bytes=\(counts.bytesSent)")
                nextReport = nextReport &+ 1_000_000_000
            }
        }
        for fd in fds where fd >= 0 { close(fd) }
        return counts
    }

    private static func classify(_ reply: [UInt8], _ counts: inout Counts) {
        let line = reply.prefix { $0 != 0x0A }
        let code = (try? JSON.parse(Array(line)))?["error"]?["code"]?.intValue
        switch code {
        case RPCError.overloadedCode?: counts.refused += 1
        case RPCError.invalidRequestCode?: counts.cut += 1
        default: counts.closed += 1
        }
    }

    /// nil when the daemon's listen queue is full or the socket is gone: try again next round.
    private static func connectNonBlocking(_ path: String) -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { close(fd); return nil }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { close(fd); return nil }
        return fd
    }

    private static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}

extension BenchCommand {
    /// `custos bench trickle --socket PATH [--connections N] [--interval-ms MS] [--seconds S]`.
    static func runTrickle(_ args: ParsedArguments) throws -> Int32 {
        let socket = args.value("socket") ?? CallCommand.defaultSocket()
        let connections = try args.int("connections", default: 1_100)
        let interval = try args.int("interval-ms", default: 1_000)
        let seconds = try args.int("seconds", default: 30)
        guard connections > 0, interval > 0, seconds > 0 else {
            throw UsageError(message: "--connections, --interval-ms and --seconds must be positive")
        }
        print("trickle: \(connections) connections to \(socket), one byte each every \(interval) ms, for \(seconds) s (uid \(getuid()))")
        let c = Trickle.run(socket: socket, connections: connections, intervalMillis: interval, seconds: seconds) { line in
            print(line)
            fflush(nil)
        }
        print("done: connects=\(c.connects) refused=\(c.refused) cut=\(c.cut) closed=\(c.closed) bytes=\(c.bytesSent)")
        return 0
    }
}
