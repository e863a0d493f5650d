import Testing
import CustosJSON

@Test func integersAndRealsStayDistinct() throws {
    #expect(try JSON.parse("1") == .int(1))
    #expect(try JSON.parse("1.0") == .double(1.0))
    #expect(try JSON.parse("-9223372036854775808") == .int(Int64.min))
}

@Test func duplicateKeysAreRejected() {
    #expect(throws: JSONParseError.self) { try JSON.parse(#"{"a":1,"a":2}"#) }
}

@Test(arguments: ["", "{", "[1,", "nul", "{\"a\":}", "1 2", "\u{FF}"])
func malformedInputThrowsWithLocation(_ text: String) {
    do {
        _ = try JSON.parse(text)
        Issue.record("expected an error for \(text.debugDescription)")
    } catch {
        #expect(!error.message.isEmpty)
    }
}

@Test func stringsMayHoldNUL() throws {
    #expect(try JSON.parse(#""a\u0000b""#) == .string("a\u{0}b"))
}

@Test func objectKeysCompareByScalars() throws {
    let v = try JSON.parse("{\"\u{E9}\":1,\"e\u{301}\":2}")
    #expect(v["\u{E9}"] == .int(1))
    #expect(v["e\u{301}"] == .int(2))
}

@Test(arguments: [
    #"{"a":[1,2.5,"x\n\"\u0001",true,false,null],"b":{}}"#,
    #"[-9223372036854775808,9223372036854775807,0]"#,
    #""\u007f\u00e9\ud83d\ude00""#,
])
func writerOutputReadsBackIdentically(_ text: String) throws {
    let v = try JSON.parse(text)
    #expect(try JSON.parse(v.serialized) == v)
}

@Test(arguments: [
    (#"{"a\u0000b":1,"a\u0000c":2}"#, ["a\u{0}b", "a\u{0}c"]),
    (#"{"\u0000":"\u0000x"}"#, ["\u{0}"]),
    ("{\"\\udbff\\udfff\":1,\"\\u0000\":2}", ["\u{10FFFF}", "\u{0}"]),
    ("{\"\u{10FFFF}0\":1,\"\\u0000\":2}", ["\u{10FFFF}0", "\u{0}"]),
    (#"{"\\u0000":1,"\u0000":2}"#, ["\\u0000", "\u{0}"]),
])
func objectKeysMayHoldNULAndStayDistinct(_ text: String, _ keys: [String]) throws {
    guard case .object(let o) = try JSON.parse(text) else { Issue.record("not an object"); return }
    #expect(o.keys.map { Array($0.unicodeScalars) } == keys.map { Array($0.unicodeScalars) })
}

@Test func duplicateKeysWithNULAreStillRejected() {
    #expect(throws: JSONParseError.self) { try JSON.parse(#"{"\u0000":1,"\u0000":2}"#) }
}

@Test func nulInValuesSurvivesTheKeyRewrite() throws {
    let v = try JSON.parse(#"{"k\u0000":"v\u0000\udbff\udfff"}"#)
    #expect(Array(v["k\u{0}"]!.stringValue!.unicodeScalars) == Array("v\u{0}\u{10FFFF}".unicodeScalars))
}

@Test func everyASCIICharacterAndMultibyteTextSurviveTheWriter() throws {
    let all = String(decoding: (0..<128).map { UInt8($0) }, as: UTF8.self) + "é\u{10FFFF}😀 \u{2028} end"
    let written = JSON.string(all).serialized
    #expect(!written.utf8.contains { $0 < 0x20 })
    #expect(try JSON.parse(written) == .string(all))
}
