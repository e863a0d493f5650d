import Cedar
import Testing

/// String escapes follow Rust (as the reference implementation does).
@Test(arguments: [
    (#""plain""#, "plain"),
    (#""""#, ""),
    (#""\n\r\t\\\0\'\"""#, "\n\r\t\\\0'\""),
    (#""\x41\x7f""#, "A\u{7F}"),
    (#""\u{41}\u{1F600}\u{10FFFF}""#, "A\u{1F600}\u{10FFFF}"),
    (#""\u{1_F6_00_}""#, "\u{1F600}"),
    (#""\u{000041}""#, "A"),
    ("\"tab\there\"", "tab\there"),
    ("\"two\nlines\"", "two\nlines"),
    (#""é€😀 e\u{301}""#, "é€😀 e\u{301}"),
    ("\"*\"", "*"),
])
func stringLiteralsDecodeEscapes(_ source: String, _ value: String) throws {
    let e = try CedarParser.parseExpression(source, file: "t")
    guard case .string(let s) = e.kind else { Issue.record("not a string: \(e.kind)"); return }
    #expect(s.scalarsForTest == value.scalarsForTest)
}

@Test(arguments: [
    #""\q""#, #""\*""#, #""\x80""#, #""\x4""#, #""\xG1""#, #""\X41""#, #""\u1234""#, #""\u{}""#,
    #""\u{_1}""#, #""\u{1234567}""#, #""\u{0_0_0_0_0_4_1}""#, #""\u{D800}""#, #""\u{110000}""#,
    #""\u{41""#, #""\u{zz}""#, "\"a\rb\"", "\"a\\\nb\"", "\"unterminated", "'single'",
])
func invalidStringLiteralsAreRejected(_ source: String) throws {
    let error = try #require(parseError { () throws(ParseError) in try CedarParser.parseExpression(source, file: "t") })
    #expect(error.location.line == 1)
    #expect(error.location.column >= 1)
}

@Test func escapeErrorsPointAtTheBackslash() throws {
    let error = try #require(parseError { () throws(ParseError) in
        try CedarParser.parseExpression("\"ab\\qc\"", file: "f.cedar")
    })
    #expect(error.location.column == 4)
    #expect(error.message.contains("`\\q` is not a valid escape"))
}

@Test(arguments: [
    (#""abc""#, [SX.lit("abc")]),
    (#""""#, []),
    (#""a*b""#, [SX.lit("a"), .wildcard, SX.lit("b")]),
    (#""**""#, [.wildcard, .wildcard]),
    (#""a\*b""#, [SX.lit("a*b")]),
    (#""\\*""#, [SX.lit("\\"), .wildcard]),
    // A star written as an escape code is still a wildcard, as in the reference.
    (#""\u{2a}\x2a""#, [.wildcard, .wildcard]),
    (#""\n\t""#, [SX.lit("\n\t")]),
] as [(String, [PatternElement])])
func likePatternsSeparateWildcardsFromEscapedStars(_ pattern: String, _ elements: [PatternElement]) throws {
    let e = try CedarParser.parseExpression("principal like \(pattern)", file: "t")
    #expect(e == SX.like(SX.principal, elements))
}

@Test(arguments: [
    ("0", 0), ("007", 7), ("9223372036854775807", Int64.max),
    ("-9223372036854775808", Int64.min), ("- 9223372036854775808", Int64.min), ("-1", -1),
] as [(String, Int64)])
func integerLiteralsCoverTheSigned64BitRange(_ source: String, _ value: Int64) throws {
    #expect(try CedarParser.parseExpression(source, file: "t") == SX.long(value))
}

@Test func negationFoldsOnlyIntoTheInnermostBareLiteral() throws {
    let parse = { (s: String) throws(ParseError) in try CedarParser.parseExpression(s, file: "t") }
    #expect(try parse("--9223372036854775808") == SX.neg(SX.long(.min)))
    #expect(try parse("- - 1") == SX.neg(SX.long(-1)))
    #expect(try parse("-(1)") == SX.neg(SX.long(1)))
    #expect(try parse("-1.a") == SX.neg(SX.get(SX.long(1), "a")))
    #expect(try parse("2 - -3") == SX.bin(.sub, SX.long(2), SX.long(-3)))
}

@Test(arguments: [
    Rejection("9223372036854775808", 1, 1, "out of the 64-bit range"),
    Rejection("-9223372036854775809", 1, 2, "out of the 64-bit range"),
    Rejection("1 + 99999999999999999999999", 1, 5, "out of the 64-bit range"),
    Rejection("-(9223372036854775808)", 1, 3, "out of the 64-bit range"),
    Rejection("-9223372036854775808.a", 1, 2, "out of the 64-bit range"),
])
func integerLiteralsOutsideTheRangeAreErrors(_ r: Rejection) throws {
    let error = try #require(parseError { () throws(ParseError) in try CedarParser.parseExpression(r.text, file: "t") })
    #expect(error.location.line == r.line)
    #expect(error.location.column == r.column)
    #expect(error.message.contains(r.says))
}

@Test(arguments: [
    "principal // comment\n== // more\n principal",
    "principal\u{A0}==\u{2028}principal",
    "principal\u{3000}==\u{85}\u{B}\u{C}principal",
    "principal == principal // to the end",
    "principal == // comment ends at a carriage return\rprincipal",
])
func commentsAndUnicodeWhitespaceSeparateTokens(_ source: String) throws {
    #expect(try CedarParser.parseExpression(source, file: "t") == SX.bin(.eq, SX.principal, SX.principal))
}

@Test(arguments: ["principal\u{200B}== principal", "principal.\u{E9}", "principal /* c */", "1 & 2", "1 | 2", "? principal"])
func charactersOutsideTheGrammarAreErrors(_ source: String) throws {
    let error = try #require(parseError { () throws(ParseError) in try CedarParser.parseExpression(source, file: "t") })
    #expect(!error.message.isEmpty)
}

extension String {
    var scalarsForTest: [UInt32] { unicodeScalars.map(\.value) }
}

@Test(arguments: [
    ("principal\u{200B}", "unexpected character U+200B"),
    ("\u{FEFF}principal", "unexpected character U+FEFF"),
    ("principal\u{0}", "unexpected character U+0000"),
    ("principal #", "unexpected character '#'"),
    ("principal \u{3B1}", "unexpected character 'α' (U+03B1)"),
])
func unexpectedCharactersAreNamedVisibly(_ source: String, _ message: String) throws {
    let error = try #require(parseError { () throws(ParseError) in try CedarParser.parseExpression(source, file: "t") })
    #expect(error.message == message)
}
