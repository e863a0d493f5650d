import Glibc

/// How long a test waits for something that must happen (a daemon answering, a reload taking
/// effect, a connection being closed). Generous on purpose: CI shares 2 cores with other work,
/// and a wait that ends as soon as its condition holds costs nothing on a quiet machine.
public let eventuallyTimeout: Duration = .seconds(120)

/// Polls `condition` until it holds or `timeout` has passed, and says whether it held.
///
/// This is the only way tests wait for a condition: a fixed sleep is either too short on a busy
/// machine (a flaky test) or too long on a quiet one. The timeout bounds a test that would
/// otherwise hang; it is never an assertion about speed.
public func eventually(timeout: Duration = eventuallyTimeout, every interval: Duration = .milliseconds(10),
                       _ condition: () throws -> Bool) rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while true {
        if try condition() { return true }
        if clock.now >= deadline { return false }
        pause(interval)
    }
}

/// Polls `produce` until it returns a value or `timeout` has passed.
public func eventually<T>(timeout: Duration = eventuallyTimeout, every interval: Duration = .milliseconds(10),
                          _ produce: () throws -> T?) rethrows -> T? {
    var found: T? = nil
    _ = try eventually(timeout: timeout, every: interval) {
        found = try produce()
        return found != nil
    }
    return found
}

/// Sleeps between polls. Not for waiting on a condition: use `eventually`.
private func pause(_ d: Duration) {
    let (s, atto) = d.components
    var ts = timespec(tv_sec: Int(s), tv_nsec: Int(atto / 1_000_000_000))
    var left = timespec()
    while nanosleep(&ts, &left) != 0 && errno == EINTR { ts = left }
}
