/// Decoding of Cedar string literals. Cedar follows Rust's string escapes:
/// `\n \r \t \\ \0 \' \"`, `\xHH` (at most 0x7F) and `\u{H...}` (1 to 6 hex digits, `_`
/// allowed after the first digit, a valid scalar). A bare carriage return is rejected. In a `like`
/// pattern `\*` is a literal star and an unescaped `*` (however it was written) is a wildcard.

struct EscapeError: Error {
    var message: String
    /// The message without the escape it quotes; nil when it quotes nothing.
    var redacted: String? = nil
    /// Byte offset of the offending backslash (or character) within the literal's contents.
    var offset: Int
}

enum StringLiteral {
    /// One decoded unit: a scalar, or a star written as `\*` (only in patterns).
    private enum Unit { case scalar(Unicode.Scalar), escapedStar }

    private static func decode(_ content: ArraySlice<UInt8>, pattern: Bool,
                               _ emit: (Unit) -> Void) throws(EscapeError) {
        let text = String(decoding: content, as: UTF8.self)
        var it = text.unicodeScalars.makeIterator()
        var offset = 0
        while let s = it.next() {
            let here = offset
            offset += UTF8.width(s)
            if s == "\r" {
                throw EscapeError(message: "a bare carriage return is not allowed in a string literal; write `\\r`", offset: here)
            }
            guard s == "\\" else { emit(.scalar(s)); continue }
            func bad(_ seen: String) -> EscapeError {
                EscapeError(message: "`\\\(seen)` is not a valid escape (use \\n \\r \\t \\\\ \\0 \\' \\\" \\xHH or \\u{HHHHHH})",
                            redacted: "not a valid escape (use \\n \\r \\t \\\\ \\0 \\' \\\" \\xHH or \\u{HHHHHH})", offset: here)
            }
            guard let e = it.next() else { throw bad("") }
            offset += UTF8.width(e)
            switch e {
            case "n": emit(.scalar("\n"))
            case "r": emit(.scalar("\r"))
            case "t": emit(.scalar("\t"))
            case "\\": emit(.scalar("\\"))
            case "0": emit(.scalar("\0"))
            case "'": emit(.scalar("'"))
            case "\"": emit(.scalar("\""))
            case "*" where pattern: emit(.escapedStar)
            case "x":
                var seen = "x"
                var value: UInt32 = 0
                for _ in 0..<2 {
                    guard let h = it.next() else { throw bad(seen) }
                    offset += UTF8.width(h)
                    seen.unicodeScalars.append(h)
                    guard let d = hexValue(h) else { throw bad(seen) }
                    value = value * 16 + d
                }
                guard value <= 0x7F else { throw bad(seen) }
                emit(.scalar(Unicode.Scalar(UInt8(value))))
            case "u":
                var seen = "u"
                guard let open = it.next() else { throw bad(seen) }
                offset += UTF8.width(open)
                seen.unicodeScalars.append(open)
                guard open == "{" else { throw bad(seen) }
                var value: UInt32 = 0
                var digits = 0
                while true {
                    guard let h = it.next() else { throw bad(seen) }
                    offset += UTF8.width(h)
                    seen.unicodeScalars.append(h)
                    if h == "}" {
                        if digits == 0 { throw bad(seen) }
                        break
                    }
                    if h == "_" {
                        if digits == 0 { throw bad(seen) }
                        continue
                    }
                    guard let d = hexValue(h) else { throw bad(seen) }
                    digits += 1
                    if digits > 6 { throw bad(seen) }
                    value = value * 16 + d
                }
                guard let scalar = Unicode.Scalar(value) else { throw bad(seen) }
                emit(.scalar(scalar))
            default:
                var seen = ""
                seen.unicodeScalars.append(e)
                throw bad(seen)
            }
        }
    }

    private static func hexValue(_ s: Unicode.Scalar) -> UInt32? {
        switch s.value {
        case 0x30...0x39: s.value - 0x30
        case 0x41...0x46: s.value - 0x41 + 10
        case 0x61...0x66: s.value - 0x61 + 10
        default: nil
        }
    }

    /// The value of a string literal; `content` excludes the quotes.
    static func string(_ content: ArraySlice<UInt8>) throws(EscapeError) -> String {
        if !content.contains(UInt8(ascii: "\\")) && !content.contains(0x0D) {
            return String(decoding: content, as: UTF8.self)
        }
        var out = String.UnicodeScalarView()
        try decode(content, pattern: false) { unit in
            if case .scalar(let s) = unit { out.append(s) }
        }
        return String(out)
    }

    /// The elements of a `like` pattern; consecutive literal scalars form one element.
    static func pattern(_ content: ArraySlice<UInt8>) throws(EscapeError) -> [PatternElement] {
        var elements: [PatternElement] = []
        var run: [Unicode.Scalar] = []
        try decode(content, pattern: true) { unit in
            switch unit {
            case .scalar("*"):
                if !run.isEmpty { elements.append(.literal(run)); run = [] }
                elements.append(.wildcard)
            case .scalar(let s):
                run.append(s)
            case .escapedStar:
                run.append("*")
            }
        }
        if !run.isEmpty { elements.append(.literal(run)) }
        return elements
    }
}
