/// The entry points to Cedar's text syntax. Every function reports the first problem as a
/// `ParseError` with its file, line and column; none of them traps on any input.
public enum CedarParser {
    /// All policies in a text, in file order. `file` is used in locations.
    ///
    /// A text that starts with a UTF-8 byte-order mark is refused, as the reference engine
    /// does: every loader gives the same verdict on such a file (see docs/cedar.md).
    public static func parsePolicies(_ text: String, file: String) throws(ParseError) -> [PolicyAST] {
        if text.unicodeScalars.first == byteOrderMark {
            throw ParseError(byteOrderMarkMessage, at: SourceLocation(file: file, line: 1, column: 1, offset: 0))
        }
        var p = try Parser(text, file: file)
        return try p.policies()
    }

    static let byteOrderMark: Unicode.Scalar = "\u{FEFF}"
    public static let byteOrderMarkMessage =
        "the file starts with a UTF-8 byte-order mark (EF BB BF); save it as UTF-8 without a BOM"

    /// A single expression (used by tests and tools).
    public static func parseExpression(_ text: String, file: String) throws(ParseError) -> Expr {
        var p = try Parser(text, file: file)
        let e = try p.expression()
        try p.expectEnd()
        return e.expr
    }

    /// `Type::"id"` or `A::B::Type::"id"`, e.g. from a command-line flag.
    public static func parseEntityUID(_ text: String) throws(ParseError) -> EntityUID {
        var p = try Parser(text, file: "<entity>")
        let uid = try p.entityLiteral()
        try p.expectEnd()
        return uid
    }

    /// A (possibly namespaced) name such as `A::B::User`, validated as Cedar identifiers.
    public static func parseName(_ text: String) throws(ParseError) -> EntityType {
        var p = try Parser(text, file: "<name>")
        let name = try p.entityTypeName()
        try p.expectEnd()
        return name
    }
}
