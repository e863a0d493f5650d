import CustosJSON
import Dispatch
import Glibc
import Synchronization

/// What a transport does with each line. Generic rather than an existential so the per-line
/// call is direct; the JSON-RPC server and the benchmark's echo server share the transport.
protocol LineService: Sendable {
    associatedtype Session
    func openSession(_ context: CallContext) -> Session
    /// Appends zero or more complete reply lines (each ending in LF) to `out`. A line whose
    /// replies can grow (a batch) hands them to `flush` whenever `out` passes
    /// `Transport.flushThreshold`, so a connection never holds more than that plus one reply;
    /// `flush` blocks until the client reads (or the write timeout passes) and returns false
    /// once the connection is lost. Returns false when it stopped because `flush` failed.
    func handle(line: UnsafeRawBufferPointer, session: inout Session, out: inout JSONWriter,
                flush: (inout Session, inout JSONWriter) -> Bool) -> Bool
    /// Called before `out` is sent: the last chance to wait for what the answers depend on
    /// (the audit log's sync) or to replace them.
    func settle(session: inout Session, out: inout JSONWriter)
}

extension LineService {
    func settle(session: inout Session, out: inout JSONWriter) {}
}

/// Settings shared by every server built on the transport.
public struct ServerConfiguration: Sendable {
    public var socketPath: String
    /// Applied before the socket accepts connections.
    public var socketMode: mode_t = 0o660
    /// When set, the socket file's group; pair with mode 0660 to admit one group of callers.
    public var socketGroup: gid_t? = nil
    /// Connections beyond this get one -32002 line and are closed.
    public var maxConnections: Int = 1024
    /// Connections one uid may hold at once (privileged callers aside); nil: no such limit.
    public var maxConnectionsPerUID: Int? = nil
    /// Of `maxConnections`, slots only privileged callers may take, so an operator can still
    /// reach the server while others hold every other slot.
    public var reservedConnections: Int = 0
    /// Who is privileged (see the two limits above), asked once per connection at accept.
    public var isPrivileged: @Sendable (PeerCredentials) -> Bool = { _ in false }
    public var maxLineBytes: Int = 1 << 20
    /// Requests one line may carry: the elements of a batch array, each weighted by the
    /// method (see `MethodTable.register(_:weight:_:)`); nil: no limit.
    public var batchLimit: Int? = nil
    /// A connection that sends nothing for this long between lines is closed.
    public var idleTimeout: Duration = .seconds(60)
    /// A line must be complete (its LF received) this long after its first byte, however
    /// steadily its bytes trickle in; then one -32600 line and the connection is closed.
    public var lineTimeout: Duration = .seconds(10)
    /// A client that does not read its responses for this long is disconnected.
    public var writeTimeout: Duration = .seconds(10)
    public var backlog: Int32 = 1024
    /// After answering, how long a connection polls for the next request before it sleeps in
    /// `read`. On a virtual machine whose idle CPUs halt, a sleeping thread's wake-up costs
    /// more than deciding a request, so a client that sends its next request at once gets it
    /// answered without one. Only one connection polls at a time, and only while fewer
    /// connections are open than the machine has CPUs, so polling never takes a CPU that
    /// other connections could use; an idle connection costs at most this much CPU per answer.
    /// Zero: always sleep (docs/operations.md, `socket.spin_microseconds`).
    public var spinBeforeSleep: Duration = .microseconds(50)
    /// How long `stop` waits for in-flight requests before cutting connections.
    public var drainTimeout: Duration = .seconds(10)
    /// A listening socket inherited from the service manager (socket activation): used instead
    /// of binding `socketPath`, which then only names it. Its file belongs to the service
    /// manager, so `stop` leaves it in place; mode and group are the socket unit's.
    public var inheritedListener: Int32? = nil

    public init(socketPath: String) { self.socketPath = socketPath }
}

final class Transport<Service: LineService>: Sendable {
    let config: ServerConfiguration
    let service: Service

