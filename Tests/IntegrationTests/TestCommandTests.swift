import Testing
import Foundation
import CustosJSON
#if canImport(FoundationXML)
import FoundationXML
#endif

/// `custos test` and `custos check` as a policy author runs them.
@Suite struct TestCommandTests {
    static let policies = """
    @id("lead-reads")
    permit(principal in Role::"lead", action == Action::"read", resource);
    @id("never")
    forbid(principal, action == Action::"delete", resource);
    """
    static let entities = """
    [{"uid":{"type":"User","id":"ana"},"attrs":{},"parents":[{"type":"Role","id":"lead"}]},
     {"uid":{"type":"Role","id":"lead"},"attrs":{},"parents":[]},
     {"uid":{"type":"Dataset","id":"d1"},"attrs":{},"parents":[]}]
    """
    static func decide(_ action: String) -> String {
        #"{"principal":{"type":"User","id":"ana"},"action":{"type":"Action","id":"\#(action)"},"resource":{"type":"Dataset","id":"d1"},"context":{}}"#
    }

    /// A folder with policies/ and suites/s.json holding `cases`.
    func project(cases: String, suiteExtra: String = "", policies: String = policies) throws -> URL {
        let root = try Binary.scratch()
        let p = root.appendingPathComponent("policies"), s = root.appendingPathComponent("suites")
        try FileManager.default.createDirectory(at: p, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: s, withIntermediateDirectories: true)
        try policies.write(to: p.appendingPathComponent("a.cedar"), atomically: true, encoding: .utf8)
        try Self.entities.write(to: p.appendingPathComponent("entities.json"), atomically: true, encoding: .utf8)
        let suite = #"{"suite":"s","policies":"../policies","time":"2026-06-01T12:00:00Z"\#(suiteExtra),"cases":[\#(cases)]}"#
        try suite.write(to: s.appendingPathComponent("s.json"), atomically: true, encoding: .utf8)
        return root
    }

    func test(_ root: URL, _ extra: [String] = []) throws -> Binary.Outcome {
        try Binary.run(["test"] + extra + [root.appendingPathComponent("suites").path])
    }

