/// Splits Cedar source text into tokens. Works on UTF-8 bytes; identifiers and operators are
/// ASCII, strings and comments may hold any scalar, and whitespace is Unicode `White_Space`
/// (what the reference lexer's `\s` accepts).

enum TokenKind: UInt8, Sendable {
    case ident, int, string, slot
    case at, lparen, rparen, lbrace, rbrace, lbracket, rbracket
    case comma, semicolon, colon, colonColon, dot
    case eq, neq, lt, le, gt, ge, and, or
    case plus, minus, star, bang
    /// A lone `=`: never valid, kept as a token so the parser can say what was meant.
    case assign
    /// `?` on its own: only in the schema syntax (`name?: Type`), where there are no slots.
    case question
    /// Input the lexer cannot read; `Token.message` says why. Always the last token.
    case invalid
    case eof
}

struct Token: Sendable {
    var kind: TokenKind
    /// Byte range in the source; for strings it includes the quotes.
    var start: Int
    var end: Int
    var line: Int
    var column: Int
    /// Identifier or slot name (without `?`); the reason for `.invalid`; otherwise empty.
    var text: String = ""
}

struct Lexer {
    let bytes: [UInt8]
    /// Schema text (`.cedarschema`): `?` is an optional-attribute marker, not a slot.
    let schemaSyntax: Bool
    private var pos = 0
    private var line = 1
    private var column = 1

    init(_ text: String, schemaSyntax: Bool = false) {
        bytes = Array(text.utf8)
        self.schemaSyntax = schemaSyntax
    }

    /// All tokens up to and including `.eof`, or up to and including the first `.invalid`.
    static func tokenize(_ text: String, schemaSyntax: Bool = false) -> (tokens: [Token], bytes: [UInt8]) {
        var lexer = Lexer(text, schemaSyntax: schemaSyntax)
        var tokens: [Token] = []
        tokens.reserveCapacity(lexer.bytes.count / 4 + 1)
        while true {
            let t = lexer.next()
            tokens.append(t)
            if t.kind == .eof || t.kind == .invalid { break }
        }
        return (tokens, lexer.bytes)
    }

    private mutating func advance() {
        let b = bytes[pos]
        pos += 1
        if b == 0x0A {
            line += 1; column = 1
        } else if b & 0xC0 != 0x80 {
            column += 1
        }
    }

    /// Decodes the scalar starting at `pos` (input came from a Swift String, so it is valid UTF-8).
    private func scalar(at p: Int) -> (Unicode.Scalar, Int) {
        let b0 = UInt32(bytes[p])
        if b0 < 0x80 { return (Unicode.Scalar(UInt8(b0)), 1) }
        if b0 < 0xE0 {
            let v = (b0 & 0x1F) << 6 | UInt32(bytes[p + 1] & 0x3F)
            return (Unicode.Scalar(v) ?? "\u{FFFD}", 2)
        }
        if b0 < 0xF0 {
            let v = (b0 & 0x0F) << 12 | UInt32(bytes[p + 1] & 0x3F) << 6 | UInt32(bytes[p + 2] & 0x3F)
            return (Unicode.Scalar(v) ?? "\u{FFFD}", 3)
        }
        let v = (b0 & 0x07) << 18 | UInt32(bytes[p + 1] & 0x3F) << 12
            | UInt32(bytes[p + 2] & 0x3F) << 6 | UInt32(bytes[p + 3] & 0x3F)
        return (Unicode.Scalar(v) ?? "\u{FFFD}", 4)
    }

    /// Skips whitespace and `//` comments (which end at `\n` or `\r`, as in the reference).
    private mutating func skipTrivia() {
        while pos < bytes.count {
            let b = bytes[pos]
            switch b {
            case 0x20, 0x09, 0x0A, 0x0B, 0x0C, 0x0D:
                advance()
            case UInt8(ascii: "/") where pos + 1 < bytes.count && bytes[pos + 1] == UInt8(ascii: "/"):
                while pos < bytes.count && bytes[pos] != 0x0A && bytes[pos] != 0x0D { advance() }
            case 0x80...:
                let (s, n) = scalar(at: pos)
                guard s.properties.isWhitespace else { return }
                for _ in 0..<n { advance() }
            default:
                return
            }
        }
    }

    @inline(__always) private static func isIdentStart(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || b == 0x5F
    }

    @inline(__always) private static func isIdentContinue(_ b: UInt8) -> Bool {
        isIdentStart(b) || (b >= 0x30 && b <= 0x39)
    }

