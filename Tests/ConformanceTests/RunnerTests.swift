import Testing
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import CustosJSON
import Conformance

/// The runner against a stand-in environment: what it reports for each kind of mistake.
struct RunnerTests {
    /// Answers `decide` with allow by policy "p-allow" when the principal is alice, else deny
    /// with a residency code; `place` allows node a only.
    static func environment(_ suite: Suite) throws(SuiteError) -> SuiteEnvironment {
        if suite.policies.hasSuffix("broken") { throw SuiteError(file: suite.policies + "/x.cedar", path: "3:7", "expected ';'") }
        return SuiteEnvironment(policyNames: ["p-allow", "p-never"]) { method, params in
            switch method {
            case "decide":
                if params["principal"]?["id"]?.stringValue == "alice" {
                    return .result(try! JSON.parse(#"{"decision":"allow","reasons":["p-allow"],"errors":[],"obligations":[{"type":"transfer_basis","basis":"adequacy:CH"}]}"#))
                }
                return .result(try! JSON.parse(#"{"decision":"deny","reasons":[{"guardrail":"residency","code":"residency.cross_border","message":"no"}],"errors":[]}"#))
            case "place":
                return .result(try! JSON.parse(#"{"allowed":["a"],"rejected":{"b":[{"guardrail":"residency","code":"residency.cross_border","message":"x"}]}}"#))
            default:
                return .error(code: -32601, message: "method not found: \(method)")
            }
        }
    }

    static let codes = ["residency.cross_border", "consent.missing"]

    func write(_ text: String, name: String = "suite.json") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("custos-conf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let f = dir.appendingPathComponent(name)
        try text.write(to: f, atomically: true, encoding: .utf8)
        return f.path
    }

    func run(_ suite: String, filter: String? = nil) throws -> RunReport {
        ConformanceRunner.run(files: [try write(suite)], filter: filter, knownCodes: Self.codes, prepare: Self.environment)
    }

    static func suite(_ cases: String, policies: String = "../policies") -> String {
        #"{"suite":"s","policies":"\#(policies)","time":"2026-06-01T12:00:00Z","cases":[\#(cases)]}"#
    }
    static let alice = #""params":{"principal":{"type":"User","id":"alice"}}"#
    static let bob = #""params":{"principal":{"type":"User","id":"bob"}}"#

    @Test func passingCasesPass() throws {
        let r = try run(Self.suite(#"""
            {"name":"alice allowed","method":"decide",\#(Self.alice),"expect":{"decision":"allow","reasons":["p-allow"],"obligations":[{"type":"transfer_basis"}]}},
            {"name":"bob denied","method":"decide",\#(Self.bob),"expect":{"decision":"deny","codes":["residency.cross_border"],"not_reasons":["p-allow"]}},
            {"name":"placed","method":"place","params":{},"expect":{"allowed":["a"],"rejected":{"b":["residency.cross_border"]}}},
            {"name":"unknown method","method":"nope","params":{},"expect":{"error":-32601}}
            """#))
        #expect(r.summaryLine == "4 passed, 0 failed")
    }

    @Test func aWrongDecisionFailsWithWhatWasExpectedAndWhatCameBack() throws {
        let r = try run(Self.suite(#"{"name":"bob allowed?","method":"decide",\#(Self.bob),"expect":{"decision":"allow"}}"#))
        #expect(r.summaryLine == "0 passed, 1 failed")
        let text = r.text()
        #expect(text.contains("FAIL s / bob allowed?"))
        #expect(text.contains("decision: expected allow, got deny"))
        #expect(text.contains("guardrails residency.cross_border"))
    }

    @Test func aMissingReasonFails() throws {
        let r = try run(Self.suite(#"{"name":"c","method":"decide",\#(Self.alice),"expect":{"reasons":["p-never"]}}"#))
        #expect(r.failed == 1)
        #expect(r.text().contains("reason \"p-never\" missing"))
    }

    @Test(arguments: [
        (#"{"suite":"s","policies":"p","time":"t","cases":[],"extra":1}"#, "$.extra: unknown key"),
        (#"{"suite":"s","policies":"p","time":"t","cases":[{"name":"c","method":"decide","params":{},"expect":{"decison":"allow"}}]}"#, "$.cases[0].expect.decison: unknown key"),
        (#"{"suite":"s","policies":"p","time":"t","cases":[{"name":"c","method":"decide","params":{},"expect":{}}]}"#, "expects nothing"),
        (#"{"suite":"s","policies":"p","cases":[{"name":"c","method":"decide","params":{},"expect":{"decision":"allow"}}]}"#, "$.time"),
        (#"{"suite":"s","policies":"p","time":"t","cases":[{"name":"c","method":"decide","params":{},"expect":{"decision":"maybe"}}]}"#, "\"allow\" or \"deny\""),
        (#"{"suite":"s","policies":"p","time":"t","cases":[{"name":"c","method":"m","params":{},"expect":{"error":1}},{"name":"c","method":"m","params":{},"expect":{"error":1}}]}"#, "duplicate case name"),
        (#"{"suite":"s", "policies":"#, "invalid JSON"),
    ])
    func malformedSuitesFailWithFileAndPath(_ text: String, _ message: String) throws {
        let r = ConformanceRunner.run(files: [try write(text)], knownCodes: [], prepare: Self.environment)
        #expect(r.failed == 1)
        #expect(r.suiteErrors.first?.description.contains(message) == true, "\(r.suiteErrors)")
        #expect(r.suiteErrors.first?.description.contains("suite.json") == true)
    }

    @Test func aSuiteWhosePoliciesDoNotParseFailsWithTheirLocation() throws {
        let r = try run(Self.suite(#"{"name":"c","method":"decide",\#(Self.alice),"expect":{"decision":"allow"}}"#, policies: "broken"))
        #expect(r.failed == 1)
        #expect(r.text().contains("x.cedar: 3:7: expected ';'"))
    }

    @Test func filterSelectsCasesBySuiteSlashName() throws {
        let r = try run(Self.suite(#"""
            {"name":"one","method":"decide",\#(Self.alice),"expect":{"decision":"allow"}},
            {"name":"two","method":"decide",\#(Self.bob),"expect":{"decision":"allow"}}
            """#), filter: "s/one")
        #expect(r.summaryLine == "1 passed, 0 failed")
    }

    @Test func coverageReportsPoliciesAndCodesNoCaseExercised() throws {
        let r = try run(Self.suite(#"{"name":"c","method":"decide",\#(Self.alice),"expect":{"decision":"allow"}}"#))
        #expect(r.uncoveredPolicies.map(\.policy) == ["p-never"])
        #expect(r.uncoveredCodes == ["residency.cross_border", "consent.missing"])
        #expect(r.coverageText().contains("policy not exercised: p-never"))
        #expect(r.coveragePercent == 25)
    }

    @Test func junitOutputIsWellFormedAndListsEveryCase() throws {
        let r = try run(Self.suite(#"""
            {"name":"ok <&>","method":"decide",\#(Self.alice),"expect":{"decision":"allow"}},
            {"name":"bad \"quoted\"","method":"decide",\#(Self.bob),"expect":{"decision":"allow"}}
            """#))
        let xmlText = r.junitXML()
        final class Collector: NSObject, XMLParserDelegate {
            var testcases: [String] = []
            var failures = 0
            func parser(_ p: XMLParser, didStartElement e: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
                if e == "testcase" { testcases.append(attributes["name"] ?? "") }
                if e == "failure" { failures += 1 }
            }
        }
        let parser = XMLParser(data: Data(xmlText.utf8))
        let c = Collector()
        parser.delegate = c
        #expect(parser.parse(), "not well-formed: \(parser.parserError.map { "\($0)" } ?? "")\n\(xmlText)")
        #expect(c.testcases == ["ok <&>", "bad \"quoted\""])
        #expect(c.failures == 1)
    }

    @Test func jsonOutputCarriesCountsAndCoverage() throws {
        let r = try run(Self.suite(#"{"name":"c","method":"decide",\#(Self.alice),"expect":{"decision":"allow"}}"#))
        let j = try JSON.parse(r.json(coverage: true).serialized)
        #expect(j["passed"] == .int(1))
        #expect(j["coverage"]?["uncovered_policies"] == .array([.string("p-never")]))
    }
}
