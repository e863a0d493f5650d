import Foundation
import Glibc
import Synchronization

/// Why a folder cannot be watched.
public struct WatchError: Error, Sendable {
    public var message: String
}

/// Calls back when a file whose name ends in `suffix` (not hidden) is written and closed,
/// moved in or out, or deleted in one folder (inotify). A file is reported once it is
/// complete: `IN_CLOSE_WRITE` after a copy, `IN_MOVED_TO` after a rename into the folder, the
/// way to publish a file atomically. Events that arrive together are one callback.
///
/// The watch is set up when the watcher is made and events queue in the kernel until `start`,
/// so nothing that lands in between is missed.
public final class FolderWatcher: Sendable {
    private let fd: Int32
    /// Written to by `stop` to wake the thread: closing a descriptor another thread is blocked
    /// on is not a reliable wake-up on Linux.
    private let wake: (read: Int32, write: Int32)
    private let suffix: [UInt8]
    private let done = Mutex<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let started = Atomic<Bool>(false)

    public init(directory: String, suffix: String) throws(WatchError) {
        let fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else { throw WatchError(message: "inotify_init1: \(String(cString: strerror(errno)))") }
        let mask = UInt32(IN_CLOSE_WRITE) | UInt32(IN_MOVED_TO) | UInt32(IN_MOVED_FROM) | UInt32(IN_DELETE)
        guard inotify_add_watch(fd, directory, mask) >= 0 else {
            let e = errno
            close(fd)
            throw WatchError(message: "inotify_add_watch: \(String(cString: strerror(e)))")
        }
        var p: [Int32] = [0, 0]
        guard pipe(&p) == 0 else {
            close(fd)
            throw WatchError(message: "pipe: \(String(cString: strerror(errno)))")
        }
        for e in p { _ = fcntl(e, F_SETFD, FD_CLOEXEC) }
        self.fd = fd
        wake = (p[0], p[1])
        self.suffix = Array(suffix.utf8)
    }

    deinit {
        close(fd); close(wake.read); close(wake.write)
    }

    /// Starts the thread that calls `onChange`; at most once.
    public func start(onChange: @escaping @Sendable () -> Void) {
        guard !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let t = Thread { [self] in
            run(onChange)
            finished.signal()
        }
        t.name = "custos-bundle-watch"
        t.start()
    }

    /// Stops the thread and waits for it (a callback in progress finishes first).
    public func stop() {
        let first = done.withLock { d -> Bool in
            defer { d = true }
            return !d
        }
        guard first, started.load(ordering: .acquiring) else { return }
        var one: UInt8 = 1
        _ = write(wake.write, &one, 1)
        finished.wait()
    }

    private func run(_ onChange: @Sendable () -> Void) {
        var buf = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
            let n = poll(&fds, 2, -1)
            if n < 0 { if errno == EINTR { continue }; return }
            if fds[1].revents != 0 { return }
            if fds[0].revents & Int16(POLLIN) == 0 { continue }
            // Everything queued now is one change.
            var relevant = false
            while true {
                let r = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if r < 0 && errno == EINTR { continue }
                if r <= 0 { break }
                relevant = relevant || concernsBundle(buf[0..<r])
            }
            if relevant { onChange() }
        }
    }

    /// Whether any event in `events` names a non-hidden file ending in the suffix, or lost the
    /// queue (IN_Q_OVERFLOW: anything may have changed).
    private func concernsBundle(_ events: ArraySlice<UInt8>) -> Bool {
        var i = events.startIndex
        let header = MemoryLayout<inotify_event>.size
        while i + header <= events.endIndex {
            let (mask, len) = events[i..<i + header].withUnsafeBytes { p in
                (p.load(fromByteOffset: 4, as: UInt32.self), Int(p.load(fromByteOffset: 12, as: UInt32.self)))
            }
            let nameStart = i + header
            let nameEnd = min(nameStart + len, events.endIndex)
            let name = events[nameStart..<nameEnd].prefix { $0 != 0 }
            if mask & UInt32(IN_Q_OVERFLOW) != 0 { return true }
            if name.first != UInt8(ascii: "."), name.count > suffix.count, name.reversed().starts(with: suffix.reversed()) { return true }
            i = nameEnd
        }
        return false
    }
}
