/// Cedar's `decimal`: a fixed-point number with four fractional digits, stored as
/// `value * 10_000` in an `Int64` (range -922337203685477.5808 ... 922337203685477.5807).
public struct CedarDecimal: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let scaled: Int64

    @inline(__always) public init(scaled: Int64) { self.scaled = scaled }

    @inline(__always) public static func < (a: CedarDecimal, b: CedarDecimal) -> Bool {
        a.scaled < b.scaled
    }

    private static let fractionDigits = 4
    private static let scale: Int64 = 10_000

    /// Parses Cedar's grammar `-?\d+\.\d{1,4}`. The checks run in the reference engine's order,
    /// because the order decides which error a malformed literal reports: Cedar matches `\d`
    /// against any Unicode decimal digit, counts fractional digits in UTF-8 bytes and only then
    /// converts with an ASCII-only integer parser, so "1.٥" is an overflow, not a syntax error.
    public static func parse(_ s: String) throws(ExtensionError) -> CedarDecimal {
        // One pass records the shape and both numbers; the verdicts are given afterwards in
        // Cedar's order.
        var negative = false
        var inFraction = false
        var integerDigits = 0, fractionDigits = 0, fractionBytes = 0
        var integerASCII = true, fractionASCII = true, integerOverflow = false
        var whole: Int64 = 0, fraction: Int64 = 0
        var first = true
        for c in s.unicodeScalars {
            defer { first = false }
            if first && c == "-" { negative = true; continue }
            if c == "." {
                guard !inFraction, integerDigits > 0 else { throw malformed(s) }
                inFraction = true
                continue
            }
            let ascii = c.value >= 0x30 && c.value <= 0x39
            guard ascii || (!c.isASCII && c.properties.generalCategory == .decimalNumber) else { throw malformed(s) }
            let digit = Int64(ascii ? c.value - 0x30 : 0)
            if inFraction {
                fractionDigits += 1
                fractionBytes += UTF8.width(c)
                fractionASCII = fractionASCII && ascii
                fraction = fraction &* 10 &+ digit  // only used when at most 4 digits
            } else {
                integerDigits += 1
                integerASCII = integerASCII && ascii
                // Accumulating toward the sign keeps Int64.min reachable.
                let (times10, o1) = whole.multipliedReportingOverflow(by: 10)
                let (next, o2) = negative
                    ? times10.subtractingReportingOverflow(digit) : times10.addingReportingOverflow(digit)
                integerOverflow = integerOverflow || o1 || o2
                whole = next
            }
        }
        guard inFraction, fractionDigits > 0 else { throw malformed(s) }

        let overflow = ExtensionError.overflow("overflow when converting to decimal")
        guard integerASCII, !integerOverflow else { throw overflow }
        let (shifted, o1) = whole.multipliedReportingOverflow(by: scale)
        guard !o1 else { throw overflow }
        guard fractionBytes <= Self.fractionDigits else {
            throw .invalidLiteral("too many digits after the decimal in `\(s)`")
        }
        guard fractionASCII else { throw overflow }
        for _ in fractionBytes..<Self.fractionDigits { fraction &*= 10 }  // at most 9999
        let (value, o2) = negative
            ? shifted.subtractingReportingOverflow(fraction) : shifted.addingReportingOverflow(fraction)
        guard !o2 else { throw overflow }
        return CedarDecimal(scaled: value)
    }

    /// The shortest rendering `parse` reads back to the same value: sign, integer part, and the
    /// fractional digits without trailing zeros (at least one, since Cedar requires one).
    public var description: String {
        let whole = scaled / Self.scale
        let fraction = Int((scaled % Self.scale).magnitude)
        var digits = String(fraction)
        digits = String(repeating: "0", count: Self.fractionDigits - digits.count) + digits
        while digits.count > 1, digits.last == "0" { digits.removeLast() }
        let sign = scaled < 0 ? "-" : ""
        return "\(sign)\(whole.magnitude).\(digits)"
    }

    private static func malformed(_ s: String) -> ExtensionError {
        .invalidLiteral("`\(s)` is not a well-formed decimal value")
    }
}
