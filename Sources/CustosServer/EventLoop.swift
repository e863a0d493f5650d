import CEpoll
import CustosJSON
import Glibc
import Synchronization

/// One thread serving many connections: an edge-triggered epoll set, the connections' state,
/// and the timers (idle, line, write, linger) checked by a periodic sweep.
///
/// Run to completion: when a connection is readable, this thread reads it, answers every
/// complete line in order and writes the replies, with no hand-off to another thread. Replies
/// that wait for the audit log's sync are parked, not waited for: the committer wakes the loop
/// (`waker`, an eventfd) once per commit, and the loop then sends what became durable.
///
/// Everything but `inbox` and `waker` belongs to the loop's thread.
final class EventLoop<Service: LineService>: @unchecked Sendable {
    let transport: Transport<Service>
    let service: Service
    let epfd: Int32
    let waker: CommitWaker
    /// Connections admitted by the accept thread, not yet taken by the loop.
    private let inbox = Mutex<[(fd: Int32, context: CallContext)]>([])

    private var connections: [Int32: Connection<Service>] = [:]
    /// Connections whose replies wait for a commit: asked again at each wake-up.
    private var parked: [Connection<Service>] = []
    /// Connections that used their turn while input remained: served again after the others.
    private var runnable: [Connection<Service>] = []
    private var shutForStop = false
    private var cut = false
    /// Where lingering connections' input is thrown away.
    private var scratch = [UInt8](repeating: 0, count: 16 * 1024)

    let flushAt = Transport<Service>.flushThreshold
    let idleNanos: UInt64
    let lineNanos: UInt64
    let writeNanos: UInt64
    /// How often timers are checked: an eighth of the shortest timeout, within 5-250 ms, so a
    /// timeout fires at most that late and an idle loop wakes a few times a second at most.
    let sweepNanos: UInt64
    /// How long a connection closed after an error line keeps discarding input so the client
    /// can read the error (see `discardQueuedInput`).
    static var lingerNanos: UInt64 { 200_000_000 }
    /// Reads one connection may do in a row before the others get their turn.
    static var readBudget: Int { 16 }

    init?(transport: Transport<Service>) {
        let ep = custos_epoll_create()
        guard ep >= 0 else { return nil }
        let efd = custos_eventfd()
        guard efd >= 0 else {
            let e = errno
            close(ep)
            errno = e
            return nil
        }
        guard custos_epoll_add_level(ep, efd) == 0 else {
            let e = errno
            close(ep); close(efd)
            errno = e
            return nil
        }
        self.transport = transport
        self.service = transport.service
        self.epfd = ep
        self.waker = CommitWaker(fd: efd)
        let c = transport.config
        idleNanos = c.idleTimeout.totalNanoseconds
        lineNanos = c.lineTimeout.totalNanoseconds
        writeNanos = c.writeTimeout.totalNanoseconds
        sweepNanos = min(max(min(idleNanos, lineNanos, writeNanos) / 8, 5_000_000), 250_000_000)
    }

    deinit { close(epfd) }

    /// From the accept thread: the loop takes the connection at its next wake-up.
    func adopt(fd: Int32, context: CallContext) {
        inbox.withLock { $0.append((fd, context)) }
        wake()
    }

    func wake() { waker.wake() }

