#if canImport(Glibc)
import Glibc
#endif

/// A mutex with two condition variables on the monotonic clock. `Synchronization.Mutex` has no
/// condition variables, and group commit needs appenders to sleep until the writer's fsync.
final class Monitor: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    /// Signalled when there is work for the writer thread.
    private let work = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Broadcast when the writer made entries durable, failed or finished.
    private let progress = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(work, &attr)
        pthread_cond_init(progress, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(work); pthread_cond_destroy(progress); pthread_mutex_destroy(mutex)
        work.deallocate(); progress.deallocate(); mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }

    func signalWork() { pthread_cond_signal(work) }
    func broadcastProgress() { pthread_cond_broadcast(progress) }

    func waitForWork() { pthread_cond_wait(work, mutex) }
    func waitForProgress() { pthread_cond_wait(progress, mutex) }

    /// A condition of one sleeper's own, so the writer can wake exactly the appenders whose
    /// entries a sync covered: a broadcast would also wake every appender still waiting for
    /// the next sync, only for them to take the lock and sleep again.
    func makeCondition() -> UnsafeMutablePointer<pthread_cond_t> {
        let c = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        pthread_cond_init(c, nil)
        return c
    }

    func destroy(_ c: UnsafeMutablePointer<pthread_cond_t>) {
        pthread_cond_destroy(c)
        c.deallocate()
    }

    func wait(on c: UnsafeMutablePointer<pthread_cond_t>) { pthread_cond_wait(c, mutex) }
    func signal(_ c: UnsafeMutablePointer<pthread_cond_t>) { pthread_cond_signal(c) }

    /// Waits for work until the monotonic clock reaches `deadlineMs`.
    func waitForWork(untilMs deadlineMs: Int64) {
        var ts = timespec(tv_sec: Int(deadlineMs / 1000), tv_nsec: Int(deadlineMs % 1000) * 1_000_000)
        _ = pthread_cond_timedwait(work, mutex, &ts)
    }

    static func monotonicMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
