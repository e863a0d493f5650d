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

    @Test(arguments: ["test", "check"])
    func commandsHaveHelp(_ command: String) throws {
        let out = try Binary.run([command, "--help"])
        #expect(out.status == 0)
        #expect(out.stdout.contains("Usage: custos \(command)"))
    }
}
