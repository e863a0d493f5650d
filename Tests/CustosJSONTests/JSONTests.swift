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
