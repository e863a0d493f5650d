/// Cedar's `ipaddr`: an IPv4 or IPv6 address with a prefix length. The host bits are kept, so
/// `ip("10.0.0.1/24") != ip("10.0.0.0/24")`, and an address without a prefix is the
/// single-address range (`ip("127.0.0.1") == ip("127.0.0.1/32")`), exactly as in Cedar.
public struct CedarIPAddr: Sendable, Hashable, CustomStringConvertible {
    /// The address as a number; an IPv4 address occupies the low 32 bits.
    private let bits: UInt128
    public let prefixLength: UInt8
    public let isIPv4: Bool

    private init(bits: UInt128, prefixLength: UInt8, isIPv4: Bool) {
        self.bits = bits
        self.prefixLength = prefixLength
        self.isIPv4 = isIPv4
    }

    public var isIPv6: Bool { !isIPv4 }

    /// True when the whole range is loopback: inside 127.0.0.0/8, or exactly ::1/128.
    /// An IPv4-mapped address (::ffff:7f00:1) is IPv6 and not loopback, as in Cedar.
    public var isLoopback: Bool {
        isInRange(isIPv4 ? Self.loopbackV4 : Self.loopbackV6)
    }

    /// True when the whole range is multicast: inside 224.0.0.0/4 or ff00::/8.
    public var isMulticast: Bool {
        isInRange(isIPv4 ? Self.multicastV4 : Self.multicastV6)
    }

    /// True when every address of `self` lies in `range`; an IPv4 value is never in an IPv6
    /// range or the reverse.
    public func isInRange(_ range: CedarIPAddr) -> Bool {
        guard isIPv4 == range.isIPv4, range.prefixLength <= prefixLength else { return false }
        // Host bits to ignore: everything below the range's prefix (`>>` by the full width is 0).
        let hostMask: UInt128 = (isIPv4 ? 0xFFFF_FFFF : ~0) >> UInt128(range.prefixLength)
        return bits & ~hostMask == range.bits & ~hostMask
    }

    private static let loopbackV4 = CedarIPAddr(bits: 0x7F00_0000, prefixLength: 8, isIPv4: true)
    private static let loopbackV6 = CedarIPAddr(bits: 1, prefixLength: 128, isIPv4: false)
    private static let multicastV4 = CedarIPAddr(bits: 0xE000_0000, prefixLength: 4, isIPv4: true)
    private static let multicastV6 = CedarIPAddr(bits: 0xFF << 120, prefixLength: 8, isIPv4: false)

    // MARK: Parsing

    /// Parses `address` or `address/prefix` the way Cedar does: Rust's `std::net` address syntax
    /// (no leading zeros in IPv4 octets, no zone ids, no brackets, no whitespace), any string
    /// with two or more ':' and two or more '.' rejected as IPv4 embedded in IPv6, and a prefix
    /// of plain decimal digits without leading zeros, at most 32 (IPv4) or 128 (IPv6).
    public static func parse(_ s: String) throws(ExtensionError) -> CedarIPAddr {
        let bytes = Array(s.utf8)
        var colons = 0, dots = 0
        for b in bytes {
            if b == UInt8(ascii: ":") { colons += 1 } else if b == UInt8(ascii: ".") { dots += 1 }
        }
        if colons >= 2 && dots >= 2 {
            throw .invalidLiteral(
                "error parsing IP address from string: We do not accept IPv4 embedded in IPv6 (e.g., ::ffff:127.0.0.1). Found: `\(s)`"
            )
        }
        guard let slash = bytes.firstIndex(of: UInt8(ascii: "/")) else {
            guard let a = parseAddress(bytes[...]) else { throw .invalidLiteral("invalid IP address: \(s)") }
            return CedarIPAddr(bits: a.bits, prefixLength: a.isIPv4 ? 32 : 128, isIPv4: a.isIPv4)
        }
        let addressBytes = bytes[..<slash]
        guard let a = parseAddress(addressBytes) else {
            throw .invalidLiteral(
                "error parsing IP address from the string `\(text(addressBytes))`: invalid IP address syntax")
        }
        let prefix = try parsePrefix(bytes[(slash + 1)...], isIPv4: a.isIPv4)
        return CedarIPAddr(bits: a.bits, prefixLength: prefix, isIPv4: a.isIPv4)
    }

