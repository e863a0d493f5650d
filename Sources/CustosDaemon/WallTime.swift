import CivilCalendar
import Glibc

/// A wall-clock instant (Unix epoch), formatted by hand so status replies need no Foundation
/// date formatter.
public struct WallTime: Sendable, Hashable, Comparable {
    public var seconds: Int64
    public var nanoseconds: Int32

    public init(seconds: Int64, nanoseconds: Int32) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public static func now() -> WallTime {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return WallTime(seconds: Int64(ts.tv_sec), nanoseconds: Int32(ts.tv_nsec))
    }

    public var milliseconds: Int64 { seconds &* 1000 &+ Int64(nanoseconds / 1_000_000) }

    public static func < (a: WallTime, b: WallTime) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-24T07:06:27.123Z`.
    public var rfc3339: String {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secOfDay = seconds - days * 86_400
        let (y, m, d) = CivilCalendar.date(days: days)
        var s = ""
        s.reserveCapacity(24)
        func pad(_ v: Int64, _ width: Int) {
            let digits = String(v)
            if digits.count < width { s += String(repeating: "0", count: width - digits.count) }
            s += digits
        }
        pad(y, 4); s += "-"; pad(m, 2); s += "-"; pad(d, 2); s += "T"
        pad(secOfDay / 3600, 2); s += ":"; pad(secOfDay / 60 % 60, 2); s += ":"; pad(secOfDay % 60, 2)
        s += "."; pad(Int64(nanoseconds / 1_000_000), 3); s += "Z"
        return s
    }
}
