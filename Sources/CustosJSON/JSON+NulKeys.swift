/// jansson accepts U+0000 inside string values (JSON_ALLOW_NUL) but never inside object keys,
/// because it stores keys as C strings. Cedar record keys may hold U+0000, so before parsing a
/// text that contains `\u0000` we rewrite each NUL escape to a sentinel that jansson can hold,
/// and map it back in every decoded string.
///
/// The sentinel is U+10FFFF (a noncharacter) followed by a tag: `U+10FFFF 0` stands for U+0000
/// and `U+10FFFF E` for a U+10FFFF that was in the input, so the mapping is injective and
/// duplicate-key detection still sees distinct keys as distinct.
enum NulEscaping {
    static let sentinel: Unicode.Scalar = "\u{10FFFF}"
    private static let sentinelEscape = Array(#"\udbff\udfff"#.utf8)
    private static let sentinelUTF8: [UInt8] = [0xF4, 0x8F, 0xBF, 0xBF]

    /// True when the text has a `\u0000` escape somewhere (cheap pre-check).
    static func needsRewrite(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= 6 else { return false }
        var i = 0
        while i + 5 < bytes.count {
            if bytes[i] == UInt8(ascii: "\\") && bytes[i + 1] == UInt8(ascii: "u") && bytes[i + 2] == 0x30
                && bytes[i + 3] == 0x30 && bytes[i + 4] == 0x30 && bytes[i + 5] == 0x30 {
                return true
            }
            i += 1
        }
        return false
    }

    /// Rewrites string contents as described above; bytes outside strings are copied as they
    /// are (jansson will reject whatever is invalid there).
    static func rewrite(_ b: UnsafeRawBufferPointer) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(b.count + 64)
        var i = 0
        var inString = false
        while i < b.count {
            let c = b[i]
            if !inString {
                out.append(c)
                if c == UInt8(ascii: "\"") { inString = true }
                i += 1
                continue
            }
            if c == UInt8(ascii: "\"") {
                inString = false; out.append(c); i += 1
            } else if c == UInt8(ascii: "\\"), i + 1 < b.count {
                if b[i + 1] == UInt8(ascii: "u"), i + 5 < b.count {
                    if b[i + 2] == 0x30 && b[i + 3] == 0x30 && b[i + 4] == 0x30 && b[i + 5] == 0x30 {
                        out.append(contentsOf: sentinelEscape); out.append(UInt8(ascii: "0"))
                        i += 6
                    } else if i + 11 < b.count, isSentinelEscape(b, at: i) {
                        out.append(contentsOf: sentinelEscape); out.append(UInt8(ascii: "E"))
                        i += 12
                    } else {
                        for k in 0..<6 { out.append(b[i + k]) }
                        i += 6
                    }
                } else {
                    out.append(c); out.append(b[i + 1]); i += 2
                }
            } else if c == 0xF4, i + 3 < b.count, b[i + 1] == 0x8F, b[i + 2] == 0xBF, b[i + 3] == 0xBF {
                out.append(contentsOf: sentinelUTF8); out.append(UInt8(ascii: "E"))
                i += 4
            } else {
                out.append(c); i += 1
            }
        }
        return out
    }

    private static func isSentinelEscape(_ b: UnsafeRawBufferPointer, at i: Int) -> Bool {
        func lower(_ x: UInt8) -> UInt8 { x | 0x20 }
        for k in 0..<12 {
            let want = sentinelEscape[k]
            let got = b[i + k]
            if want == got { continue }
            if want >= UInt8(ascii: "a") && lower(got) == want { continue }
            return false
        }
        return true
    }

    /// Maps the sentinel pairs in a decoded string back.
    static func restore(_ s: String) -> String {
        guard s.unicodeScalars.contains(sentinel) else { return s }
        var out = String.UnicodeScalarView()
        var it = s.unicodeScalars.makeIterator()
        while let u = it.next() {
            if u == sentinel, let tag = it.next() {
                out.append(tag == "0" ? "\u{0}" : sentinel)
            } else {
                out.append(u)
            }
        }
        return String(out)
    }
}
