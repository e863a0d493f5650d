/// The entry points to Cedar's text syntax. Every function reports the first problem as a
/// `ParseError` with its file, line and column; none of them traps on any input.
public enum CedarParser {
    /// All policies in a text, in file order. `file` is used in locations.
    public static func parsePolicies(_ text: String, file: String) throws(ParseError) -> [PolicyAST] {
        var p = try Parser(text, file: file)
        return try p.policies()
    }

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
