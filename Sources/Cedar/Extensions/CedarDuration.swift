/// Cedar's `duration`: a signed number of milliseconds in an `Int64`.
public struct CedarDuration: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let milliseconds: Int64

    @inline(__always) public init(milliseconds: Int64) { self.milliseconds = milliseconds }

    @inline(__always) public static func < (a: CedarDuration, b: CedarDuration) -> Bool {
        a.milliseconds < b.milliseconds
    }

    // Conversions truncate toward zero, as Rust's integer division does in Cedar.
    @inline(__always) public var toMilliseconds: Int64 { milliseconds }
    @inline(__always) public var toSeconds: Int64 { milliseconds / 1_000 }
    @inline(__always) public var toMinutes: Int64 { milliseconds / 60_000 }
    @inline(__always) public var toHours: Int64 { milliseconds / 3_600_000 }
    @inline(__always) public var toDays: Int64 { milliseconds / 86_400_000 }

    /// Cedar prints every computed duration this way, and `parse` reads it back.
    public var description: String { "\(milliseconds)ms" }

    /// Parses `-?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?` with at least one component and ASCII
    /// digits. The whole pattern is checked before an overflow is reported, so a malformed
    /// literal never reports an overflow; a leading '-' applies to every component.
    public static func parse(_ s: String) throws(ExtensionError) -> CedarDuration {
        let pattern = ExtensionError.invalidLiteral("invalid duration pattern")
        var total: Int64 = 0
        var overflowed = false
        var negative = false
        var lastUnit = -1  // 0 d, 1 h, 2 m, 3 s, 4 ms: each must come after the previous one
        var amount: Int64 = 0
        var digits = 0
        var pendingM = false  // saw "<digits>m": minutes, unless an 's' follows (milliseconds)
        var first = true

        func close(_ unit: Int, _ factor: Int64) -> Bool {
            guard digits > 0, unit > lastUnit else { return false }
            let (ms, o1) = amount.multipliedReportingOverflow(by: factor)
            let (sum, o2) = total.addingReportingOverflow(ms)
            overflowed = overflowed || o1 || o2
            total = sum
            lastUnit = unit
            amount = 0
            digits = 0
            return true
        }

        for b in s.utf8 {
            defer { first = false }
            if pendingM {
                pendingM = false
                if b == UInt8(ascii: "s") {
                    guard close(4, 1) else { throw pattern }
                    continue
                }
                guard close(2, 60_000) else { throw pattern }
            }
            switch b {
            case UInt8(ascii: "-") where first:
                negative = true
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                // Accumulating toward the sign keeps -9223372036854775808ms representable.
                let digit = Int64(b - UInt8(ascii: "0"))
                let (times10, o1) = amount.multipliedReportingOverflow(by: 10)
                let (next, o2) = negative
                    ? times10.subtractingReportingOverflow(digit) : times10.addingReportingOverflow(digit)
                overflowed = overflowed || o1 || o2
                amount = next
                digits += 1
            case UInt8(ascii: "d"): guard close(0, 86_400_000) else { throw pattern }
            case UInt8(ascii: "h"): guard close(1, 3_600_000) else { throw pattern }
            case UInt8(ascii: "m"): guard digits > 0 else { throw pattern }; pendingM = true
            case UInt8(ascii: "s"): guard close(3, 1_000) else { throw pattern }
            default: throw pattern
            }
        }
        if pendingM { guard close(2, 60_000) else { throw pattern } }
        guard digits == 0, lastUnit >= 0 else { throw pattern }
        guard !overflowed else { throw .overflow("Duration overflows internal representation") }
        return CedarDuration(milliseconds: total)
    }
}
