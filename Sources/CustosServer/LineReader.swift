import Glibc

/// Splits a byte stream into LF-terminated lines with one `read` per buffer fill, handing out
/// lines as views into its own buffer (no copy). The buffer starts small and grows only as far
/// as the line limit, so idle connections stay cheap.
final class LineReader {
    enum Scan {
        /// A complete line without its LF (and without a CR before it). Valid until the next `fill`.
        case line(UnsafeRawBufferPointer)
        /// The line in progress already exceeds the limit; the stream cannot be resynchronised cheaply.
        case oversize
        /// No complete line is buffered; call `fill`.
        case needMore
    }

    enum Fill {
        case data
        case eof
        case timedOut
        case failed(Int32)
    }

    let fd: Int32
    let maxLine: Int
    private var buffer: UnsafeMutableRawPointer
    private var capacity: Int
    private var start = 0      // first byte of the line in progress
    private var end = 0        // one past the last byte read
    private var scanned = 0    // bytes from `start` already known to hold no LF

    init(fd: Int32, maxLine: Int, initialCapacity: Int = 16 * 1024) {
        self.fd = fd
        self.maxLine = max(1, maxLine)
        // +1 so a line of exactly maxLine bytes plus its LF fits.
        self.capacity = min(max(initialCapacity, 64), self.maxLine + 1)
        self.buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit { buffer.deallocate() }

    /// Bytes buffered after the last complete line.
    var pending: Int { end - start }

    @inline(__always) func next() -> Scan {
        let from = start + scanned
        let avail = end - from
        if avail > 0, let hit = memchr(buffer + from, 0x0A, avail) {
            let lf = hit - buffer
            var len = lf - start
            if len > maxLine { return .oversize }
            let base = buffer + start
            if len > 0 && base.load(fromByteOffset: len - 1, as: UInt8.self) == 0x0D { len -= 1 }
            start = lf + 1
            scanned = 0
            return .line(UnsafeRawBufferPointer(start: base, count: len))
        }
        scanned = end - start
        return scanned > maxLine ? .oversize : .needMore
    }

    /// The unterminated bytes left at end of stream, treated as a last line.
    func takeRemainder() -> UnsafeRawBufferPointer? {
        guard end > start, end - start <= maxLine else { return nil }
        let r = UnsafeRawBufferPointer(start: buffer + start, count: end - start)
        start = end
        scanned = 0
        return r
    }

    /// One blocking read. Timeouts come from SO_RCVTIMEO on the socket.
    func fill() -> Fill {
        if start == end {
            start = 0; end = 0; scanned = 0
        } else if start > 0 && capacity - end < 4096 {
            // The tail of a partial line is short; moving it beats many tiny reads.
            memmove(buffer, buffer + start, end - start)
            end -= start
            start = 0
        }
        if end == capacity { grow() }
        // Only reachable if a caller ignored `.oversize`; a zero-byte read would look like EOF.
        if end == capacity { return .failed(ENOBUFS) }
        while true {
            let n = read(fd, buffer + end, capacity - end)
            if n > 0 { end += n; return .data }
            if n == 0 { return .eof }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .timedOut }
            return .failed(e)
        }
    }

    /// `fill` without sleeping: polls the socket until `deadline` (monotonic ns) and returns
    /// nil if nothing arrived by then, so the caller can block as usual. Reads into the buffer
    /// exactly as `fill` does; only called between lines (nothing pending).
    func fill(spinningUntil deadline: UInt64) -> Fill? {
        if start == end { start = 0; end = 0; scanned = 0 }
        if end == capacity { return nil }
        while true {
            let n = recv(fd, buffer + end, capacity - end, Int32(MSG_DONTWAIT))
            if n > 0 { end += n; return .data }
            if n == 0 { return .eof }
            let e = errno
            // Anything but "nothing yet" is left to the blocking read, which reports it.
            guard e == EAGAIN || e == EWOULDBLOCK || e == EINTR else { return nil }
            if monotonicNanos() >= deadline { return nil }
        }
    }

    private func grow() {
        let newCap = min(capacity * 2, maxLine + 1)
        guard newCap > capacity else { return }
        let nb = UnsafeMutableRawPointer.allocate(byteCount: newCap, alignment: 16)
        nb.copyMemory(from: buffer + start, byteCount: end - start)
        buffer.deallocate()
        buffer = nb
        end -= start
        start = 0
        capacity = newCap
    }
}
