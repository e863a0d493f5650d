import Dispatch
import Glibc
import Synchronization

/// Write end of the self-pipe the C signal handler writes to; -1 until the first watcher.
private let signalPipeWrite = Atomic<Int32>(-1)

/// Delivers SIGTERM/SIGINT/SIGHUP (or any signals) to a closure on a dispatch queue instead of
/// in async-signal context, so the handler may take locks, log, stop the server or reload.
///
/// A real signal handler forwards the signal number through a pipe to a reader thread. Unlike
/// signalfd or sigwait this does not require the signal to be blocked in every thread, which
/// cannot be arranged once other threads (Dispatch, Foundation, the test runner) exist.
/// While a watcher is alive its signals no longer have their default action.
public final class SignalWatcher: Sendable {
    private let id: UInt64
    private let signals: [Int32]

    public init(signals: [Int32], queue: DispatchQueue = DispatchQueue(label: "custos.signals"),
                handler: @escaping @Sendable (Int32) -> Void) {
        self.signals = signals
        self.id = SignalHub.shared.add(signals: signals, queue: queue, handler: handler)
    }

    /// The usual daemon set: terminate on SIGTERM and SIGINT, reload on SIGHUP.
    public convenience init(queue: DispatchQueue = DispatchQueue(label: "custos.signals"),
                            onTerminate: @escaping @Sendable (Int32) -> Void,
                            onReload: @escaping @Sendable () -> Void) {
        self.init(signals: [SIGTERM, SIGINT, SIGHUP], queue: queue) { sig in
            if sig == SIGHUP { onReload() } else { onTerminate(sig) }
        }
    }

    /// Stops watching; signals no other watcher wants get their default action back.
    public func cancel() { SignalHub.shared.remove(id) }

    deinit { cancel() }
}

private final class SignalHub: Sendable {
    static let shared = SignalHub()

    private struct Watcher {
        let signals: [Int32]
        let queue: DispatchQueue
        let handler: @Sendable (Int32) -> Void
    }

    private struct State {
        var nextID: UInt64 = 1
        var watchers: [UInt64: Watcher] = [:]
        var started = false
    }

    private let state = Mutex(State())

    func add(signals: [Int32], queue: DispatchQueue, handler: @escaping @Sendable (Int32) -> Void) -> UInt64 {
        let (id, needsReader) = state.withLock { s in
            let id = s.nextID
            s.nextID += 1
            s.watchers[id] = Watcher(signals: signals, queue: queue, handler: handler)
            defer { s.started = true }
            return (id, !s.started)
        }
        if needsReader { startReader() }
        for sig in signals { install(sig) }
        return id
    }

    func remove(_ id: UInt64) {
        let orphaned: [Int32] = state.withLock { s in
            guard let w = s.watchers.removeValue(forKey: id) else { return [] }
            let still = Set(s.watchers.values.flatMap(\.signals))
            return w.signals.filter { !still.contains($0) }
        }
        for sig in orphaned { signal(sig, SIG_DFL) }
    }

    private func startReader() {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        for f in fds { _ = fcntl(f, F_SETFD, FD_CLOEXEC) }
        // The handler must never block, even if the reader falls behind.
        _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
        let readEnd = fds[0]
        signalPipeWrite.store(fds[1], ordering: .releasing)
        spawnThread {
            var b: UInt8 = 0
            while true {
                let n = read(readEnd, &b, 1)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                self.deliver(Int32(b))
            }
        }
    }

    private func deliver(_ sig: Int32) {
        let targets = state.withLock { s in s.watchers.values.filter { $0.signals.contains(sig) } }
        for w in targets { w.queue.async { w.handler(sig) } }
    }

    private func install(_ sig: Int32) {
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = { sig in
            // Async-signal-safe: an atomic load and write(2) only.
            let fd = signalPipeWrite.load(ordering: .acquiring)
            guard fd >= 0 else { return }
            let saved = errno
            var b = UInt8(truncatingIfNeeded: sig)
            _ = write(fd, &b, 1)
            errno = saved
        }
        sigemptyset(&sa.sa_mask)
        sa.sa_flags = SA_RESTART
        sigaction(sig, &sa, nil)
    }
}
