/// Recursive-descent parser state shared by the policy and expression grammars: the token
/// cursor, locations, error construction and the name rules common to both.

/// An expression with the depth of its tree, so that over-deep input is refused while parsing
/// rather than overflowing the stack later (in evaluation, comparison or deallocation).
struct ParsedExpr {
    var expr: Expr
    var depth: Int
}

struct Parser {
    /// Bound on nested sub-expressions (brackets, parentheses, `if`) and on expression tree depth.
    static let maxNesting = 200
    static let maxTreeDepth = 1000

    let file: String
    let bytes: [UInt8]
    let tokens: [Token]
    var index = 0
    var nesting = 0

    init(_ text: String, file: String, schemaSyntax: Bool = false) throws(ParseError) {
        self.file = file
        (tokens, bytes) = Lexer.tokenize(text, schemaSyntax: schemaSyntax)
        try checkLexable(tokens[0])
    }

    var tok: Token { tokens[index] }

    func peek(_ n: Int = 1) -> Token { tokens[min(index + n, tokens.count - 1)] }

    mutating func advance() throws(ParseError) {
        if index < tokens.count - 1 { index += 1 }
        try checkLexable(tokens[index])
    }

    private func checkLexable(_ t: Token) throws(ParseError) {
        if t.kind == .invalid { throw invalidToken(t) }
    }

    /// The lexer's reason; only "unexpected character X" copies the source, and only when X
    /// is not one of the operator characters it suggests a fix for.
    private func invalidToken(_ t: Token) -> ParseError {
        let quotes = t.text.hasPrefix("unexpected character ") && !t.text.hasSuffix("?)")
        return ParseError(t.text, redacted: quotes ? "unexpected character" : nil, at: location(t))
    }

    func location(_ t: Token) -> SourceLocation {
        SourceLocation(file: file, line: t.line, column: t.column, offset: t.start)
    }

    /// The location of a byte inside a token (for errors within string literals).
    func location(_ t: Token, byte: Int) -> SourceLocation {
        var line = t.line, column = t.column
        var p = t.start
        while p < byte && p < bytes.count {
            if bytes[p] == 0x0A { line += 1; column = 1 } else if bytes[p] & 0xC0 != 0x80 { column += 1 }
            p += 1
        }
        return SourceLocation(file: file, line: line, column: column, offset: byte)
    }

    /// The token's class, for messages that must not copy the source: grammar words and
    /// punctuation are shown (they are the language, not the author's data), identifiers,
    /// literals and slots only by kind.
    func describeClass(_ t: Token) -> String {
        switch t.kind {
        case .eof: return "end of input"
        case .ident: return CedarNames.grammarWords.contains(t.text) ? "'\(t.text)'" : "an identifier"
        case .slot: return "a template slot"
        case .string: return "a string literal"
        case .int: return "an integer literal"
        default: return "'\(String(decoding: bytes[t.start..<t.end], as: UTF8.self))'"
        }
    }

    func describe(_ t: Token) -> String {
        switch t.kind {
        case .eof: return "end of input"
        case .ident: return "'\(t.text)'"
        case .slot: return "'?\(t.text)'"
        case .string:
            let raw = String(decoding: bytes[t.start..<t.end], as: UTF8.self)
            return raw.unicodeScalars.count > 40 ? "string \(raw.prefix(37))...\"" : "string \(raw)"
        default:
            return "'\(String(decoding: bytes[t.start..<t.end], as: UTF8.self))'"
        }
    }

    /// `redacted` is the message without what it copies from the source (see
    /// `ParseError.redacted`); leave it nil when the message copies nothing.
    func error(_ message: String, redacted: String? = nil, at t: Token) -> ParseError {
        if t.kind == .invalid { return invalidToken(t) }
        return ParseError(message, redacted: redacted, at: location(t))
    }

    func expected(_ what: String, at t: Token? = nil) -> ParseError {
        let t = t ?? tok
        return error("expected \(what) but found \(describe(t))",
                     redacted: "expected \(what) but found \(describeClass(t))", at: t)
    }

    func isWord(_ word: String) -> Bool { tok.kind == .ident && tok.text == word }

    mutating func expect(_ kind: TokenKind, _ shown: String) throws(ParseError) {
        guard tok.kind == kind else { throw expected(shown) }
        try advance()
    }

    mutating func expectWord(_ word: String) throws(ParseError) {
        guard isWord(word) else { throw expected("'\(word)'") }
        try advance()
    }

    /// The decoded value of the string literal at the cursor.
    mutating func stringValue() throws(ParseError) -> String {
        let t = tok
        guard t.kind == .string else { throw expected("a string literal") }
        let s: String
        do throws(EscapeError) {
            s = try StringLiteral.string(bytes[(t.start + 1)..<(t.end - 1)])
        } catch {
            throw ParseError(error.message, redacted: error.redacted, at: location(t, byte: t.start + 1 + error.offset))
        }
        try advance()
        return s
    }

