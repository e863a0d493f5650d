import CEpoll
import CustosJSON
import Glibc

/// One client connection's state, owned by its event loop's thread: the input buffer (lines
/// are answered in place, as views into it), the replies not yet sent, and the timers.
///
/// Replies go out in request order: while `out` holds anything (replies parked until their
/// commit, or a part the client has not read yet), no further line is answered, so a later
/// reply never overtakes an earlier one and a connection holds at most the flush threshold
/// plus one reply (a batch line hands out its replies in pieces through a blocking flush).
final class Connection<Service: LineService> {
    enum Ending {
        case open
        /// Close once `out` is sent; with `linger`, after reading what the client still sends
        /// for a moment (so it can read the error line first).
        case afterFlush(linger: Bool)
        /// Output shut; input discarded until the client hangs up or `until` passes.
        case lingering(until: UInt64)
    }

    let fd: Int32
    let context: CallContext
    let reader: LineReader
    var session: Service.Session
    var out = JSONWriter(capacity: 4096)
    /// Bytes of `out` already written.
    var sent = 0
    /// Whether `out` was settled (its commit kept) and may be written.
    var settled = false
    var parked = false
    var queued = false
    /// Whether epoll reports output room (armed only while a write is blocked).
    var watchingOutput = false
    var closed = false
    var inputEnded = false
    var ending = Ending.open
    /// When the line in progress must be complete (monotonic ns); 0 while none is.
    var lineDeadline: UInt64 = 0
    /// Last read of input or last completed write: the idle timeout counts from here.
    var lastActivity: UInt64
    /// Since when a write has made no progress (0 while none is blocked).
    var writeStalledSince: UInt64 = 0

    init(fd: Int32, context: CallContext, session: Service.Session, maxLine: Int, now: UInt64) {
        self.fd = fd
        self.context = context
        self.session = session
        self.reader = LineReader(fd: fd, maxLine: maxLine)
        self.lastActivity = now
    }

    enum Write { case done, blocked(progressed: Bool), failed }

    /// Writes what it can of `out` without blocking.
    func writeSome() -> Write {
        var progressed = false
        while sent < out.bytes.count {
            let from = sent
            let n = out.bytes.withUnsafeBytes { b in send(fd, b.baseAddress! + from, b.count - from, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                sent += n
                progressed = true
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return .blocked(progressed: progressed) }
            return .failed
        }
        return .done
    }
}

/// Writes all of `bytes` to a non-blocking socket, waiting for room up to `timeout` each time
/// the socket is full (like SO_SNDTIMEO on a blocking one). False when the client did not read
/// in time or the connection failed.
func writeBlocking(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, timeout: UInt64) -> Bool {
    var at = 0
    while at < bytes.count {
        let n = send(fd, bytes.baseAddress! + at, bytes.count - at, Int32(MSG_NOSIGNAL))
        if n > 0 { at += n; continue }
        if n < 0 && errno == EINTR { continue }
        guard n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) else { return false }
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let ms = Int32(clamping: (timeout + 999_999) / 1_000_000)
        var r: Int32
        repeat { r = poll(&p, 1, ms) } while r < 0 && errno == EINTR
        if r <= 0 { return false }
    }
    return true
}

extension EventLoop {
    /// Advances one connection as far as it can go without blocking: settle and send the
    /// replies in hand, then answer the complete lines buffered, then read more. Returns when
    /// the socket has no more input or no room for output, when replies are parked for a
    /// commit, when the read budget is spent (the connection is queued for another turn), or
    /// when the connection is closed.
    func drive(_ c: Connection<Service>, _ now: UInt64) {
        var budget = Self.readBudget
        while !c.closed {
            if !c.out.bytes.isEmpty {
                if !c.settled {
                    guard service.trySettle(session: &c.session, out: &c.out, wake: waker) else {
                        park(c)
                        return
                    }
                    c.settled = true
                }
                switch c.writeSome() {
                case .done:
                    // Keep the buffer for the next replies, unless one huge reply inflated it.
                    c.out.bytes.removeAll(keepingCapacity: c.out.bytes.capacity <= 1 << 20)
                    c.sent = 0
                    c.settled = false
                    c.writeStalledSince = 0
                    c.lastActivity = now
                    if c.watchingOutput {
                        c.watchingOutput = false
                        _ = custos_epoll_watch_output(epfd, c.fd, 0)
                    }
                case .blocked(let progressed):
                    if progressed || c.writeStalledSince == 0 { c.writeStalledSince = now }
                    // Arming reports room at once if some appeared since the failed send.
                    if !c.watchingOutput {
                        c.watchingOutput = true
                        if custos_epoll_watch_output(epfd, c.fd, 1) != 0 { finish(c) }
                    }
                    return
                case .failed:
                    finish(c)
                    return
                }
            }
            switch c.ending {
            case .open:
                break
            case .afterFlush(let linger):
                guard linger else { finish(c); return }
                shutdown(c.fd, Int32(SHUT_WR))
                c.ending = .lingering(until: now &+ Self.lingerNanos)
                continue
            case .lingering:
                if discardInput(c.fd) { finish(c) }
                return
            }
            // Answer every complete line buffered, unless the replies pass the flush threshold.
            scan: while true {
                switch c.reader.next() {
                case .line(let line):
                    c.lineDeadline = 0
                    if line.count > 0 && !handle(c, line) { finish(c); return }
                    if c.out.bytes.count >= flushAt { break scan }
                case .oversize:
                    c.out.bytes.append(contentsOf: transport.oversizeLine)
                    c.ending = .afterFlush(linger: true)
                    break scan
                case .needMore:
                    break scan
                }
            }
            if !c.out.bytes.isEmpty { continue }
            if c.inputEnded {
                // A last request without LF still gets its answer (e.g. `printf '{...}' | nc -U`).
                if let last = c.reader.takeRemainder(), last.count > 0 {
                    if !handle(c, last) { finish(c); return }
                    c.ending = .afterFlush(linger: false)
                } else if c.reader.pending > 0 {
                    c.out.bytes.append(contentsOf: transport.oversizeLine)
                    c.ending = .afterFlush(linger: true)
                } else {
                    finish(c)
                    return
                }
                continue
            }
            budget -= 1
            if budget == 0 {
                requeue(c)
                return
            }
            switch c.reader.fill() {
            case .data:
                c.lastActivity = now
            case .timedOut:
                // Nothing more to read now. A line in progress must be complete by its
                // deadline however its bytes trickle in (see `sweep`).
                if c.reader.pending > 0 && c.lineDeadline == 0 { c.lineDeadline = now &+ lineNanos }
                return
            case .eof:
                c.inputEnded = true
            case .failed:
                finish(c)
                return
            }
        }
    }

    /// Answers one line. A batch whose replies pass the flush threshold sends them as it goes,
    /// blocking this loop until the client reads them or the write timeout passes: the price
    /// of bounding what a connection holds (see `LineService.handle`).
    @inline(__always)
    private func handle(_ c: Connection<Service>, _ line: UnsafeRawBufferPointer) -> Bool {
        let fd = c.fd
        let timeout = writeNanos
        let service = self.service
        return service.handle(line: line, session: &c.session, out: &c.out) { session, out in
            service.settle(session: &session, out: &out)
            if out.bytes.isEmpty { return true }
            let ok = out.bytes.withUnsafeBytes { writeBlocking(fd, $0, timeout: timeout) }
            out.bytes.removeAll(keepingCapacity: out.bytes.capacity <= 1 << 20)
            return ok
        }
    }
}
