import Testing
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import CustosJSON
import Conformance
import CustosTestSupport

/// The runner against a stand-in environment: what it reports for each kind of mistake.
struct RunnerTests {
    /// Answers `decide` with allow by policy "p-allow" when the principal is alice, else deny
    /// with a residency code; `place` allows node a only.
    static func environment(_ suite: Suite) throws(SuiteError) -> SuiteEnvironment {
        if suite.policies.hasSuffix("broken") { throw SuiteError(file: suite.policies + "/x.cedar", path: "3:7", "expected ';'") }
        return SuiteEnvironment(policyNames: ["p-allow", "p-never", "p-place"]) { method, params, at in
            switch method {
            case "clock":
                return .result(.object(JSONObject(["at": .string(at)])))
            case "decide":
                if params["principal"]?["id"]?.stringValue == "alice" {
                    return .result(try! JSON.parse(#"{"decision":"allow","reasons":["p-allow"],"errors":[],"obligations":[{"type":"transfer_basis","basis":"adequacy:CH"}]}"#))
                }
                return .result(try! JSON.parse(#"{"decision":"deny","reasons":[{"guardrail":"residency","code":"residency.cross_border","message":"no"}],"errors":[]}"#))
            case "place":
                return .result(try! JSON.parse(#"{"allowed":["a"],"rejected":{"b":[{"guardrail":"residency","code":"residency.cross_border","message":"x"}]},"reasons":["p-place"],"decision_id":"d-1"}"#))
            case "decide.batch":
                return .result(try! JSON.parse(#"{"results":[{"decision":"allow","reasons":["p-never"]}]}"#))
            default:
                return .error(code: -32601, message: "method not found: \(method)")
            }
        }
    }

    static let codes = ["residency.cross_border", "consent.missing"]

    func write(_ text: String, name: String = "suite.json") throws -> String {
        let dir = Scratch.url("custos-conf")
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
        #expect(r.uncoveredPolicies.map(\.policy) == ["p-never", "p-place"])
        #expect(r.uncoveredCodes == ["residency.cross_border", "consent.missing"])
        #expect(r.coverageText().contains("policy not exercised: p-never"))
        #expect(r.coveragePercent == 20)
    }

    /// The Cedar policies behind a `place` (its `reasons`) and the results of a `decide.batch`
    /// count as exercised.
    @Test func coverageCountsThePoliciesBehindPlaceAndBatchResults() throws {
        let r = try run(Self.suite(#"""
            {"name":"placed","method":"place","params":{},"expect":{"allowed":["a"]}},
            {"name":"batch","method":"decide.batch","params":{},"expect":{"result":{"results":[{"decision":"allow","reasons":["p-never"]}]}}}
            """#))
        #expect(r.summaryLine == "2 passed, 0 failed")
        #expect(r.uncoveredPolicies.map(\.policy) == ["p-allow"])
    }

    /// A case's `at` overrides the suite's time, a step's overrides its case's.
    @Test func eachCallRunsAtTheTimeItsCaseOrStepGives() throws {
        let r = try run(Self.suite(#"""
            {"name":"suite time","method":"clock","params":{},"expect":{"result":{"at":"2026-06-01T12:00:00Z"}}},
            {"name":"case time","at":"2026-03-01T00:00:00Z","method":"clock","params":{},"expect":{"result":{"at":"2026-03-01T00:00:00Z"}}},
            {"name":"steps","at":"2026-03-01T00:00:00Z","steps":[
              {"method":"clock","params":{},"expect":{"result":{"at":"2026-03-01T00:00:00Z"}}},
              {"method":"clock","params":{},"at":"2026-03-01T00:00:01Z","expect":{"result":{"at":"2026-03-01T00:00:01Z"}}}]}
            """#))
        #expect(r.summaryLine == "3 passed, 0 failed", "\(r.text())")
        #expect(r.cases.last?.steps.map(\.at) == ["2026-03-01T00:00:00Z", "2026-03-01T00:00:01Z"])
    }

    /// `stale_state` reaches the environment before each call: a step's own, else its case's,
    /// else false.
    @Test func eachCallIsMadeWithTheStaleStateItsStepOrCaseGives() throws {
        let seen = StaleLog()
        let file = try write(Self.suite(#"""
            {"name":"fresh","method":"clock","params":{},"expect":{"result":{}}},
            {"name":"stale","stale_state":true,"method":"clock","params":{},"expect":{"result":{}}},
            {"name":"steps","stale_state":true,"steps":[
              {"method":"clock","params":{},"expect":{"result":{}}},
              {"method":"clock","params":{},"stale_state":false,"expect":{"result":{}}}]},
            {"name":"one stale step","steps":[
              {"method":"clock","params":{},"stale_state":true,"expect":{"result":{}}},
              {"method":"clock","params":{},"expect":{"result":{}}}]}
            """#))
        let r = ConformanceRunner.run(files: [file], knownCodes: Self.codes) { suite throws(SuiteError) in
            var env = try Self.environment(suite)
            env.staleState = { seen.append($0) }
            return env
        }
        #expect(r.summaryLine == "4 passed, 0 failed", "\(r.text())")
        #expect(seen.values == [false, true, true, false, true, false])
    }

    /// Every step runs, and a failure names its step; the report shows every step's answer.
    @Test func aFailingStepIsNamedAndEveryStepsAnswerIsShown() throws {
        let r = try run(Self.suite(#"""
            {"name":"story","steps":[
              {"method":"decide",\#(Self.alice),"at":"2026-01-01T00:00:00Z","expect":{"decision":"deny"}},
              {"method":"decide",\#(Self.bob),"expect":{"decision":"deny"}}]}
            """#))
        #expect(r.summaryLine == "0 passed, 1 failed")
        let text = r.text()
        #expect(text.contains("- step 1 (decide at 2026-01-01T00:00:00Z): decision: expected deny, got allow"), "\(text)")
        #expect(text.contains("step 1 (decide at 2026-01-01T00:00:00Z): FAILED, answer:"))
        #expect(text.contains("step 2 (decide at 2026-06-01T12:00:00Z): ok, answer:"))
        #expect(r.cases.first?.steps.map(\.passed) == [false, true])
    }

    /// A failure shows the whole answer: decision, reasons, guardrail reasons, obligations and
    /// errors, in text and in JSON, without the members that change on every run.
    @Test func aFailureShowsTheWholeAnswerInTextAndJSON() throws {
        let r = try run(Self.suite(#"{"name":"c","method":"decide",\#(Self.alice),"expect":{"obligations":[{"type":"dispose"}]}}"#))
        let text = r.text()
        #expect(text.contains(#"obligation {"type":"dispose"} missing"#), "\(text)")
        #expect(text.contains("answer (decide at 2026-06-01T12:00:00Z):"))
        #expect(text.contains(#"  decision: "allow""#))
        #expect(text.contains(#"  obligations: [{"type":"transfer_basis","basis":"adequacy:CH"}]"#))
        #expect(text.contains("  errors: []"))
        let j = try JSON.parse(r.json(coverage: false).serialized)
        let answer = try #require(j["cases"]?.arrayValue?.first?["answer"])
        #expect(answer["obligations"] == .array([try JSON.parse(#"{"type":"transfer_basis","basis":"adequacy:CH"}"#)]))
        #expect(answer["reasons"] == .array([.string("p-allow")]))
        let placed = try run(Self.suite(#"{"name":"p","method":"place","params":{},"expect":{"allowed":["b"]}}"#))
        let placeAnswer = try #require(try JSON.parse(placed.json(coverage: false).serialized)["cases"]?.arrayValue?.first?["answer"])
        #expect(placeAnswer["decision_id"] == nil)
        #expect(placeAnswer["rejected"]?["b"] != nil)
    }

    @Test(arguments: [
        (#"{"name":"c","method":"decide","params":{},"expect":{"codes":["residency.cross_boarder"]}}"#,
         "$.cases[0].expect.codes[0]: unknown guardrail code \"residency.cross_boarder\" (known residency codes: residency.cross_border"),
        (#"{"name":"c","method":"place","params":{},"expect":{"rejected":{"b":["consent.missing","consent.mising"]}}}"#,
         "$.cases[0].expect.rejected.b[1]: unknown guardrail code \"consent.mising\""),
        (#"{"name":"c","steps":[{"method":"decide","params":{},"expect":{"codes":["policy.forbid_eror"]}}]}"#,
         "$.cases[0].steps[0].expect.codes[0]: unknown guardrail code"),
        (#"{"name":"c","method":"decide","params":{},"expect":{"allowed":["a"]}}"#,
         "$.cases[0].expect.allowed: \"allowed\" does not apply to decide"),
        (#"{"name":"c","method":"place","params":{},"expect":{"decision":"allow"}}"#,
         "$.cases[0].expect.decision: \"decision\" does not apply to place"),
        (#"{"name":"c","method":"consent.grant","params":{},"expect":{"codes":["consent.missing"]}}"#,
         "$.cases[0].expect.codes: \"codes\" does not apply to consent.grant"),
        (#"{"name":"c","steps":[{"method":"hold.set","params":{},"expect":{"decision":"allow"}}]}"#,
         "$.cases[0].steps[0].expect.decision: \"decision\" does not apply to hold.set"),
        (#"{"name":"c","method":"decide","params":{},"expect":{"decision":"allow"},"steps":[{"method":"decide","params":{},"expect":{"decision":"allow"}}]}"#,
         "$.cases[0].method: a case has either steps or method"),
        (#"{"name":"c","steps":[]}"#, "$.cases[0].steps: expected a non-empty array"),
        (#"{"name":"c","steps":[{"method":"decide","params":{},"expect":{"decision":"allow"},"name":"x"}]}"#, "$.cases[0].steps[0].name: unknown key"),
        (#"{"name":"c","at":5,"method":"decide","params":{},"expect":{"decision":"allow"}}"#, "$.cases[0].at: expected a time"),
        (#"{"name":"c","stale_state":"yes","method":"decide","params":{},"expect":{"decision":"allow"}}"#,
         "$.cases[0].stale_state: expected true or false"),
        (#"{"name":"c","steps":[{"method":"decide","params":{},"stale_state":1,"expect":{"decision":"allow"}}]}"#,
         "$.cases[0].steps[0].stale_state: expected true or false"),
    ])
    func expectationsThatCannotHoldAreSuiteErrorsWithTheirPath(_ cases: String, _ message: String) throws {
        let r = try run(Self.suite(cases))
        #expect(r.failed == 1)
        #expect(r.cases.isEmpty)
        #expect(r.suiteErrors.first?.description.contains(message) == true, "\(r.suiteErrors)")
    }

    @Test func policyForbidErrorIsAKnownCodeButNotOneCoverageCounts() throws {
        let r = try run(Self.suite(#"{"name":"c","method":"decide",\#(Self.bob),"expect":{"codes":["policy.forbid_error"]}}"#))
        #expect(r.suiteErrors.isEmpty)
        #expect(r.failed == 1)
        #expect(!r.uncoveredCodes.contains("policy.forbid_error"))
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
        #expect(j["coverage"]?["uncovered_policies"] == .array([.string("p-never"), .string("p-place")]))
    }
}

final class StaleLog: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [Bool] = []
    func append(_ b: Bool) { lock.lock(); list.append(b); lock.unlock() }
    var values: [Bool] { lock.lock(); defer { lock.unlock() }; return list }
}