    mutating func patternValue() throws(ParseError) -> [PatternElement] {
        let t = tok
        guard t.kind == .string else {
            throw expected("a string literal pattern after 'like'")
        }
        let p: [PatternElement]
        do throws(EscapeError) {
            p = try StringLiteral.pattern(bytes[(t.start + 1)..<(t.end - 1)])
        } catch {
            throw ParseError(error.message, redacted: error.redacted, at: location(t, byte: t.start + 1 + error.offset))
        }
        try advance()
        return p
    }

    /// Rejects reserved words and `__cedar` where the grammar wants an identifier.
    func checkIdentifier(_ t: Token, as role: String) throws(ParseError) {
        if CedarNames.reserved.contains(t.text) {
            throw error("'\(t.text)' is a reserved word and cannot be used as \(role)", at: t)
        }
        if t.text == CedarNames.cedarNamespace {
            throw error("'__cedar' is reserved and cannot be used as \(role)", at: t)
        }
    }

    /// An attribute name written as an identifier (after `.`, `has`, or as a record key).
    mutating func attributeIdentifier() throws(ParseError) -> String {
        let t = tok
        guard t.kind == .ident else { throw expected("an attribute name") }
        try checkIdentifier(t, as: "an attribute name")
        try advance()
        if tok.kind == .colonColon {
            throw error("an attribute name cannot contain '::'", at: tok)
        }
        return t.text
    }

    /// `Ident ('::' Ident)*` stopping before a `::` that is not followed by an identifier.
    mutating func pathComponents() throws(ParseError) -> [Token] {
        guard tok.kind == .ident else { throw expected("a name") }
        var parts = [tok]
        try advance()
        while tok.kind == .colonColon && peek().kind == .ident {
            try advance()
            parts.append(tok)
            try advance()
        }
        return parts
    }

    func validatedName(_ parts: [Token], as role: String) throws(ParseError) -> String {
        for p in parts { try checkIdentifier(p, as: role) }
        return parts.map(\.text).joined(separator: "::")
    }

    /// An entity type name such as `A::B::User`.
    mutating func entityTypeName() throws(ParseError) -> EntityType {
        guard tok.kind == .ident else { throw expected("an entity type name") }
        let parts = try pathComponents()
        let name = try validatedName(parts, as: "part of an entity type name")
        if tok.kind == .colonColon {
            if peek().kind == .string {
                throw error("expected an entity type name, not an entity (remove '::' and the id)", at: tok)
            }
            throw expected("an identifier after '::'", at: peek())
        }
        return EntityType(name)
    }

    /// `Path :: "id"` given its already-read path; the cursor is on the `::`.
    mutating func entityAfterPath(_ parts: [Token]) throws(ParseError) -> EntityUID {
        guard tok.kind == .colonColon else { throw expected("'::' and an entity id string") }
        try advance()
        if tok.kind == .lbrace {
            throw error("entity literals of the form Type::{...} are not supported; write Type::\"id\"", at: tok)
        }
        guard tok.kind == .string else { throw expected("an identifier or an entity id string after '::'") }
        let type = try validatedName(parts, as: "part of an entity type name")
        return EntityUID(type: EntityType(type), id: try stringValue())
    }

    /// An entity literal `A::B::"id"`.
    mutating func entityLiteral() throws(ParseError) -> EntityUID {
        guard tok.kind == .ident else { throw expected("an entity such as Type::\"id\"") }
        let parts = try pathComponents()
        return try entityAfterPath(parts)
    }

    mutating func expectEnd() throws(ParseError) {
        guard tok.kind == .eof else { throw expected("end of input") }
    }

    /// Builds a node, refusing trees deeper than `maxTreeDepth`.
    func node(_ kind: Expr.Kind, at loc: SourceLocation, _ children: ParsedExpr...) throws(ParseError) -> ParsedExpr {
        var d = 0
        for c in children where c.depth > d { d = c.depth }
        return try node(kind, at: loc, depth: d + 1)
    }

    func node(_ kind: Expr.Kind, at loc: SourceLocation, depth: Int) throws(ParseError) -> ParsedExpr {
        guard depth <= Parser.maxTreeDepth else {
            throw ParseError("expression is nested too deeply (more than \(Parser.maxTreeDepth) levels); split it up", at: loc)
        }
        return ParsedExpr(expr: Expr(kind, at: loc), depth: depth)
    }

    /// A comma-separated list ending in `close`; a trailing comma is allowed, an empty item is not.
    mutating func list<T>(until close: TokenKind, _ closeShown: String,
                          _ item: (inout Parser) throws(ParseError) -> T) throws(ParseError) -> [T] {
        var items: [T] = []
        while tok.kind != close {
            items.append(try item(&self))
            if tok.kind == .comma {
                try advance()
            } else if tok.kind != close {
                throw expected("',' or \(closeShown)")
            }
        }
        try advance()
        return items
    }
}
