import CivilCalendar
#if canImport(Glibc)
import Glibc
#endif

/// A UTC instant with millisecond precision. Formatted by hand as RFC 3339
/// `YYYY-MM-DDTHH:MM:SS.mmmZ`: fixed width, so text order is time order, and no Foundation
/// date formatter on the decision path.
public struct AuditTimestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var millisecondsSinceEpoch: Int64

    public init(millisecondsSinceEpoch: Int64) { self.millisecondsSinceEpoch = millisecondsSinceEpoch }

    public static func now() -> AuditTimestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return AuditTimestamp(millisecondsSinceEpoch: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000)
    }

    public static func < (a: AuditTimestamp, b: AuditTimestamp) -> Bool { a.millisecondsSinceEpoch < b.millisecondsSinceEpoch }

    // Years 0000...9999 only, so the text keeps its fixed width.
    private static let minMs: Int64 = -62_167_219_200_000
    private static let maxMs: Int64 = 253_402_300_799_999

    public var rfc3339: String {
        var out = [UInt8]()
        out.reserveCapacity(24)
        append(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    public var description: String { rfc3339 }

    /// The text's length: fixed, so an entry's time can be read, and written in place, at a
    /// fixed offset.
    public static let textLength = 24

    func append(to out: inout [UInt8]) {
        render { out.append($0) }
    }

    /// Writes the text into `out`, which holds exactly `textLength` bytes.
    func write(into out: UnsafeMutableRawBufferPointer) {
        var i = 0
        render { out[i] = $0; i += 1 }
    }

    @inline(__always)
    private func render(_ emit: (UInt8) -> Void) {
        let ms = min(max(millisecondsSinceEpoch, Self.minMs), Self.maxMs)
        let (secs, milli) = floorDivMod(ms, 1000)
        let (days, secOfDay) = floorDivMod(secs, 86_400)
        let (y, m, d) = CivilCalendar.date(days: days)
        digits(y, 4, emit); emit(UInt8(ascii: "-"))
        digits(m, 2, emit); emit(UInt8(ascii: "-"))
        digits(d, 2, emit); emit(UInt8(ascii: "T"))
        digits(secOfDay / 3600, 2, emit); emit(UInt8(ascii: ":"))
        digits(secOfDay / 60 % 60, 2, emit); emit(UInt8(ascii: ":"))
        digits(secOfDay % 60, 2, emit); emit(UInt8(ascii: "."))
        digits(milli, 3, emit); emit(UInt8(ascii: "Z"))
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z`. Only `Z` is accepted: audit times are UTC, and
    /// an offset would let two spellings name one instant.
    public init?(rfc3339 text: String) {
        let u = Array(text.utf8)
        guard u.count >= 20 else { return nil }
        func num(_ from: Int, _ count: Int) -> Int64? {
            var v: Int64 = 0
            for i in from..<(from + count) {
                guard u[i] >= 0x30, u[i] <= 0x39 else { return nil }
                v = v * 10 + Int64(u[i] - 0x30)
            }
            return v
        }
        guard u[4] == UInt8(ascii: "-"), u[7] == UInt8(ascii: "-"), u[10] == UInt8(ascii: "T") || u[10] == UInt8(ascii: "t"),
              u[13] == UInt8(ascii: ":"), u[16] == UInt8(ascii: ":"),
              let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2),
              let h = num(11, 2), let mi = num(14, 2), let s = num(17, 2),
              (1...12).contains(mo), d >= 1, d <= CivilCalendar.daysInMonth(year: y, month: mo), h < 24, mi < 60, s < 60 else { return nil }
        var i = 19
        var milli: Int64 = 0
        if u[i] == UInt8(ascii: ".") {
            i += 1
            var n = 0
            while i < u.count, u[i] >= 0x30, u[i] <= 0x39 {
                if n < 3 { milli = milli * 10 + Int64(u[i] - 0x30) }
                n += 1; i += 1
            }
            guard n > 0 else { return nil }
            for _ in n..<max(n, 3) { milli *= 10 }
        }
        guard i == u.count - 1, u[i] == UInt8(ascii: "Z") || u[i] == UInt8(ascii: "z") else { return nil }
        let days = CivilCalendar.days(year: y, month: mo, day: d)
        millisecondsSinceEpoch = ((days * 86_400 + h * 3600 + mi * 60 + s) * 1000) + milli
    }
}

private func floorDivMod(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
    var q = a / b, r = a % b
    if r < 0 { q -= 1; r += b }
    return (q, r)
}

@inline(__always)
private func digits(_ v: Int64, _ width: Int, _ emit: (UInt8) -> Void) {
    var div: Int64 = 1
    for _ in 1..<width { div *= 10 }
    var v = v
    while div > 0 {
        emit(UInt8(ascii: "0") + UInt8(v / div))
        v %= div
        div /= 10
    }
}