    @Test func passingSuitesExitZeroWithTheSummaryLine() throws {
        let root = try project(cases: #"{"name":"reads","method":"decide","params":\#(Self.decide("read")),"expect":{"decision":"allow","reasons":["lead-reads"]}}"#)
        let out = try test(root)
        #expect(out.status == 0)
        #expect(out.stdout.hasSuffix("1 passed, 0 failed\n"))
    }

    @Test func aWrongExpectedDecisionFailsWithADiff() throws {
        let root = try project(cases: #"{"name":"reads","method":"decide","params":\#(Self.decide("read")),"expect":{"decision":"deny"}}"#)
        let out = try test(root)
        #expect(out.status == 1)
        #expect(out.stdout.contains("FAIL s / reads"))
        #expect(out.stdout.contains("decision: expected deny, got allow"))
        #expect(out.stdout.contains("fired: policies lead-reads"))
        #expect(out.stdout.hasSuffix("0 passed, 1 failed\n"))
    }

    @Test func aMissingExpectedReasonFails() throws {
        let root = try project(cases: #"{"name":"reads","method":"decide","params":\#(Self.decide("read")),"expect":{"reasons":["never"]}}"#)
        let out = try test(root)
        #expect(out.status == 1)
        #expect(out.stdout.contains("reason \"never\" missing"))
    }

    @Test func anUnknownKeyFailsNamingTheFileAndPath() throws {
        let root = try project(cases: #"{"name":"reads","method":"decide","params":\#(Self.decide("read")),"expect":{"decison":"allow"}}"#)
        let out = try test(root)
        #expect(out.status == 1)
        #expect(out.stdout.contains("s.json: $.cases[0].expect.decison: unknown key"))
    }

    @Test func aSuiteWhosePoliciesDoNotParseFailsWithTheirLocation() throws {
        let root = try project(cases: #"{"name":"reads","method":"decide","params":\#(Self.decide("read")),"expect":{"decision":"allow"}}"#,
                               policies: "permit(principal, action, resource) when { 1 + };")
        let out = try test(root)
        #expect(out.status == 1)
        #expect(out.stdout.contains("a.cedar:1:"), "\(out.stdout)")
    }

    @Test func coverageListsAnUncoveredPolicyAndMinCoverageFails() throws {
        let root = try project(cases: #"{"name":"reads","method":"decide","params":\#(Self.decide("read")),"expect":{"decision":"allow"}}"#)
        let out = try test(root, ["--coverage"])
        #expect(out.status == 0)
        #expect(out.stdout.contains("policy not exercised: never"))
        #expect(!out.stdout.contains("policy not exercised: lead-reads"))
        #expect(try test(root, ["--min-coverage", "100"]).status == 1)
    }

    @Test func junitOutputIsWellFormedAndListsEveryCase() throws {
        let root = try project(cases: #"""
            {"name":"reads <ok>","method":"decide","params":\#(Self.decide("read")),"expect":{"decision":"allow"}},
            {"name":"deletes & fails","method":"decide","params":\#(Self.decide("delete")),"expect":{"decision":"allow"}}
            """#)
        let xmlFile = root.appendingPathComponent("junit.xml")
        let out = try test(root, ["--junit", xmlFile.path])
        #expect(out.status == 1)
        final class Names: NSObject, XMLParserDelegate {
            var cases: [String] = []
            func parser(_ p: XMLParser, didStartElement e: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
                if e == "testcase" { cases.append(attributes["name"] ?? "") }
            }
        }
        let parser = XMLParser(data: try Data(contentsOf: xmlFile))
        let names = Names()
        parser.delegate = names
        #expect(parser.parse())
        #expect(names.cases == ["reads <ok>", "deletes & fails"])
    }

    /// Fixture entities join the folder (every method sees them, as it sees entities.json);
    /// a case's own request entities are held to the rules a socket caller is.
    @Test func fixtureEntitiesHaveFolderTrustAndRequestEntitiesTheCallersRules() throws {
        let fixture = #"{"uid":{"type":"User","id":"bo"},"attrs":{},"parents":[{"type":"Role","id":"lead"}]}"#
        let decideBo = #"{"principal":{"type":"User","id":"bo"},"action":{"type":"Action","id":"read"},"resource":{"type":"Dataset","id":"d1"},"context":{}}"#
        let newLead = #"{"principal":{"type":"User","id":"eve"},"action":{"type":"Action","id":"read"},"resource":{"type":"Dataset","id":"d1"},"context":{},"entities":[{"uid":{"type":"User","id":"eve"},"attrs":{},"parents":[{"type":"Role","id":"lead"}]}]}"#
        let root = try project(cases: #"""
            {"name":"a fixture user is a folder user","method":"decide","params":\#(decideBo),"expect":{"decision":"allow","reasons":["lead-reads"]}},
            {"name":"a case may not add a user","method":"decide","params":\#(newLead),"expect":{"error":-32602}}
            """#, suiteExtra: #","fixtures":{"entities":[\#(fixture)]}"#)
        let out = try test(root)
        #expect(out.status == 0, "\(out.stdout)")
        #expect(out.stdout.hasSuffix("2 passed, 0 failed\n"), "\(out.stdout)")
    }

    /// The shipped suites: all pass, and the JUnit report parses and has one testcase per case.
    @Test func exampleSuitesPassAndTheirJUnitReportListsEveryCase() throws {
        let xmlFile = try Binary.scratch().appendingPathComponent("junit.xml")
        let conformance = Binary.repository.appendingPathComponent("conformance").path
        let out = try Binary.run(["test", "--json", "--junit", xmlFile.path, conformance])
        #expect(out.status == 0, "\(out.stderr)")
        let report = try JSON.parse(out.stdout)
        let cases = report["cases"]?.arrayValue ?? []
        #expect(cases.count >= 150)
        #expect(report["failed"] == .int(0))
        final class Names: NSObject, XMLParserDelegate {
            var cases: [String] = []
            func parser(_ p: XMLParser, didStartElement e: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
                if e == "testcase" { cases.append((attributes["classname"] ?? "") + "/" + (attributes["name"] ?? "")) }
            }
        }
        let parser = XMLParser(data: try Data(contentsOf: xmlFile))
        let names = Names()
        parser.delegate = names
        #expect(parser.parse(), "JUnit report is not well-formed XML")
        #expect(names.cases.sorted() == cases.map { "\($0["suite"]?.stringValue ?? "")/\($0["case"]?.stringValue ?? "")" }.sorted())
    }

    @Test func checkValidatesAFolderAndReportsErrorsWithLocation() throws {
        let good = try project(cases: #"{"name":"x","method":"m","params":{},"expect":{"error":-32601}}"#)
        let ok = try Binary.run(["check", "--policies", good.appendingPathComponent("policies").path])
        #expect(ok.status == 0)
        #expect(ok.stdout.contains("ok: 2 policies, 3 entities"))
        let bad = try project(cases: #"{"name":"x","method":"m","params":{},"expect":{"error":-32601}}"#,
                              policies: "permit(principal, action, resource) when { 1 + };")
        let out = try Binary.run(["check", "--policies", bad.appendingPathComponent("policies").path])
        #expect(out.status == 1)
        #expect(out.stderr.contains("a.cedar:1:48:"), "\(out.stderr)")
    }

    // MARK: diagnosis

    /// A failed obligation expectation shows the whole answer that came back, in text and JSON.
    @Test func aFailureShowsTheWholeAnswerInTextAndJSON() throws {
        let root = try project(cases: #"{"name":"reads","method":"decide","params":\#(Self.decide("read")),"expect":{"obligations":[{"kind":"dispose"}]}}"#)
        let out = try test(root)
        #expect(out.status == 1)
        #expect(out.stdout.contains(#"obligation {"kind":"dispose"} missing"#), "\(out.stdout)")
        #expect(out.stdout.contains("answer (decide at 2026-06-01T12:00:00Z):"), "\(out.stdout)")
        for line in [#"decision: "allow""#, #"reasons: ["lead-reads"]"#, "guardrail_reasons: []", "obligations: []", "errors: []"] {
            #expect(out.stdout.contains("  " + line + "\n"), "\(line) missing from \(out.stdout)")
        }
        #expect(!out.stdout.contains("decision_id"))
        let json = try test(root, ["--json"])
        let answer = try #require(try JSON.parse(json.stdout)["cases"]?.arrayValue?.first?["answer"])
        #expect(answer["decision"] == .string("allow"))
        #expect(answer["reasons"] == .array([.string("lead-reads")]))
        #expect(answer["obligations"] == .array([]))
        #expect(answer["guardrail_reasons"] == .array([]))
        #expect(answer["errors"] == .array([]))
    }

    @Test(arguments: [
        (#""expect":{"codes":["residency.cross_boarder"]}"#, "$.cases[0].expect.codes[0]: unknown guardrail code \"residency.cross_boarder\" (known residency codes: residency.cross_border, residency.location_missing, residency.unknown_location"),
        (#""expect":{"allowed":["n1"]}"#, "$.cases[0].expect.allowed: \"allowed\" does not apply to decide"),
        (#""expect":{"rejected":{"n1":["placement.not_authorized"]}}"#, "$.cases[0].expect.rejected: \"rejected\" does not apply to decide"),
        (#""at":"June 1st","expect":{"decision":"allow"}"#, "$.cases[0].at: \"June 1st\" is not a time"),
    ])
    func mistakesInExpectationsAreSuiteErrorsWithTheirPath(_ expect: String, _ message: String) throws {
        let root = try project(cases: #"{"name":"reads","method":"decide","params":\#(Self.decide("read")),\#(expect)}"#)
        let out = try test(root)
        #expect(out.status == 1)
        #expect(out.stdout.contains("s.json: " + message), "\(out.stdout)")
        #expect(out.stdout.hasSuffix("0 passed, 1 failed\n"))
    }

    @Test func policyForbidErrorIsAValidCode() throws {
        let root = try project(cases: #"{"name":"reads","method":"decide","params":\#(Self.decide("read")),"expect":{"codes":["policy.forbid_error"]}}"#)
        let out = try test(root)
        #expect(out.stdout.contains("guardrail code policy.forbid_error missing"), "\(out.stdout)")
    }

    /// Coverage counts the policies that answered a `place` and a `transfer`.
    @Test func coverageCountsThePoliciesBehindPlaceAndTransfer() throws {
        let policies = Self.policies + """

        @id("lead-places")
        permit(principal in Role::"lead", action == Action::"place_job", resource);
        @id("lead-copies")
        permit(principal in Role::"lead", action == Action::"transfer", resource);
        """
        let root = try project(cases: #"""
            {"name":"reads","method":"decide","params":\#(Self.decide("read")),"expect":{"decision":"allow"}},
            {"name":"deletes","method":"decide","params":\#(Self.decide("delete")),"expect":{"decision":"deny","reasons":["never"]}},
            {"name":"places","method":"place","params":{"job":{"id":"j1","principal":"User::\"ana\"","datasets":[]},"nodes":[{"name":"n1"}]},"expect":{"allowed":["n1"],"reasons":["lead-places"]}},
            {"name":"copies","method":"transfer","params":{"principal":"User::\"ana\"","dataset":"d1","from":"a","to":"b","kind":"copy"},"expect":{"decision":"allow"}}
            """#, policies: policies)
        let out = try test(root, ["--coverage"])
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.contains("4 passed, 0 failed"))
        #expect(!out.stdout.contains("policy not exercised"), "\(out.stdout)")
    }

    /// The message for a folder that does not load names the suite's "policies" member, not an
    /// option `custos test` does not have.
    @Test func aSuiteWhosePoliciesFolderIsMissingNamesItsPoliciesMember() throws {
        let root = try project(cases: #"{"name":"reads","method":"decide","params":\#(Self.decide("read")),"expect":{"decision":"allow"}}"#,
                               suiteExtra: "")
        let suite = root.appendingPathComponent("suites/s.json")
        try String(contentsOf: suite, encoding: .utf8).replacingOccurrences(of: #""policies":"../policies""#, with: #""policies":"../polices""#)
            .write(to: suite, atomically: true, encoding: .utf8)
        let out = try test(root)
        #expect(out.status == 1)
        #expect(out.stdout.contains(#"$.policies: the policies folder "#), "\(out.stdout)")
        #expect(out.stdout.contains(#"(this suite's "policies", relative to the suite file) does not load"#))
        #expect(out.stdout.contains("polices: no such folder"))
        #expect(!out.stdout.contains("--policies"))
    }

    // MARK: time

    /// A case's `at`, a step's `at` and fixture times each set the clock of their call, through
    /// the real binary: a consent withdrawn at T is in force at T-1s and not at T+1s.
    @Test func stepsAndFixturesRunAtTheirOwnTimes() throws {
        let dir = try Binary.scratch()
        let policies = Binary.repository.appendingPathComponent("policies").path
        let read = #"{"principal":{"type":"User","id":"alice"},"action":{"type":"Action","id":"read"},"resource":{"type":"Dataset","id":"onc301-fr-genomic"},"context":{"region":"eu-west-3","purpose":"secondary_research"}}"#
        let suite = #"""
            {"suite":"t","policies":"\#(policies)","time":"2026-06-01T12:00:00Z",
             "fixtures":{"consent":[{"cohort":"onc301-fr","purpose":"secondary_research","evidence":"ICF","granted_at":"2026-01-01","withdrawn_at":"2026-03-01T00:00:00Z"}]},
             "cases":[
               {"name":"before the fixture withdrawal","at":"2026-02-28T23:59:59Z","method":"decide","params":\#(read),"expect":{"decision":"allow"}},
               {"name":"after it","at":"2026-03-01T00:00:01Z","method":"decide","params":\#(read),"expect":{"decision":"deny","codes":["consent.withdrawn"]}},
               {"name":"regranted, withdrawn at T, asked at T+1s and T-1s","steps":[
                 {"method":"consent.grant","at":"2026-04-01T00:00:00Z","params":{"cohort":"onc301-fr","purpose":"secondary_research","evidence":"ICF v2"},"expect":{"result":{"recorded":true}}},
                 {"method":"consent.withdraw","at":"2026-05-01T00:00:00Z","params":{"cohort":"onc301-fr","purpose":"secondary_research"},"expect":{"result":{"recorded":true}}},
                 {"method":"decide","at":"2026-05-01T00:00:01Z","params":\#(read),"expect":{"decision":"deny","codes":["consent.withdrawn"]}},
                 {"method":"decide","at":"2026-04-30T23:59:59Z","params":\#(read),"expect":{"decision":"allow"}}]}]}
            """#
        try suite.write(to: dir.appendingPathComponent("t.json"), atomically: true, encoding: .utf8)
        let out = try Binary.run(["test", dir.appendingPathComponent("t.json").path])
        #expect(out.status == 0, "\(out.stdout)")
        #expect(out.stdout.hasSuffix("3 passed, 0 failed\n"))
        // The same suite with the last step's time moved after the withdrawal fails, naming it.
        try suite.replacingOccurrences(of: "2026-04-30T23:59:59Z", with: "2026-05-01T00:00:02Z")
            .write(to: dir.appendingPathComponent("t.json"), atomically: true, encoding: .utf8)
        let moved = try Binary.run(["test", dir.appendingPathComponent("t.json").path])
        #expect(moved.status == 1)
        #expect(moved.stdout.contains("- step 4 (decide at 2026-05-01T00:00:02Z): decision: expected allow, got deny"), "\(moved.stdout)")
    }

    @Test(arguments: [
        (#"{"consent":[{"cohort":"onc301-fr","purpose":"secondary_research","evidence":"ICF","withdrawn_at":"soon"}]}"#,
         "$.fixtures.consent[0].withdrawn_at: \"soon\" is not a time"),
        (#"{"consent":[{"cohort":"onc301-fr","purpose":"secondary_research","evidence":"ICF","granted_at":"2026-02-01","withdrawn_at":"2026-01-01"}]}"#,
         "$.fixtures.consent[0].withdrawn_at: consent.withdraw refused it: conflict: withdrawal at 2026-01-01 precedes the grant"),
        (#"{"holds":[{"dataset":"onc301-de-feasibility","matter":"M","reason":"r","released_at":"2026-03-01"}]}"#,
         "$.fixtures.holds[0].release_reason: a release needs its reason"),
        (#"{"holds":[{"dataset":"onc301-de-feasibility","matter":"M","reason":"r","set_at":"2026-03-01","released_at":"2026-02-01","release_reason":"x"}]}"#,
         "$.fixtures.holds[0].released_at: hold.release refused it: conflict: release at 2026-02-01 precedes the hold set at 2026-03-01"),
        (#"{"holds":[{"dataset":"onc301-de-feasibility","matter":"M","reason":"r","set_on":"2026-03-01"}]}"#,
         "$.fixtures.holds[0]: hold.set refused it: invalid params: params.set_on"),
    ])
    func fixtureTimesThatCannotBeRecordedAreSuiteErrors(_ fixtures: String, _ message: String) throws {
        let dir = try Binary.scratch()
        let policies = Binary.repository.appendingPathComponent("policies").path
        let suite = #"{"suite":"t","policies":"\#(policies)","time":"2026-06-01T12:00:00Z","fixtures":\#(fixtures),"cases":[{"name":"c","method":"health","params":{},"expect":{"result":{"live":true}}}]}"#
        try suite.write(to: dir.appendingPathComponent("t.json"), atomically: true, encoding: .utf8)
        let out = try Binary.run(["test", dir.appendingPathComponent("t.json").path])
        #expect(out.status == 1)
        #expect(out.stdout.contains("t.json: " + message), "\(out.stdout)")
    }

    @Test(arguments: ["test", "check"])
    func commandsHaveHelp(_ command: String) throws {
        let out = try Binary.run([command, "--help"])
        #expect(out.status == 0)
        #expect(out.stdout.contains("Usage: custos \(command)"))
    }
}
