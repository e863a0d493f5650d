import Cedar
import Testing

/// A policy set exercising most of the grammar; no string or comment holds a space, so cutting
/// it at a space always leaves a truncated token sequence.
private let realistic = """
    @id("p0") @advice
    permit (
      principal in Clinic::Team::"cardiology",
      action in [Action::"view", Clinic::Action::"edit",],
      resource is Clinic::Record in Clinic::Site::"north"
    ) when {
      context.time.hour >= 8 && context.time.hour < -18 * 2 + 1 ||
      (principal has profile.role && principal.profile.role like "nurse*\\*") // note
    } unless {
      if resource.tags.containsAny(["secret"]) then !(resource.owner == principal) else false
    };
    forbid (principal == ?principal, action, resource is R in ?resource)
    when { ip(context.addr).isInRange(ip("10.0.0.0/8")) && {a: [1, "x"], "b": decimal("1.5")}.a.isEmpty() };
    """

@Test func theRealisticPolicySetParses() throws {
    let ps = try CedarParser.parsePolicies(realistic, file: "r.cedar")
    #expect(ps.count == 2)
    #expect(ps[1].isTemplate)
}

@Test func everyPrefixParsesOrFailsInsideTheText() {
    let scalars = Array(realistic.unicodeScalars)
    for n in 0...scalars.count {
        var prefix = ""
        prefix.unicodeScalars.append(contentsOf: scalars[0..<n])
        do {
            _ = try CedarParser.parsePolicies(prefix, file: "p")
        } catch {
            #expect(error.location.offset <= prefix.utf8.count, "\(n): \(error)")
            #expect(error.location.line >= 1 && error.location.column >= 1)
        }
    }
}

@Test func inputCutAtASpaceFailsAtEndOfInput() {
    let scalars = Array(realistic.unicodeScalars)
    var cuts = 0
    for (n, s) in scalars.enumerated() where s == " " || s == "\n" {
        var prefix = ""
        prefix.unicodeScalars.append(contentsOf: scalars[0..<n])
        do {
            _ = try CedarParser.parsePolicies(prefix, file: "p")
            // Only the cut right after the first policy's ';' is itself complete.
            #expect(prefix.hasSuffix("};"), "\(n) parsed")
        } catch {
            cuts += 1
            #expect(error.location.offset == prefix.utf8.count, "\(n): \(error)")
            #expect(error.message.hasSuffix("but found end of input"), "\(n): \(error)")
        }
    }
    #expect(cuts > 50)
}

@Test(arguments: [
    ("(", "1", ")"), ("[", "1", "]"), ("{a: ", "1", "}"), ("!(", "true", ")"), ("-(", "1", ")"),
    ("if true then ", "1", " else 1"), ("ip(", "\"x\"", ")"), ("principal.contains(", "1", ")"),
])
func deepNestingIsRefusedWithAClearError(_ open: String, _ inner: String, _ close: String) throws {
    for depth in [10_000, 300] {
        let text = String(repeating: open, count: depth) + inner + String(repeating: close, count: depth)
        let error = try #require(parseError { () throws(ParseError) in try CedarParser.parseExpression(text, file: "d") })
        #expect(error.message.contains("nested too deeply"), "\(error)")
    }
    let fine = String(repeating: open, count: 150) + inner + String(repeating: close, count: 150)
    _ = try CedarParser.parseExpression(fine, file: "d")
}

/// Long operator chains and member paths build deep trees without recursion in the parser;
/// their depth is bounded so later recursive passes cannot overflow either.
@Test(arguments: [" + 1", " || true", " * 2", ".a", "[\"a\"]", ".contains(1)"])
func longChainsAreBoundedByTreeDepth(_ link: String) throws {
    let long = "1" + String(repeating: link, count: 50_000)
    let error = try #require(parseError { () throws(ParseError) in try CedarParser.parseExpression(long, file: "c") })
    #expect(error.message.contains("nested too deeply"), "\(error)")
    _ = try CedarParser.parseExpression("1" + String(repeating: link, count: 500), file: "c")
}

@Test func longHasPathsAreBounded() throws {
    let long = "principal has " + Array(repeating: "a", count: 5_000).joined(separator: ".")
    let error = try #require(parseError { () throws(ParseError) in try CedarParser.parseExpression(long, file: "h") })
    #expect(error.message.contains("nested too deeply"))
    _ = try CedarParser.parseExpression("principal has " + Array(repeating: "a", count: 50).joined(separator: "."), file: "h")
}

/// Random token soup and random scalars: each input either parses or throws a located error.
@Test func garbageNeverCrashes() {
    let pieces = ["permit", "forbid", "(", ")", "{", "}", "[", "]", ",", ";", ":", "::", ".", "==", "!=", "<", "<=",
                  "&&", "||", "+", "-", "*", "!", "@id", "if", "then", "else", "in", "is", "like", "has", "true",
                  "principal", "action", "resource", "context", "when", "unless", "?principal", "?resource", "\"s\"",
                  "\"\\", "\"", "1", "9223372036854775808", "A", "Action", "ip", "contains", "//", "\n", " ", "é",
                  "\u{0}", "\u{1F600}", "\u{2028}", "=", "&", "|", "?", "\\", "'", "/", "\r"]
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    func next() -> Int {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int(truncatingIfNeeded: state >> 33)
    }
    for _ in 0..<3_000 {
        var text = ""
        for _ in 0..<(next() % 40) {
            if next() % 10 == 0 {
                text.unicodeScalars.append(Unicode.Scalar(UInt32(next() % 0xD000)) ?? "x")
            } else {
                text += pieces[next() % pieces.count]
            }
        }
        do {
            _ = try CedarParser.parsePolicies(text, file: "g")
            _ = try CedarParser.parseExpression(text, file: "g")
        } catch {
            #expect(error.location.offset <= text.utf8.count)
        }
    }
}

/// Wide input (many annotations, elements, keys or policies) is handled in linear time.
@Test func wideInputsParse() throws {
    let annotations = (0..<20_000).map { "@k\($0)(\"v\")" }.joined(separator: " ")
    let p = try CedarParser.parsePolicies(annotations + " permit(principal, action, resource);", file: "w")
    #expect(p.first?.annotations.count == 20_000)

    let elements = "[" + (0..<100_000).map(String.init).joined(separator: ",") + "]"
    guard case .set(let xs) = try CedarParser.parseExpression(elements, file: "w").kind else {
        Issue.record("not a set"); return
    }
    #expect(xs.count == 100_000)

    let record = "{" + (0..<20_000).map { "k\($0): \($0)" }.joined(separator: ",") + "}"
    guard case .record(let entries) = try CedarParser.parseExpression(record, file: "w").kind else {
        Issue.record("not a record"); return
    }
    #expect(entries.count == 20_000)

    let many = String(repeating: "forbid(principal, action, resource) when { context.x };\n", count: 20_000)
    #expect(try CedarParser.parsePolicies(many, file: "w").count == 20_000)
}
