import Glibc

/// Starts a detached OS thread. Connections get their own thread so a request is read, decided
/// and answered on one thread with no queue hops; the kernel spreads those threads over the cores.
/// The default stack size is kept because handlers (policy evaluation) may recurse deeply.
@discardableResult
func spawnThread(_ body: @escaping @Sendable () -> Void) -> Bool {
    final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    var attr = pthread_attr_t()
    pthread_attr_init(&attr)
    defer { pthread_attr_destroy(&attr) }
    pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
    let box = Unmanaged.passRetained(Box(body))
    var tid = pthread_t()
    let rc = pthread_create(&tid, &attr, { raw in
        let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
        box.body()
        return nil
    }, box.toOpaque())
    if rc != 0 {
        box.release()
        return false
    }
    return true
}

/// Monotonic nanoseconds, for timing without Foundation.
@inline(__always) func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}
