import Cedar
import CivilCalendar

/// Calendar arithmetic on UTC instants (milliseconds since the epoch), without Foundation: a
/// retention period of "25 years" ends on the same calendar day, not after 25 * 365 days.
enum CivilTime {
    static let msPerDay: Int64 = 86_400_000

    /// `t` plus a period; a day that does not exist in the target month is clamped (29 Feb + 1 year
    /// = 28 Feb). Nil when the result leaves the representable range (dates from entities are
    /// untrusted, so overflow is reported, never trapped).
    static func adding(_ p: RetentionPeriod, to t: CedarDatetime) -> CedarDatetime? {
        let ms = t.millisecondsSinceEpoch
        var days = ms / msPerDay
        var rem = ms % msPerDay
        if rem < 0 { rem += msPerDay; days -= 1 }
        guard days > -100_000_000, days < 100_000_000 else { return nil }
        let c = CivilCalendar.date(days: days)
        let totalMonths = c.year * 12 + (c.month - 1) + p.years * 12 + p.months
        let y = totalMonths >= 0 ? totalMonths / 12 : (totalMonths - 11) / 12
        let m = totalMonths - y * 12 + 1
        let d = min(c.day, CivilCalendar.daysInMonth(year: y, month: m))
        let newDays = CivilCalendar.days(year: y, month: m, day: d) + p.days
        let (dayMs, o1) = newDays.multipliedReportingOverflow(by: msPerDay)
        let (out, o2) = dayMs.addingReportingOverflow(rem)
        if o1 || o2 { return nil }
        return CedarDatetime(millisecondsSinceEpoch: out)
    }

    /// Reads `YYYY-MM-DD` or a full Cedar datetime literal.
    static func parseDate(_ s: String) -> CedarDatetime? {
        try? CedarDatetime.parse(s)
    }

    /// `YYYY-MM-DD` or `YYYY-MM-DDThh:mm:ss[.SSS]Z`, as Cedar prints datetimes.
    static func format(_ t: CedarDatetime) -> String { t.description }
}

/// A retention period: years and months follow the calendar, days are added afterwards.
public struct RetentionPeriod: Sendable, Hashable, CustomStringConvertible {
    public var years: Int64
    public var months: Int64
    public var days: Int64

    public init(years: Int64 = 0, months: Int64 = 0, days: Int64 = 0) {
        self.years = years; self.months = months; self.days = days
    }

    /// ISO 8601 subset `P[nY][nM][nD]` (e.g. `P25Y`, `P6M`, `P1Y6M`); each number below 10,000
    /// so that no sum can overflow.
    public static func parse(_ s: String) -> RetentionPeriod? {
        let b = Array(s.utf8)
        guard b.count >= 3, b[0] == UInt8(ascii: "P") else { return nil }
        var p = RetentionPeriod()
        var i = 1
        var lastUnit = 0
        while i < b.count {
            var n: Int64 = 0
            var digits = 0
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                n = n * 10 + Int64(b[i] - 48); digits += 1; i += 1
                if digits > 4 { return nil }
            }
            guard digits > 0, i < b.count else { return nil }
            let unit: Int
            switch b[i] {
            case UInt8(ascii: "Y"): unit = 1; p.years = n
            case UInt8(ascii: "M"): unit = 2; p.months = n
            case UInt8(ascii: "D"): unit = 3; p.days = n
            default: return nil
            }
            guard unit > lastUnit else { return nil }
            lastUnit = unit
            i += 1
        }
        guard p.years + p.months + p.days > 0 else { return nil }
        return p
    }

    public var description: String {
        var s = "P"
        if years > 0 { s += "\(years)Y" }
        if months > 0 { s += "\(months)M" }
        if days > 0 { s += "\(days)D" }
        return s
    }
}
