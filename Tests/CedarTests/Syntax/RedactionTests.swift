import Cedar
import CustosTestSupport
import Foundation
import Testing

/// `ParseError.redactedDescription` keeps the location and the grammar but names what the
/// author wrote only by its class, so a daemon can report a file it failed to parse without
/// copying it (docs/security.md, "Authoring mistakes").
@Test("a redacted policy parse error names token classes, never the source", arguments: [
    ("root:$6$S3CR3T:19000", "expected 'permit', 'forbid' or '@' but found an identifier"),
    ("\u{20AC}S3CR3T", "unexpected character"),
    ("permit(principal, action, resource) when { S3CR3T };", "unknown variable (expected principal, action, resource or context)"),
    ("permit(principal, action, resource) when { principal.S3CR3T(1) };", "an identifier that is not a Cedar method"),
    ("permit(principal, action, resource) when { S3CR3T(1) };", "an identifier that is not a Cedar function (expected ip, decimal, datetime or duration)"),
    ("permit(principal, action, resource) when { \"S3CR3T\\q\" };", "not a valid escape (use \\n \\r \\t \\\\ \\0 \\' \\\" \\xHH or \\u{HHHHHH})"),
    ("permit(principal, action, resource) when { \"S3CR3T\" S3CR3T };", "expected '}' but found an identifier"),
    ("permit(principal, action, resource) when { 1 \"S3CR3T\" };", "expected '}' but found a string literal"),
    ("permit(principal, action, resource) when { 99999999999999999999 };", "integer literal is out of the 64-bit range"),
    ("@S3CR3T(\"a\") @S3CR3T(\"b\") permit(principal, action, resource);", "duplicate annotation on one policy"),
    ("permit(principal, action == S3CR3T::\"x\", resource);", "the action scope needs an entity of type Action (or Namespace::Action)"),
    ("permit(principal, action, resource) when { { S3CR3T: 1, S3CR3T: 2 } };", "duplicate key in record literal"),
    ("permit(principal == ?S3CR3T, action, resource);", "expected an entity or ?principal here but found another template slot"),
    ("permit(principal, action, resource) when { ?S3CR3T };", "not a template slot (use ?principal or ?resource)"),
    ("permit(principal, action, resource) whenS3CR3T { true };", "expected 'when', 'unless' or ';' but found an identifier"),
])
func redactedParseErrors(text: String, expected: String) throws {
    let error = try #require(parseError { () throws(ParseError) in try CedarParser.parsePolicies(text, file: "p.cedar") })
    #expect(error.redacted == expected, "\(error.message)")
    #expect(error.redactedDescription.hasPrefix("p.cedar:1:"))
    #expect(!error.redactedDescription.contains("S3CR3T"))
}

@Test("grammar words and punctuation stay in the redacted message", arguments: [
    ("permit(principal, action, resource) when { true }", "after the condition"),
    ("permit(principal, action, resource) when ( true );", "expected '{' but found '('"),
    ("permit(action, principal, resource);", "found 'action' where 'principal' must come"),
])
func grammarStaysReadable(text: String, says: String) throws {
    let error = try #require(parseError { () throws(ParseError) in try CedarParser.parsePolicies(text, file: "p.cedar") })
    #expect(error.redactedDescription.contains(says), "\(error.redactedDescription)")
}

@Test func aByteOrderMarkIsRefusedByTheParserAndByPolicySetLoad() throws {
    let text = "\u{FEFF}permit(principal, action, resource);"
    let error = try #require(parseError { () throws(ParseError) in try CedarParser.parsePolicies(text, file: "p.cedar") })
    #expect(error.description == "p.cedar:1:1: " + CedarParser.byteOrderMarkMessage)
    let dir = Scratch.directory("cedar-bom")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try Data([0xEF, 0xBB, 0xBF] + Array("permit(principal, action, resource);".utf8)).write(to: URL(fileURLWithPath: dir + "/a.cedar"))
    for path in [dir, dir + "/a.cedar"] {
        do {
            _ = try PolicySet.load(path: path)
            Issue.record("\(path): loaded a policy file starting with a byte-order mark")
        } catch {
            #expect(error.description.contains(CedarParser.byteOrderMarkMessage), "\(error)")
        }
    }
}
