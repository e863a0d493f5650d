import Cedar
import Testing

private func parse(_ s: String) throws(ParseError) -> Expr { try CedarParser.parseExpression(s, file: "t") }

struct ExpressionCase: Sendable, CustomTestStringConvertible {
    var text: String
    var expected: Expr
    init(_ text: String, _ expected: Expr) { self.text = text; self.expected = expected }
    var testDescription: String { text }
}

private let p = SX.principal, r = SX.resource, c = SX.context, a = SX.action

@Test(arguments: [
    ExpressionCase("true", SX.bool(true)),
    ExpressionCase("false", SX.bool(false)),
    ExpressionCase("principal", p), ExpressionCase("action", a), ExpressionCase("resource", r), ExpressionCase("context", c),
    ExpressionCase(#"User::"alice""#, SX.uid("User", "alice")),
    ExpressionCase(#"A::B::Type::"id\n""#, SX.uid("A::B::Type", "id\n")),
    ExpressionCase(#"principal::"x""#, SX.uid("principal", "x")),
    ExpressionCase("[]", SX.set()),
    ExpressionCase("[1, \"a\", [true],]", SX.set(SX.long(1), SX.str("a"), SX.set(SX.bool(true)))),
    ExpressionCase("{}", SX.rec()),
    ExpressionCase(#"{a: 1, "b c": principal, principal: 2,}"#, SX.rec(("a", SX.long(1)), ("b c", p), ("principal", SX.long(2)))),
    ExpressionCase(#"{"if": 1, "__cedar": 2}"#, SX.rec(("if", SX.long(1)), ("__cedar", SX.long(2)))),
    ExpressionCase("principal.name", SX.get(p, "name")),
    ExpressionCase(#"principal["first name"]["x"]"#, SX.get(SX.get(p, "first name"), "x")),
    ExpressionCase("principal.when.permit.__cedar_x", SX.get(SX.get(SX.get(p, "when"), "permit"), "__cedar_x")),
    ExpressionCase("context.contains", SX.get(c, "contains")),
    ExpressionCase("principal has name", SX.has(p, "name")),
    ExpressionCase(#"principal has "if""#, SX.has(p, "if")),
    ExpressionCase("principal has principal", SX.has(p, "principal")),
    ExpressionCase("principal has a.b.c", SX.and(SX.and(SX.has(p, "a"), SX.has(SX.get(p, "a"), "b")),
                                                 SX.has(SX.get(SX.get(p, "a"), "b"), "c"))),
    ExpressionCase("principal.x has a.b", SX.and(SX.has(SX.get(p, "x"), "a"), SX.has(SX.get(SX.get(p, "x"), "a"), "b"))),
    ExpressionCase(#"principal like "a*""#, SX.like(p, [SX.lit("a"), .wildcard])),
    ExpressionCase("principal is User", SX.isType(p, "User")),
    ExpressionCase("principal is A::User", SX.isType(p, "A::User")),
    ExpressionCase(#"principal is User in Group::"g""#, SX.isIn(p, "User", SX.uid("Group", "g"))),
    ExpressionCase("principal is User in [principal] + 1", SX.isIn(p, "User", SX.bin(.add, SX.set(p), SX.long(1)))),
    ExpressionCase("principal in resource", SX.bin(.in, p, r)),
    ExpressionCase("1 != 2", SX.bin(.neq, SX.long(1), SX.long(2))),
    ExpressionCase("1 < 2", SX.bin(.lt, SX.long(1), SX.long(2))),
    ExpressionCase("1 <= 2", SX.bin(.le, SX.long(1), SX.long(2))),
    ExpressionCase("1 > 2", SX.bin(.gt, SX.long(1), SX.long(2))),
    ExpressionCase("1 >= 2", SX.bin(.ge, SX.long(1), SX.long(2))),
    ExpressionCase("!!!!true", SX.not(SX.not(SX.not(SX.not(SX.bool(true)))))),
    ExpressionCase("----1", SX.neg(SX.neg(SX.neg(SX.long(-1))))),
    ExpressionCase("-principal.a", SX.neg(SX.get(p, "a"))),
    ExpressionCase("!principal has a", SX.has(SX.not(p), "a")),
    ExpressionCase("principal.contains(1)", SX.bin(.contains, p, SX.long(1))),
    ExpressionCase("principal.containsAll([1],)", SX.bin(.containsAll, p, SX.set(SX.long(1)))),
    ExpressionCase("principal.containsAny([])", SX.bin(.containsAny, p, SX.set())),
    ExpressionCase(#"principal.getTag("t")"#, SX.bin(.getTag, p, SX.str("t"))),
    ExpressionCase(#"principal.hasTag("t")"#, SX.bin(.hasTag, p, SX.str("t"))),
    ExpressionCase("principal.isEmpty()", SX.e(.isEmpty(p))),
    ExpressionCase(#"ip("10.0.0.1")"#, SX.call("ip", SX.str("10.0.0.1"))),
    ExpressionCase(#"decimal("1.5")"#, SX.call("decimal", SX.str("1.5"))),
    ExpressionCase(#"datetime("2024-01-01")"#, SX.call("datetime", SX.str("2024-01-01"))),
    ExpressionCase(#"duration("1h",)"#, SX.call("duration", SX.str("1h"))),
    // The reference leaves argument counts of extension calls to evaluation.
    ExpressionCase("ip()", SX.call("ip")),
    ExpressionCase(#"ip("a").isInRange(ip("b"))"#, SX.call("isInRange", SX.call("ip", SX.str("a")), SX.call("ip", SX.str("b")))),
    ExpressionCase(#"decimal("1").lessThan(decimal("2"))"#, SX.call("lessThan", SX.call("decimal", SX.str("1")), SX.call("decimal", SX.str("2")))),
    ExpressionCase(#"datetime("x").offset(duration("1h")).toDate()"#,
                   SX.call("toDate", SX.call("offset", SX.call("datetime", SX.str("x")), SX.call("duration", SX.str("1h"))))),
    ExpressionCase("context.d.toDays(1, 2)", SX.call("toDays", SX.get(c, "d"), SX.long(1), SX.long(2))),
    ExpressionCase("if true then 1 else 2", SX.ite(SX.bool(true), SX.long(1), SX.long(2))),
    ExpressionCase("if if true then true else false then 1 else 2",
                   SX.ite(SX.ite(SX.bool(true), SX.bool(true), SX.bool(false)), SX.long(1), SX.long(2))),
    ExpressionCase("[if true then 1 else 2]", SX.set(SX.ite(SX.bool(true), SX.long(1), SX.long(2)))),
    ExpressionCase("1 + (if true then 1 else 2)", SX.bin(.add, SX.long(1), SX.ite(SX.bool(true), SX.long(1), SX.long(2)))),
    ExpressionCase("{a: 1}.a", SX.get(SX.rec(("a", SX.long(1))), "a")),
    ExpressionCase(#""x".a"#, SX.get(SX.str("x"), "a")),
    ExpressionCase("1 is A", SX.isType(SX.long(1), "A")),
])
func eachConstructBuildsItsNode(_ t: ExpressionCase) throws {
    #expect(try parse(t.text) == t.expected)
}

/// Precedence, checked against the same expression with explicit parentheses.
@Test(arguments: [
    ("1 + 2 * 3", "1 + (2 * 3)"),
    ("1 * 2 + 3", "(1 * 2) + 3"),
    ("1 - 2 - 3", "(1 - 2) - 3"),
    ("1 - 2 + 3", "(1 - 2) + 3"),
    ("1 * 2 * 3", "(1 * 2) * 3"),
    ("-1 * 2", "(-1) * 2"),
    ("!true && false", "(!true) && false"),
    ("true || false && true", "true || (false && true)"),
    ("true && false || true", "(true && false) || true"),
    ("true || false || true", "(true || false) || true"),
    ("1 + 2 == 3", "(1 + 2) == 3"),
    ("1 == 2 && 3 < 4", "(1 == 2) && (3 < 4)"),
    ("principal in resource || false", "(principal in resource) || false"),
    ("principal has a && principal.a", "(principal has a) && principal.a"),
    ("principal has a || true", "(principal has a) || true"),
    (#"principal like "x" && true"#, #"(principal like "x") && true"#),
    ("principal is User && true", "(principal is User) && true"),
    ("principal is User in resource && true", "(principal is User in resource) && true"),
    ("if true then 1 else 2 == 3", "if true then 1 else (2 == 3)"),
    ("if true then 1 else 2 || 3", "if true then 1 else (2 || 3)"),
    ("if true then 1 else if false then 2 else 3", "if true then 1 else (if false then 2 else 3)"),
    ("-principal.a.b", "-(principal.a.b)"),
    ("!principal.contains(1)", "!(principal.contains(1))"),
    ("1 + -2", "1 + (-2)"),
    ("principal.a + principal.b * 2 < 10 && !context.x || context.y",
     "(((principal.a + (principal.b * 2)) < 10) && (!context.x)) || context.y"),
])
func operatorsBindWithCedarsPrecedence(_ plain: String, _ bracketed: String) throws {
    #expect(try parse(plain) == parse(bracketed))
}

@Test(arguments: [
    Rejection("1 == 2 == 3", 1, 8, "cannot be chained"),
    Rejection("1 < 2 < 3", 1, 7, "cannot be chained"),
    Rejection("principal in resource in resource", 1, 23, "cannot be chained"),
    Rejection("principal has a == true", 1, 17, "cannot be chained"),
    Rejection(#"principal like "a" like "b""#, 1, 20, "cannot be chained"),
    Rejection("principal is A is B", 1, 16, "cannot be chained"),
    Rejection("principal is A in resource in resource", 1, 28, "cannot be chained"),
    Rejection("1 = 1", 1, 3, "'=' is not an operator"),
    Rejection("1 + if true then 1 else 2", 1, 5, "wrapped in parentheses"),
    Rejection("true && if true then 1 else 2", 1, 9, "wrapped in parentheses"),
    Rejection("-if true then 1 else 2", 1, 2, "wrapped in parentheses"),
    Rejection("if true then 1", 1, 15, "expected 'else' but found end of input"),
    Rejection("if true 1 else 2", 1, 9, "expected 'then' but found '1'"),
    Rejection("!!!!!true", 1, 1, "too many '!'"),
    Rejection("-----1", 1, 1, "too many '-'"),
    Rejection("!-1", 1, 2, "cannot be combined"),
    Rejection("-!true", 1, 2, "cannot be combined"),
    Rejection("foo", 1, 1, "unknown variable 'foo'"),
    Rejection("foo::bar", 1, 1, "unknown variable 'foo::bar'"),
    Rejection("principal.if", 1, 11, "'if' is a reserved word"),
    Rejection("principal.in", 1, 11, "'in' is a reserved word"),
    Rejection("principal.true", 1, 11, "reserved word"),
    Rejection("principal.__cedar", 1, 11, "'__cedar' is reserved"),
    Rejection("principal has then", 1, 15, "reserved word"),
    Rejection("principal has a.is", 1, 17, "reserved word"),
    Rejection("principal has a::b", 1, 16, "cannot contain '::'"),
    Rejection(#"principal has "a".b"#, 1, 18, "expected end of input but found '.'"),
    Rejection("principal has a.b()", 1, 18, "expected end of input but found '('"),
    Rejection(#"principal has a["b"]"#, 1, 16, "expected end of input but found '['"),
    Rejection("principal has (a)", 1, 15, "expected an attribute name or string after 'has'"),
    Rejection("principal has 1", 1, 15, "expected an attribute name or string after 'has'"),
    Rejection(#"principal like ("a")"#, 1, 16, "expected a string literal pattern"),
    Rejection("principal like principal", 1, 16, "expected a string literal pattern"),
    Rejection(#"principal is "User""#, 1, 14, "expected an entity type name"),
    Rejection(#"principal is User::"a""#, 1, 18, "not an entity"),
    Rejection("principal is (User)", 1, 14, "expected an entity type name"),
    Rejection("principal is in", 1, 14, "reserved word"),
    Rejection("principal is A::__cedar", 1, 17, "'__cedar' is reserved"),
    Rejection(#"if::"a""#, 1, 3, "expected an expression but found '::'"),
    Rejection(#"[if::"a"]"#, 1, 4, "expected an expression but found '::'"),
    Rejection(#"1 + if::"a""#, 1, 5, "wrapped in parentheses"),
    Rejection(#"true::"a""#, 1, 5, "expected end of input but found '::'"),
    Rejection(#"A::in::"a""#, 1, 4, "reserved word"),
    Rejection(#"__cedar::"a""#, 1, 1, "'__cedar' is reserved"),
    Rejection(#"A::{a: 1}"#, 1, 4, "not supported"),
    Rejection("{if: 1}", 1, 2, "reserved word"),
    Rejection("{__cedar: 1}", 1, 2, "'__cedar' is reserved"),
    Rejection("{a::b: 1}", 1, 3, "cannot contain '::'"),
    Rejection("{1: 2}", 1, 2, "expected a record key"),
    Rejection(#"{a: 1, "a": 2}"#, 1, 8, "duplicate key \"a\""),
    Rejection("{a}", 1, 3, "expected ':'"),
    Rejection("{,}", 1, 2, "expected a record key"),
    Rejection("[,]", 1, 2, "expected an expression"),
    Rejection("[1,,2]", 1, 4, "expected an expression"),
    Rejection("[1 2]", 1, 4, "expected ',' or ']'"),
    Rejection("principal[1]", 1, 11, "string literal attribute name"),
    Rejection(#"principal["a","b"]"#, 1, 14, "expected ']'"),
    Rejection("principal[]", 1, 11, "string literal attribute name"),
    Rejection("principal.contains()", 1, 11, "'contains' takes exactly 1 argument but was given 0"),
    Rejection("principal.contains(1, 2)", 1, 11, "takes exactly 1 argument but was given 2"),
    Rejection("principal.isEmpty(1)", 1, 11, "'isEmpty' takes exactly 0 arguments"),
    Rejection("principal.hasTag()", 1, 11, "'hasTag' takes exactly 1 argument"),
    Rejection("principal.foo()", 1, 11, "'foo' is not a Cedar method"),
    Rejection("principal.ip(1)", 1, 11, "'ip' is a function, not a method"),
    Rejection("principal.if(1)", 1, 11, "reserved word"),
    Rejection("foo(1)", 1, 1, "'foo' is not a Cedar function"),
    Rejection(#"A::ip("a")"#, 1, 1, "'A::ip' is not a Cedar function"),
    Rejection("lessThan(1, 2)", 1, 1, "'lessThan' is a method, not a function"),
    Rejection("contains(1)", 1, 1, "is a method, not a function"),
    Rejection("principal(1)", 1, 1, "'principal' is a variable and cannot be called"),
    Rejection(#"(ip)("a")"#, 1, 2, "unknown variable 'ip'"),
    Rejection(#"ip("a")(1)"#, 1, 8, "expected end of input but found '('"),
    Rejection("ip(,)", 1, 4, "expected an expression"),
    Rejection("?principal", 1, 1, "only appear in the policy scope"),
    Rejection("principal == ?resource", 1, 14, "only appear in the policy scope"),
    Rejection("?foo", 1, 1, "'?foo' is not a template slot"),
    Rejection("1abc", 1, 2, "expected end of input but found 'abc'"),
    Rejection("(1", 1, 3, "expected ')' but found end of input"),
    Rejection("", 1, 1, "expected an expression but found end of input"),
    Rejection("principal.", 1, 11, "expected an attribute or method name"),
    Rejection("principal has", 1, 14, "expected an attribute name or string"),
    Rejection("1 +\n  * 2", 2, 3, "expected an expression but found '*'"),
])
func malformedExpressionsReportWhereAndWhat(_ r: Rejection) throws {
    let error = try #require(parseError { () throws(ParseError) in try parse(r.text) })
    #expect(error.location.line == r.line, "\(error)")
    #expect(error.location.column == r.column, "\(error)")
    #expect(error.message.contains(r.says), "\(error)")
}

@Test func locationsCountLinesAndUnicodeScalars() throws {
    let e = try CedarParser.parseExpression("\n  \"é😀\" ==\n\t principal", file: "x.cedar")
    guard case .binary(.eq, let l, let rhs) = e.kind else { Issue.record("\(e.kind)"); return }
    #expect(l.location == SourceLocation(file: "x.cedar", line: 2, column: 3, offset: 3))
    #expect(rhs.location == SourceLocation(file: "x.cedar", line: 3, column: 3, offset: 17))
    let error = try #require(parseError { () throws(ParseError) in
        try CedarParser.parseExpression("\"é😀\" == é", file: "x.cedar")
    })
    #expect(error.description == "x.cedar:1:9: unexpected character 'é' (U+00E9)")
}