    private mutating func identifier() -> String {
        let s = pos
        while pos < bytes.count && Lexer.isIdentContinue(bytes[pos]) { pos += 1 }
        column += pos - s
        return String(decoding: bytes[s..<pos], as: UTF8.self)
    }

    mutating func next() -> Token {
        skipTrivia()
        var t = Token(kind: .eof, start: pos, end: pos, line: line, column: column)
        guard pos < bytes.count else { return t }
        let b = bytes[pos]
        func peek(_ c: Character) -> Bool {
            pos + 1 < bytes.count && bytes[pos + 1] == c.asciiValue!
        }
        func invalid(_ why: String) -> Token {
            var bad = t
            bad.kind = .invalid
            bad.text = why
            return bad
        }
        switch b {
        case _ where Lexer.isIdentStart(b):
            t.kind = .ident
            t.text = identifier()
        case 0x30...0x39:
            t.kind = .int
            while pos < bytes.count && bytes[pos] >= 0x30 && bytes[pos] <= 0x39 { advance() }
        case UInt8(ascii: "\""):
            advance()
            while true {
                guard pos < bytes.count else { return invalid("unterminated string literal") }
                let c = bytes[pos]
                if c == UInt8(ascii: "\"") { advance(); break }
                if c == UInt8(ascii: "\\") {
                    advance()
                    guard pos < bytes.count else { return invalid("unterminated string literal") }
                    if bytes[pos] == 0x0A {
                        return invalid("a string literal cannot continue a line with `\\`")
                    }
                }
                advance()
            }
            t.kind = .string
        case UInt8(ascii: "?") where schemaSyntax:
            t.kind = .question
            advance()
        case UInt8(ascii: "?"):
            advance()
            guard pos < bytes.count && Lexer.isIdentStart(bytes[pos]) else {
                return invalid("`?` must be followed by a slot name such as `?principal`")
            }
            t.kind = .slot
            t.text = identifier()
        case UInt8(ascii: "="):
            if peek("=") { t.kind = .eq; advance() } else { t.kind = .assign }
            advance()
        case UInt8(ascii: "!"):
            if peek("=") { t.kind = .neq; advance() } else { t.kind = .bang }
            advance()
        case UInt8(ascii: "<"):
            if peek("=") { t.kind = .le; advance() } else { t.kind = .lt }
            advance()
        case UInt8(ascii: ">"):
            if peek("=") { t.kind = .ge; advance() } else { t.kind = .gt }
            advance()
        case UInt8(ascii: "&"):
            guard peek("&") else { return invalid("unexpected character '&' (did you mean '&&'?)") }
            t.kind = .and; advance(); advance()
        case UInt8(ascii: "|"):
            guard peek("|") else { return invalid("unexpected character '|' (did you mean '||'?)") }
            t.kind = .or; advance(); advance()
        case UInt8(ascii: ":"):
            if peek(":") { t.kind = .colonColon; advance() } else { t.kind = .colon }
            advance()
        default:
            let kind: TokenKind
            switch b {
            case UInt8(ascii: "@"): kind = .at
            case UInt8(ascii: "("): kind = .lparen
            case UInt8(ascii: ")"): kind = .rparen
            case UInt8(ascii: "{"): kind = .lbrace
            case UInt8(ascii: "}"): kind = .rbrace
            case UInt8(ascii: "["): kind = .lbracket
            case UInt8(ascii: "]"): kind = .rbracket
            case UInt8(ascii: ","): kind = .comma
            case UInt8(ascii: ";"): kind = .semicolon
            case UInt8(ascii: "."): kind = .dot
            case UInt8(ascii: "+"): kind = .plus
            case UInt8(ascii: "-"): kind = .minus
            case UInt8(ascii: "*"): kind = .star
            default:
                let (s, _) = scalar(at: pos)
                var code = String(s.value, radix: 16, uppercase: true)
                code = "U+" + String(repeating: "0", count: max(0, 4 - code.count)) + code
                // Invisible characters (controls, zero-width and format characters) are only
                // recognisable by their code point.
                let shown: String
                switch s.properties.generalCategory {
                case .control, .format, .unassigned, .privateUse, .surrogate, .lineSeparator, .paragraphSeparator,
                     .spaceSeparator:
                    shown = code
                default:
                    shown = s.isASCII ? "'\(s)'" : "'\(s)' (\(code))"
                }
                return invalid("unexpected character \(shown)")
            }
            t.kind = kind
            advance()
        }
        t.end = pos
        return t
    }
}