    private static func text(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    /// Cedar's prefix checks, in its order: byte length, digits only, leading zeros, fits a
    /// byte, at most the address width.
    private static func parsePrefix(_ p: ArraySlice<UInt8>, isIPv4: Bool) throws(ExtensionError) -> UInt8 {
        let limit = isIPv4 ? 32 : 128
        let maxLength = isIPv4 ? 2 : 3
        guard p.count <= maxLength else {
            throw .invalidLiteral("error parsing prefix: string length \(p.count) is too large")
        }
        guard p.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw .invalidLiteral("error parsing prefix `\(text(p))`: encountered non-digit")
        }
        guard !(p.count > 1 && p.first == UInt8(ascii: "0")) else {
            throw .invalidLiteral("error parsing prefix `\(text(p))`: leading zero(s)")
        }
        guard !p.isEmpty else {
            throw .invalidLiteral("error parsing prefix from the string ``: cannot parse integer from empty string")
        }
        var value = 0
        for b in p { value = value * 10 + Int(b - UInt8(ascii: "0")) }  // at most 3 digits
        guard value <= 255 else {
            throw .invalidLiteral(
                "error parsing prefix from the string `\(text(p))`: number too large to fit in target type")
        }
        guard value <= limit else {
            throw .invalidLiteral("error parsing prefix: \(value) is larger than the limit \(limit)")
        }
        return UInt8(value)
    }

    private static func parseAddress(_ b: ArraySlice<UInt8>) -> (bits: UInt128, isIPv4: Bool)? {
        if let v4 = parseIPv4(b) { return (UInt128(v4), true) }
        if let v6 = parseIPv6(b) { return (v6, false) }
        return nil
    }

    /// Four decimal octets, 1 to 3 digits each, no leading zero, at most 255.
    private static func parseIPv4(_ b: ArraySlice<UInt8>) -> UInt32? {
        var i = b.startIndex
        var result: UInt32 = 0
        for octet in 0..<4 {
            if octet > 0 {
                guard i < b.endIndex, b[i] == UInt8(ascii: ".") else { return nil }
                i += 1
            }
            let start = i
            var value: UInt32 = 0
            while i < b.endIndex, b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9"), i - start < 3 {
                value = value * 10 + UInt32(b[i] - UInt8(ascii: "0"))
                i += 1
            }
            let count = i - start
            guard count > 0, value <= 255, !(count > 1 && b[start] == UInt8(ascii: "0")) else { return nil }
            result = result << 8 | value
        }
        return i == b.endIndex ? result : nil
    }

    /// Rust's IPv6 syntax without the embedded-IPv4 tail (Cedar rejects those before parsing):
    /// up to eight groups of 1 to 4 hex digits, at most one `::` standing for at least one
    /// zero group.
    private static func parseIPv6(_ b: ArraySlice<UInt8>) -> UInt128? {
        var i = b.startIndex
        let head = readGroups(b, &i, limit: 8)
        guard head.count < 8 else { return i == b.endIndex ? head.value : nil }
        guard i + 1 < b.endIndex, b[i] == UInt8(ascii: ":"), b[i + 1] == UInt8(ascii: ":") else { return nil }
        i += 2
        let tail = readGroups(b, &i, limit: 8 - (head.count + 1))
        guard i == b.endIndex else { return nil }
        return head.value << UInt128(16 * (8 - head.count)) | tail.value
    }

    /// Reads at most `limit` groups into a number, first group most significant; a group after
    /// the first needs a ':' before it, and a ':' without a group after it is left unread (it
    /// may start the `::`).
    private static func readGroups(
        _ b: ArraySlice<UInt8>, _ i: inout Int, limit: Int
    ) -> (value: UInt128, count: Int) {
        var value: UInt128 = 0
        var count = 0
        while count < limit {
            var j = i
            if count > 0 {
                guard j < b.endIndex, b[j] == UInt8(ascii: ":") else { break }
                j += 1
            }
            let start = j
            var group: UInt32 = 0
            while j < b.endIndex, j - start < 5, let d = hexValue(b[j]) {
                group = group << 4 | d
                j += 1
            }
            guard j > start, j - start <= 4 else { break }
            value = value << 16 | UInt128(group)
            count += 1
            i = j
        }
        return (value, count)
    }

    @inline(__always) private static func hexValue(_ c: UInt8) -> UInt32? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(c - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    // MARK: Rendering

    /// `address` or `address/prefix` (the prefix only when it is not the full width), with
    /// IPv6 in RFC 5952 form but never with a dotted IPv4 tail, which Cedar would not read back.
    public var description: String {
        let fullWidth = isIPv4 ? 32 : 128
        let suffix = Int(prefixLength) == fullWidth ? "" : "/\(prefixLength)"
        if isIPv4 {
            let v = UInt32(truncatingIfNeeded: bits)
            return "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF)" + suffix
        }
        let groups = (0..<8).map { UInt16(truncatingIfNeeded: bits >> UInt128(112 - 16 * $0)) }
        // The longest run of two or more zero groups (the first on a tie) becomes "::".
        var bestStart = -1, bestLength = 1
        var k = 0
        while k < 8 {
            guard groups[k] == 0 else { k += 1; continue }
            let start = k
            while k < 8, groups[k] == 0 { k += 1 }
            if k - start > bestLength { bestStart = start; bestLength = k - start }
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        let body = bestStart < 0
            ? hex(0..<8)
            : hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
        return body + suffix
    }
}