    private struct State {
        var started = false
        var stopping = false
        var listener: Socket.Listener?
        var wakeRead: Int32 = -1
        var wakeWrite: Int32 = -1
        /// Open connections by id, so stop can wake their readers.
        var connections: [UInt64: Int32] = [:]
    }

    /// Who holds the connection slots; checked and taken in one step at accept.
    private struct Slots {
        var total = 0
        var byUID: [UInt32: Int] = [:]
    }

    private let state = Mutex(State())
    private let slots = Mutex(Slots())
    private let active = Atomic<Int>(0)
    /// Connections polling for their next request (see `spinBeforeSleep`): 0 or 1.
    private let spinners = Atomic<Int>(0)
    private let nextID = Atomic<UInt64>(1)
    /// Holds the accept thread and every connection thread; empty means fully stopped.
    private let running = DispatchGroup()
    private let overloadedLine: [UInt8]
    private let oversizeLine: [UInt8]
    private let lineTimeoutLine: [UInt8]

    /// Replies wait in the connection's buffer until it holds this much (or the input is
    /// drained); a batch's replies are sent in pieces of about this size.
    static var flushThreshold: Int { 256 * 1024 }

    init(config: ServerConfiguration, service: Service) {
        self.config = config
        self.service = service
        overloadedLine = RPCResponse.errorLine(.overloaded(maxConnections: config.maxConnections))
        oversizeLine = RPCResponse.errorLine(.invalidRequest(
            "line longer than \(config.maxLineBytes) bytes; the connection is closed, send smaller messages"))
        lineTimeoutLine = RPCResponse.errorLine(.invalidRequest(
            "line not completed within \(config.lineTimeout.wholeSeconds) seconds of its first byte; the connection is closed, send each message in one go"))
    }

    var activeConnections: Int { active.load(ordering: .relaxed) }

    func start() throws(SocketError) {
        let alreadyStarted = state.withLock { s in
            if s.started { return true }
            s.started = true
            return false
        }
        precondition(!alreadyStarted, "server started twice")
        raiseDescriptorLimit(toAtLeast: config.maxConnections + 64)
        let listener: Socket.Listener
        do {
            if let fd = config.inheritedListener {
                listener = try Socket.adopt(fd: fd, path: config.socketPath)
            } else {
                listener = try Socket.listen(path: config.socketPath, mode: config.socketMode,
                                             group: config.socketGroup, backlog: config.backlog)
            }
        } catch {
            state.withLock { $0.started = false }
            throw error
        }
        // Non-blocking so a client that vanishes between poll and accept cannot stall the loop.
        _ = fcntl(listener.fd, F_SETFL, fcntl(listener.fd, F_GETFL) | O_NONBLOCK)
        var fds: [Int32] = [-1, -1]
        // Glibc's module does not export pipe2/accept4 (GNU extensions), hence the fcntl calls.
        guard pipe(&fds) == 0 else {
            let e = errno
            close(listener.fd)
            Socket.removeIfOurs(path: config.socketPath, listener: listener)
            state.withLock { $0.started = false }
            throw .system(call: "pipe", path: config.socketPath, errno: e)
        }
        for f in fds { _ = fcntl(f, F_SETFD, FD_CLOEXEC) }
        let wakeRead = fds[0]
        state.withLock { s in
            s.listener = listener
            s.wakeRead = fds[0]
            s.wakeWrite = fds[1]
        }
        running.enter()
        if !spawnThread({ self.acceptLoop(listener: listener, wake: wakeRead) }) {
            running.leave()
            close(listener.fd)
            Socket.removeIfOurs(path: config.socketPath, listener: listener)
            state.withLock { s in
                close(s.wakeRead); close(s.wakeWrite)
                s = State()
            }
            throw .system(call: "pthread_create", path: config.socketPath, errno: EAGAIN)
        }
    }

    /// After `start`: blocks until `stop` has finished draining.
    func wait() { running.wait() }