    func run() {
        var ready = [Int32](repeating: -1, count: 64)
        var nextSweep = monotonicNanos() &+ sweepNanos
        while true {
            var timeout: Int32 = -1
            if !runnable.isEmpty {
                timeout = 0
            } else if !connections.isEmpty {
                let now = monotonicNanos()
                timeout = now >= nextSweep ? 0 : Int32(clamping: (nextSweep - now + 999_999) / 1_000_000)
            }
            let n = ready.withUnsafeMutableBufferPointer { custos_epoll_wait(epfd, $0.baseAddress, 64, timeout) }
            let now = monotonicNanos()
            var woken = false
            for i in 0..<max(0, Int(n)) {
                let fd = ready[i]
                if fd == waker.fd {
                    woken = true
                } else if let c = connections[fd] {
                    drive(c, now)
                }
            }
            if woken { takeWakeUp(now) }
            if !runnable.isEmpty {
                let turn = runnable
                runnable.removeAll(keepingCapacity: true)
                for c in turn {
                    c.queued = false
                    if !c.closed { drive(c, now) }
                }
            }
            if now >= nextSweep {
                sweep(now)
                nextSweep = now &+ sweepNanos
            }
            if transport.stopping.load(ordering: .acquiring) && transport.acceptDone.load(ordering: .acquiring)
                && connections.isEmpty && inbox.withLock({ $0.isEmpty }) {
                return
            }
        }
    }

    /// New connections, commits that completed, and stop requests all come through the eventfd.
    private func takeWakeUp(_ now: UInt64) {
        var count: UInt64 = 0
        _ = read(waker.fd, &count, 8)
        let arrived = inbox.withLock { list in
            defer { list.removeAll(keepingCapacity: true) }
            return list
        }
        let stopping = transport.stopping.load(ordering: .acquiring)
        for (fd, context) in arrived {
            let c = Connection<Service>(fd: fd, context: context, session: service.openSession(context),
                               maxLine: transport.config.maxLineBytes, now: now)
            connections[fd] = c
            if custos_epoll_add(epfd, fd) != 0 {
                finish(c)
                continue
            }
            if stopping { shutdown(fd, Int32(SHUT_RD)) }
            drive(c, now)
        }
        if !parked.isEmpty {
            let waiting = parked
            parked.removeAll(keepingCapacity: true)
            for c in waiting {
                c.parked = false
                if !c.closed { drive(c, now) }
            }
        }
        if stopping && !shutForStop {
            shutForStop = true
            for c in Array(connections.values) {
                shutdown(c.fd, Int32(SHUT_RD))
                if !c.parked { drive(c, now) }
            }
        }
        if transport.forced.load(ordering: .acquiring) && !cut {
            cut = true
            for c in Array(connections.values) {
                shutdown(c.fd, Int32(SHUT_RDWR))
                finish(c)
            }
        }
    }

    /// Timeouts: a client that does not read its replies (write), a line that trickles in
    /// (line), a connection that sends nothing (idle), and the end of a linger.
    private func sweep(_ now: UInt64) {
        guard !connections.isEmpty else { return }
        for c in Array(connections.values) where !c.closed {
            if case .lingering(let until) = c.ending {
                if now >= until { finish(c) }
                continue
            }
            if !c.out.bytes.isEmpty {
                // Parked replies wait for the commit, which ends in a wake-up either way.
                if c.settled && c.writeStalledSince != 0 && now &- c.writeStalledSince >= writeNanos { finish(c) }
                continue
            }
            if c.reader.pending > 0 && c.lineDeadline != 0 && now >= c.lineDeadline {
                c.out.bytes.append(contentsOf: transport.lineTimeoutLine)
                c.ending = .afterFlush(linger: true)
                drive(c, now)
                continue
            }
            if now &- c.lastActivity >= idleNanos { finish(c) }
        }
    }

    /// Closes the descriptor (epoll forgets it) and frees the slot. Parked or queued entries
    /// that still name the connection see `closed` and skip it.
    func finish(_ c: Connection<Service>) {
        guard !c.closed else { return }
        c.closed = true
        connections[c.fd] = nil
        close(c.fd)
        transport.released(uid: c.context.uid)
    }

    func park(_ c: Connection<Service>) {
        guard !c.parked else { return }
        c.parked = true
        parked.append(c)
    }

    func requeue(_ c: Connection<Service>) {
        guard !c.queued else { return }
        c.queued = true
        runnable.append(c)
    }

    /// Throws away what a lingering connection sends; true once it hung up (or failed).
    func discardInput(_ fd: Int32) -> Bool {
        while true {
            let n = scratch.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 { continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return false }
            return true
        }
    }
}
