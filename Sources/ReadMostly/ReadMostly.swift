import Glibc

/// A value that every request reads and that is replaced rarely: the policy snapshot, the
/// consent and hold state, cached user names.
///
/// Why not `Synchronization.Mutex`: on Linux it is a priority-inheritance futex, so under
/// contention every unlock hands the lock to a sleeping waiter through the kernel. With more
/// busy connection threads than cores the hand-offs form a convoy that feeds itself: measured
/// with 16 pipelining clients on 2 cores, a quarter of the daemon's CPU went to
/// `Mutex._lockSlow` and throughput fell by two thirds. Readers of a reader-writer lock only
/// bump a shared counter and never wait for each other; writers are rare.
public final class ReadMostly<Value: Sendable>: @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
    // Guarded by `lock`.
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    /// A copy of the current value.
    @inline(__always)
    public func read() -> Value {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return value
    }

    public func replace(_ newValue: Value) {
        pthread_rwlock_wrlock(lock)
        value = newValue
        pthread_rwlock_unlock(lock)
    }

    /// Changes the value under the write lock; readers wait for the change to finish, so keep
    /// the body short (no I/O).
    public func update<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body(&value)
    }
}