    /// Stops accepting, removes the socket file, lets every connection answer what it has
    /// already received, then returns. Safe to call more than once and from any thread.
    func stop() {
        let wakeWrite: Int32? = state.withLock { s in
            guard s.started, !s.stopping else { return nil }
            s.stopping = true
            // SHUT_RD makes a blocked read return end-of-file once the requests already queued
            // are consumed, and makes the client's further writes fail: nothing new gets in.
            for fd in s.connections.values { shutdown(fd, Int32(SHUT_RD)) }
            return s.wakeWrite
        }
        if let w = wakeWrite {
            var b: UInt8 = 1
            _ = write(w, &b, 1)
        }
        if running.wait(timeout: .now() + config.drainTimeout.dispatchInterval) == .timedOut {
            state.withLock { s in
                for fd in s.connections.values { shutdown(fd, Int32(SHUT_RDWR)) }
            }
            running.wait()
        }
        state.withLock { s in
            if s.wakeRead >= 0 { close(s.wakeRead); s.wakeRead = -1 }
            if s.wakeWrite >= 0 { close(s.wakeWrite); s.wakeWrite = -1 }
        }
    }

    private func acceptLoop(listener: Socket.Listener, wake: Int32) {
        defer {
            close(listener.fd)
            Socket.removeIfOurs(path: config.socketPath, listener: listener)
            running.leave()
        }
        var pfds = [pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0),
                    pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
        while true {
            pfds[0].revents = 0
            pfds[1].revents = 0
            let n = poll(&pfds, 2, -1)
            if n < 0 && errno == EINTR { continue }
            if pfds[1].revents != 0 || state.withLock({ $0.stopping }) { return }
            guard pfds[0].revents & Int16(POLLIN) != 0 else { continue }
            let fd = accept(listener.fd, nil, nil)
            if fd < 0 {
                switch errno {
                case EINTR, EAGAIN, ECONNABORTED: continue
                default:
                    // Out of descriptors or memory: back off instead of spinning on poll.
                    usleep(10_000)
                    continue
                }
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            admit(fd)
        }
    }

    private func admit(_ fd: Int32) {
        guard let cred = PeerCredentials.of(socket: fd) else {
            close(fd)
            return
        }
        if let refusal = takeSlot(cred) {
            refuse(fd, refusal)
            return
        }
        active.add(1, ordering: .relaxed)
        Socket.setTimeout(fd, option: SO_RCVTIMEO, config.idleTimeout)
        Socket.setTimeout(fd, option: SO_SNDTIMEO, config.writeTimeout)
        let id = nextID.add(1, ordering: .relaxed).oldValue
        state.withLock { s in
            s.connections[id] = fd
            if s.stopping { shutdown(fd, Int32(SHUT_RD)) }
        }
        let context = CallContext(uid: cred.uid, gid: cred.gid, pid: cred.pid, connectionID: id, groups: cred.groups)
        running.enter()
        if !spawnThread({ self.serve(fd: fd, context: context) }) {
            finish(fd: fd, id: id, uid: cred.uid)
        }
    }

    /// Takes a slot for the caller, or returns the line that refuses it: every caller is
    /// bound by `maxConnections`; others also leave the reserved slots free and stay within
    /// their uid's share.
    private func takeSlot(_ cred: PeerCredentials) -> [UInt8]? {
        let privileged = config.isPrivileged(cred)
        return slots.withLock { s -> [UInt8]? in
            if s.total >= config.maxConnections { return overloadedLine }
            if !privileged {
                if s.total >= config.maxConnections - config.reservedConnections { return overloadedLine }
                if let perUID = config.maxConnectionsPerUID, s.byUID[cred.uid, default: 0] >= perUID {
                    return RPCResponse.errorLine(.overloaded(uid: cred.uid, maxConnectionsPerUID: perUID))
                }
            }
            s.total += 1
            s.byUID[cred.uid, default: 0] += 1
            return nil
        }
    }

    private func releaseSlot(uid: UInt32) {
        slots.withLock { s in
            s.total -= 1
            let left = s.byUID[uid, default: 1] - 1
            s.byUID[uid] = left > 0 ? left : nil
        }
    }

    /// One error line, then close, on the accept thread: bounded by a short send timeout and
    /// by discarding only what is already queued.
    private func refuse(_ fd: Int32, _ line: [UInt8]) {
        Socket.setTimeout(fd, option: SO_SNDTIMEO, .milliseconds(100))
        _ = Socket.writeAll(fd, line)
        shutdown(fd, Int32(SHUT_WR))
        discardQueuedInput(fd)
        close(fd)
    }

    private func finish(fd: Int32, id: UInt64, uid: UInt32) {
        // Deregister before closing so stop never shuts down a reused descriptor number.
        state.withLock { s in
            s.connections[id] = nil
            close(fd)
        }
        releaseSlot(uid: uid)
        active.subtract(1, ordering: .relaxed)
        running.leave()
    }

    /// One connection: read, answer in order, and write replies in one send per drained read
    /// buffer, so pipelined requests share syscalls while a lone request is answered at once.
    private func serve(fd: Int32, context: CallContext) {
        defer { finish(fd: fd, id: context.connectionID, uid: context.uid) }
        let reader = LineReader(fd: fd, maxLine: config.maxLineBytes)
        var out = JSONWriter(capacity: 4096)
        var session = service.openSession(context)
        let flushAt = Self.flushThreshold
        let lineNanos = config.lineTimeout.totalNanoseconds
        /// When the line in progress must be complete (monotonic ns); 0 while none is.
        var lineDeadline: UInt64 = 0
        /// Whether SO_RCVTIMEO is shortened to the line's deadline rather than the idle timeout.
        var shortened = false
        let spinNanos = config.spinBeforeSleep.totalNanoseconds

        let send: (inout Service.Session, inout JSONWriter) -> Bool = { session, out in
            self.service.settle(session: &session, out: &out)
            if out.bytes.isEmpty { return true }
            let ok = out.bytes.withUnsafeBytes { Socket.writeAll(fd, $0) }
            // Keep the buffer for the next batch, unless one huge reply inflated it.
            out.bytes.removeAll(keepingCapacity: out.bytes.capacity <= 1 << 20)
            return ok
        }
        func flush() -> Bool { send(&session, &out) }

        while true {
            scan: while true {
                switch reader.next() {
                case .line(let line):
                    lineDeadline = 0
                    if line.count > 0 && !service.handle(line: line, session: &session, out: &out, flush: send) { return }
                    if out.bytes.count >= flushAt && !flush() { return }
                case .oversize:
                    out.bytes.append(contentsOf: oversizeLine)
                    if flush() { lingerClose(fd) }
                    return
                case .needMore:
                    break scan
                }
            }
            guard flush() else { return }
            // A line in progress must be complete by its deadline however its bytes trickle in;
            // between lines only the idle timeout applies. The socket option is changed only
            // while a line is incomplete, so a client sending whole lines pays nothing for this.
            if reader.pending > 0 {
                let now = monotonicNanos()
                if lineDeadline == 0 { lineDeadline = now &+ lineNanos }
                guard now < lineDeadline else {
                    out.bytes.append(contentsOf: lineTimeoutLine)
                    if flush() { lingerClose(fd) }
                    return
                }
                let wait = min(lineDeadline - now, config.idleTimeout.totalNanoseconds)
                Socket.setTimeout(fd, option: SO_RCVTIMEO, .nanoseconds(Int64(clamping: wait)))
                shortened = true
            } else if shortened {
                Socket.setTimeout(fd, option: SO_RCVTIMEO, config.idleTimeout)
                shortened = false
            }
            switch spinForNextLine(reader, nanos: spinNanos) ?? reader.fill() {
            case .data:
                continue
            case .eof:
                // A last request without LF still gets its answer (e.g. `printf '{...}' | nc -U`).
                if let last = reader.takeRemainder(), last.count > 0 {
                    _ = service.handle(line: last, session: &session, out: &out, flush: send)
                    _ = flush()
                } else if reader.pending > 0 {
                    out.bytes.append(contentsOf: oversizeLine)
                    if flush() { lingerClose(fd) }
                }
                return
            case .timedOut:
                if lineDeadline != 0 && monotonicNanos() >= lineDeadline {
                    out.bytes.append(contentsOf: lineTimeoutLine)
                    if flush() { lingerClose(fd) }
                }
                return
            case .failed:
                return
            }
        }
    }
}

/// CPUs online when the process started (a polling connection must leave one to the others).
private let onlineCPUs = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))

