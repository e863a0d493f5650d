import CustosJSON
import Testing

/// `redactedMessage` keeps jansson's reason and line:col but never the input it quotes, and a
/// byte-order mark gets its own message.
@Test("a redacted parse error names the token's class, never the token", arguments: [
    ("root:$6$S3CR3T:19000", "invalid token at a bare word"),
    ("[1, S3CR3T]", "invalid token at a bare word"),
    ("{\"S3CR3T\" 1}", "':' expected at a number"),
    ("[\"S3CR3T\u{1}\"]", "control character in a string at a string"),
    ("{\"k\": \"S3CR3T", "premature end of input at a string"),
    ("[1e99999]", "real number overflow at a number"),
    ("{\"S3CR3T\":1,\"S3CR3T\":2}", "duplicate object key at a string"),
    ("[\"\\uDC00S3CR3T\"]", "invalid Unicode escape at a string"),
    ("[\"\\qS3CR3T\"]", "invalid escape at a string"),
    ("[1,]", "unexpected token at ']'"),
    ("[1 S3CR3T]", "']' expected at a bare word"),
    ("[1] S3CR3T", "end of file expected at a bare word"),
    ("\u{20AC}S3CR3T", "invalid token at an unexpected character"),
])
func redactedMessagesQuoteNothing(input: String, expected: String) {
    do {
        _ = try JSON.parse(input)
        Issue.record("parsed \(input.debugDescription)")
    } catch {
        #expect(error.redactedMessage == expected, "\(error.message)")
        #expect(!error.redactedMessage.contains("S3CR3T") && !error.redactedMessage.contains("root"))
        #expect(error.line == 1 && error.column > 0)
    }
}

@Test func invalidUTF8IsNamedWithoutTheByte() {
    do {
        _ = try JSON.parse([UInt8(ascii: "["), UInt8(ascii: "\""), 0xFF, UInt8(ascii: "\""), UInt8(ascii: "]")])
        Issue.record("parsed invalid UTF-8")
    } catch {
        #expect(error.redactedMessage == "invalid UTF-8 at a string", "\(error.message)")
    }
}

@Test func aByteOrderMarkIsRefusedSayingSo() {
    do {
        _ = try JSON.parse([0xEF, 0xBB, 0xBF] + Array("[]".utf8))
        Issue.record("parsed a text starting with a byte-order mark")
    } catch {
        #expect(error.message == JSON.byteOrderMarkMessage)
        #expect(error.redactedMessage == JSON.byteOrderMarkMessage)
        #expect(error.line == 1 && error.column == 1)
    }
}
