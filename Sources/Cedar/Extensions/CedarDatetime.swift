import CivilCalendar
/// Cedar's `datetime`: milliseconds since 1970-01-01T00:00:00Z in an `Int64` (proleptic
/// Gregorian calendar, no leap seconds). Literals cover years 0000 to 9999; arithmetic can go
/// anywhere in the `Int64` range.
public struct CedarDatetime: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let millisecondsSinceEpoch: Int64

    @inline(__always) public init(millisecondsSinceEpoch: Int64) {
        self.millisecondsSinceEpoch = millisecondsSinceEpoch
    }

    @inline(__always) public static func < (a: CedarDatetime, b: CedarDatetime) -> Bool {
        a.millisecondsSinceEpoch < b.millisecondsSinceEpoch
    }

    private static let msPerDay: Int64 = 86_400_000

    // MARK: Methods

    public func offset(_ d: CedarDuration) throws(ExtensionError) -> CedarDatetime {
        let (sum, o) = millisecondsSinceEpoch.addingReportingOverflow(d.milliseconds)
        guard !o else {
            throw .overflow("overflows when adding an offset: \(cedarDisplay)+(\(d.milliseconds)ms)")
        }
        return CedarDatetime(millisecondsSinceEpoch: sum)
    }

    public func durationSince(_ other: CedarDatetime) throws(ExtensionError) -> CedarDuration {
        let (diff, o) = millisecondsSinceEpoch.subtractingReportingOverflow(other.millisecondsSinceEpoch)
        guard !o else {
            throw .overflow(
                "overflows when computing the duration between \(cedarDisplay) and \(other.cedarDisplay)")
        }
        return CedarDuration(milliseconds: diff)
    }

    /// Midnight (UTC) of the day containing this instant. Cedar floors, so an instant before
    /// 1970 moves back to the start of its own day, not forward to the next one; near
    /// Int64.min that start of day is not representable and Cedar reports an overflow.
    public func toDate() throws(ExtensionError) -> CedarDatetime {
        let ms = millisecondsSinceEpoch
        let remainder = ms % Self.msPerDay
        guard remainder < 0 else { return CedarDatetime(millisecondsSinceEpoch: ms - remainder) }
        let (start, o) = (ms / Self.msPerDay - 1).multipliedReportingOverflow(by: Self.msPerDay)
        guard !o else { throw .overflow("overflows when computing the date of \(cedarDisplay)") }
        return CedarDatetime(millisecondsSinceEpoch: start)
    }

    /// Time since midnight (UTC) of the instant's day, always in 0 ..< 24h.
    public func toTime() -> CedarDuration {
        let remainder = millisecondsSinceEpoch % Self.msPerDay
        return CedarDuration(milliseconds: remainder < 0 ? remainder + Self.msPerDay : remainder)
    }

    // MARK: Parsing

    /// Accepts `YYYY-MM-DD`, optionally followed by `Thh:mm:ss` and then `Z`, `.SSSZ`,
    /// `(+|-)hhmm` or `.SSS(+|-)hhmm`, ASCII digits only. As in Cedar, the whole pattern is
    /// checked first, then the date, the time and the offset values, in that order.
    public static func parse(_ s: String) throws(ExtensionError) -> CedarDatetime {
        let b = Array(s.utf8)
        func digits(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= b.count else { return nil }
            var v = 0
            for k in range {
                guard b[k] >= UInt8(ascii: "0"), b[k] <= UInt8(ascii: "9") else { return nil }
                v = v * 10 + Int(b[k] - UInt8(ascii: "0"))
            }
            return v
        }
        func char(_ k: Int, _ c: Unicode.Scalar) -> Bool { k < b.count && b[k] == UInt8(ascii: c) }

        guard let year = digits(0..<4), char(4, "-"), let month = digits(5..<7), char(7, "-"),
              let day = digits(8..<10)
        else { throw .invalidLiteral("invalid date pattern") }

        var hour = 0, minute = 0, second = 0, millis = 0, offsetSign = 0, offsetH = 0, offsetM = 0
        if b.count > 10 {
            guard char(10, "T"), let h = digits(11..<13), char(13, ":"), let m = digits(14..<16),
                  char(16, ":"), let sec = digits(17..<19)
            else { throw .invalidLiteral("invalid hour/minute/second pattern") }
            (hour, minute, second) = (h, m, sec)
            var k = 19
            let badTail = ExtensionError.invalidLiteral("invalid millisecond and/or offset pattern")
            if char(k, ".") {
                guard let fraction = digits((k + 1)..<(k + 4)) else { throw badTail }
                millis = fraction
                k += 4
            }
            if char(k, "Z") {
                k += 1
            } else if char(k, "+") || char(k, "-") {
                offsetSign = b[k] == UInt8(ascii: "+") ? 1 : -1
                guard let oh = digits((k + 1)..<(k + 3)), let om = digits((k + 3)..<(k + 5)) else { throw badTail }
                (offsetH, offsetM) = (oh, om)
                k += 5
            } else {
                throw badTail
            }
            guard k == b.count else { throw badTail }
        }

        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month) else {
            throw .invalidLiteral("invalid date: \(String(decoding: b[0..<10], as: UTF8.self))")
        }
        guard hour < 24, minute < 60, second < 60 else {
            throw .invalidLiteral("invalid hour/minute/second: \(String(decoding: b[11..<19], as: UTF8.self))")
        }
        guard offsetH < 24, offsetM < 60 else {
            throw .invalidLiteral("invalid offset range: \(offsetH)\(offsetM)")
        }
        // Years 0000-9999 keep every term far inside Int64: no overflow is possible here.
        let days = Int64(daysFromCivil(year: year, month: month, day: day))
        let local = days * msPerDay + Int64(hour * 3_600_000 + minute * 60_000 + second * 1_000 + millis)
        let offset = Int64(offsetSign * (offsetH * 3_600_000 + offsetM * 60_000))
        return CedarDatetime(millisecondsSinceEpoch: local - offset)
    }

    private static func daysInMonth(year: Int, month: Int) -> Int {
        Int(CivilCalendar.daysInMonth(year: Int64(year), month: Int64(month)))
    }

    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        Int(CivilCalendar.days(year: Int64(year), month: Int64(month), day: Int64(day)))
    }

    static func civilFromDays(_ days: Int64) -> (year: Int64, month: Int, day: Int) {
        let c = CivilCalendar.date(days: days)
        return (c.year, Int(c.month), Int(c.day))
    }

    // MARK: Rendering

    /// The shortest literal `parse` reads back to the same instant: `YYYY-MM-DD` at midnight,
    /// else `YYYY-MM-DDThh:mm:ssZ`, with `.SSS` when there are milliseconds. An instant outside
    /// the years 0000-9999 has no literal; it is shown in Cedar's own form
    /// `(datetime("1970-01-01")).offset(duration("<ms>ms"))`.
    public var description: String {
        let days = floorDiv(millisecondsSinceEpoch, Self.msPerDay)
        let civil = Self.civilFromDays(days)
        guard civil.year >= 0, civil.year <= 9999 else { return cedarDisplay }
        let timeOfDay = Int(toTime().milliseconds)
        var out: [UInt8] = []
        out.reserveCapacity(24)
        func put(_ v: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(v / divisor % 10))
                divisor /= 10
            }
        }
        put(Int(civil.year), 4); out.append(UInt8(ascii: "-"))
        put(civil.month, 2); out.append(UInt8(ascii: "-"))
        put(civil.day, 2)
        if timeOfDay != 0 {
            let ms = timeOfDay % 1_000, seconds = timeOfDay / 1_000
            out.append(UInt8(ascii: "T")); put(seconds / 3_600, 2)
            out.append(UInt8(ascii: ":")); put(seconds / 60 % 60, 2)
            out.append(UInt8(ascii: ":")); put(seconds % 60, 2)
            if ms != 0 { out.append(UInt8(ascii: ".")); put(ms, 3) }
            out.append(UInt8(ascii: "Z"))
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// How Cedar prints a datetime value in its messages.
    var cedarDisplay: String {
        "(datetime(\"1970-01-01\")).offset(duration(\"\(millisecondsSinceEpoch)ms\"))"
    }

    private func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b < 0) ? q - 1 : q
    }
}