extension Transport {
    /// Polls for the next request instead of sleeping, when this connection may (see
    /// `ServerConfiguration.spinBeforeSleep`); nil: sleep in `fill` as usual.
    @inline(__always)
    fileprivate func spinForNextLine(_ reader: LineReader, nanos: UInt64) -> LineReader.Fill? {
        guard nanos > 0, reader.pending == 0, active.load(ordering: .relaxed) < onlineCPUs,
              spinners.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged else { return nil }
        defer { spinners.store(0, ordering: .releasing) }
        return reader.fill(spinningUntil: monotonicNanos() &+ nanos)
    }
}

/// Each connection holds a descriptor, and Debian's default soft limit (1024) is below a
/// useful connection limit; the hard limit is usually far higher, so ask for what we need.
func raiseDescriptorLimit(toAtLeast wanted: Int) {
    var lim = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim) == 0 else { return }
    let want = rlim_t(clamping: wanted)
    guard lim.rlim_cur < want else { return }
    lim.rlim_cur = min(want, lim.rlim_max)
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim)
}

/// Closing a Unix socket with unread input makes the peer's reads fail with ECONNRESET, which
/// can hide the error line just sent. So: signal end-of-stream, then discard what the client is
/// still sending, for a short while, so it can read the error before the close.
func lingerClose(_ fd: Int32) {
    shutdown(fd, Int32(SHUT_WR))
    Socket.setTimeout(fd, option: SO_RCVTIMEO, .milliseconds(100))
    var scratch = [UInt8](repeating: 0, count: 64 * 1024)
    let deadline = monotonicNanos() &+ 200_000_000
    while monotonicNanos() < deadline {
        let n = scratch.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n > 0 || (n < 0 && errno == EINTR) { continue }
        return
    }
}

