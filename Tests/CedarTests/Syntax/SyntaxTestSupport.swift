import Testing
import Cedar

/// Builders for expected ASTs. Locations are ignored by `Expr ==`, so one placeholder serves.
enum SX {
    static let nowhere = SourceLocation(file: "expected", line: 1, column: 1, offset: 0)
    static func e(_ k: Expr.Kind) -> Expr { Expr(k, at: nowhere) }

    static func long(_ n: Int64) -> Expr { e(.long(n)) }
    static func str(_ s: String) -> Expr { e(.string(s)) }
    static func bool(_ b: Bool) -> Expr { e(.bool(b)) }
    static func v(_ x: Variable) -> Expr { e(.variable(x)) }
    static let principal = v(.principal), action = v(.action), resource = v(.resource), context = v(.context)
    static func uid(_ t: String, _ id: String) -> Expr { e(.entity(EntityUID(t, id))) }
    static func bin(_ op: BinaryOp, _ l: Expr, _ r: Expr) -> Expr { e(.binary(op, l, r)) }
    static func and(_ l: Expr, _ r: Expr) -> Expr { e(.and(l, r)) }
    static func or(_ l: Expr, _ r: Expr) -> Expr { e(.or(l, r)) }
    static func not(_ x: Expr) -> Expr { e(.not(x)) }
    static func neg(_ x: Expr) -> Expr { e(.negate(x)) }
    static func get(_ x: Expr, _ a: String) -> Expr { e(.getAttr(x, a)) }
    static func has(_ x: Expr, _ a: String) -> Expr { e(.hasAttr(x, a)) }
    static func like(_ x: Expr, _ p: [PatternElement]) -> Expr { e(.like(x, p)) }
    static func isType(_ x: Expr, _ t: String) -> Expr { e(.isType(x, EntityType(t))) }
    static func isIn(_ x: Expr, _ t: String, _ r: Expr) -> Expr { e(.isTypeIn(x, EntityType(t), r)) }
    static func ite(_ c: Expr, _ t: Expr, _ f: Expr) -> Expr { e(.ifThenElse(c, t, f)) }
    static func set(_ xs: Expr...) -> Expr { e(.set(xs)) }
    static func rec(_ kv: (String, Expr)...) -> Expr { e(.record(kv.map { RecordEntry(key: $0.0, value: $0.1) })) }
    static func call(_ n: String, _ xs: Expr...) -> Expr { e(.call(n, xs)) }
    static func lit(_ s: String) -> PatternElement { .literal(Array(s.unicodeScalars)) }
}

/// One input that must be rejected: where, and a fragment of what the message says.
struct Rejection: Sendable, CustomTestStringConvertible {
    var text: String
    var line: Int
    var column: Int
    var says: String
    init(_ text: String, _ line: Int, _ column: Int, _ says: String) {
        self.text = text; self.line = line; self.column = column; self.says = says
    }
    var testDescription: String { text.debugDescription }
}

/// The error `body` throws, or nil (recorded as a failure by the callers' `#require`).
func parseError<T>(_ body: () throws(ParseError) -> T) -> ParseError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error
    }
}
