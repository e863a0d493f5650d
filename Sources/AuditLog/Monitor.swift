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

/// One appender sleeping in `AuditWriter.waitDurable` until its entry is durable.
///
/// A semaphore of its own, so the writer wakes exactly the appenders a sync covered, and a flag
/// the waker sets before posting, so the woken appender knows its entry is durable without
/// retaking the writer's lock. The waker sets `durable` under the lock and `sem_post` publishes
/// it to `sem_wait` (each a full barrier in glibc).
final class DurableWaiter: @unchecked Sendable {
    let index: UInt64
    var durable = false
    private let semaphore = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)

    init(index: UInt64) {
        self.index = index
        sem_init(semaphore, 0, 0)
    }

    deinit {
        sem_destroy(semaphore)
        semaphore.deallocate()
    }

    /// Posted once, by whoever removes it from the writer's list.
    func wake() { sem_post(semaphore) }

    func sleep() {
        while sem_wait(semaphore) != 0 && errno == EINTR {}
    }
}