/// Drops input already queued, without waiting, before a close (see `lingerClose`).
func discardQueuedInput(_ fd: Int32) {
    var scratch = [UInt8](repeating: 0, count: 16 * 1024)
    while scratch.withUnsafeMutableBytes({ recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }) > 0 {}
}

extension Duration {
    /// Whole nanoseconds, saturating (a duration beyond ~292 years is "forever").
    var totalNanoseconds: UInt64 {
        let (s, a) = components
        guard s >= 0 else { return 0 }
        let ns = UInt64(s).multipliedReportingOverflow(by: 1_000_000_000)
        if ns.overflow { return .max }
        let total = ns.partialValue.addingReportingOverflow(UInt64(max(0, a / 1_000_000_000)))
        return total.overflow ? .max : total.partialValue
    }

    /// For messages: seconds, rounded up.
    var wholeSeconds: Int64 {
        let (s, a) = components
        return a > 0 ? s &+ 1 : s
    }

    var dispatchInterval: DispatchTimeInterval {
        let (s, a) = components
        let ns = s.multipliedReportingOverflow(by: 1_000_000_000)
        if ns.overflow { return .never }
        let total = ns.partialValue.addingReportingOverflow(a / 1_000_000_000)
        return total.overflow ? .never : .nanoseconds(Int(total.partialValue))
    }
}
