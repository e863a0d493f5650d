import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Testing

/// Issue 11 through the real binary and socket: the example folder's schema refuses a misspelt
/// attribute (`custos check` and a reload alike), templates decide through links.json, and
/// `validate_requests` refuses a non-conforming `decide`.
@Suite(.serialized) struct SchemaFolderDaemonTests {
    static let typo = """
    @id("typo-forbid")
    forbid (principal, action, resource is Dataset)
    when { resource.data_stat == "identified" };
    """
    static let template = """
    @id("study-guest")
    permit (principal == ?principal, action == Action::"read_metadata", resource in ?resource);
    """
    static let links = #"[{"template_id": "study-guest", "link_id": "guest-bob-onc301", "args": {"?principal": "User::\"bob\"", "?resource": "Study::\"ONC-301\""}}]"#
    static let bobReadsMetadata = #"{"principal":{"type":"User","id":"bob"},"action":{"type":"Action","id":"read_metadata"},"resource":{"type":"Dataset","id":"onc301-de-clinical"},"context":{"purpose":"primary_research"}}"#

    @Test func aTypoInAForbidFailsCheckWithLocationAndSuggestionAndAReloadOfItIsRefused() throws {
        let d = try TestDaemon(schema: true).start()
        let ok = try runCustosCommand(["check", "--strict", "--policies", d.policies])
        #expect(ok.status == 0, "\(ok.out)\(ok.err)")
        #expect(ok.out.contains("schema: schema.cedarschema: every policy, link and entities.json validate"), "\(ok.out)")
        let before = try d.call("policy.status").get()
        #expect(before["schema"] == .string("schema.cedarschema"))

        try d.write("95-typo.cedar", Self.typo)
        let where_ = "\(d.policies)/95-typo.cedar:3:8: policy \"typo-forbid\" (policy15): attribute data_stat not found on entity type Dataset; did you mean data_state?"
        let check = try runCustosCommand(["check", "--policies", d.policies])
        #expect(check.status == 1)
        #expect(check.err.contains("error: " + where_), "\(check.err)")
        #expect(check.err.hasSuffix("invalid: 1 validation error; nothing was loaded\n"), "\(check.err)")

        guard case .failure(let refused) = try d.call("policy.reload") else {
            Issue.record("the daemon loaded a forbid whose attribute the schema does not declare")
            return
        }
        #expect(refused.code == -32004)
        #expect(refused.message.contains(where_), "\(refused.message)")
        let kept = try d.call("policy.status").get()
        #expect(kept["revision"] == before["revision"])
        #expect(kept["last_reload_error"]?["message"]?.stringValue?.contains("did you mean data_state?") == true)
        // The previous set still decides.
        let answer = try d.call("decide", try exampleRequest("allow-scientist-reads-own-study.json")).get()
        #expect(answer["decision"] == .string("allow"))
        #expect(answer["policy_revision"] == before["revision"])
    }

    @Test func aLinkedTemplateDecidesThroughTheSocketAndAnUnlinkedOneFailsStrictCheck() throws {
        let d = try TestDaemon(files: ["60-guests.cedar": Self.template], schema: true, extraArguments: ["--log-format", "text"]).start()
        let unlinked = try runCustosCommand(["check", "--policies", d.policies])
        #expect(unlinked.status == 0, "\(unlinked.err)")
        #expect(unlinked.err.contains("warning: \(d.policies)/60-guests.cedar:1:1: template \"study-guest\" (policy13) has no link in links.json, so it decides nothing"), "\(unlinked.err)")
        let strict = try runCustosCommand(["check", "--strict", "--policies", d.policies])
        #expect(strict.status == 1)
        #expect(strict.err.contains("error: \(d.policies)/60-guests.cedar:1:1: template \"study-guest\""), "\(strict.err)")
        #expect(strict.err.contains("invalid: 1 warning, which --strict refuses"), "\(strict.err)")
        let status = try d.call("policy.status").get()
        #expect(status["warnings"]?.arrayValue?.count == 1)
        let denied = try d.call("decide", try JSON.parse(Self.bobReadsMetadata)).get()
        #expect(denied["decision"] == .string("deny"))

        try d.write("links.json", Self.links)
        #expect(try runCustosCommand(["check", "--strict", "--policies", d.policies]).status == 0)
        _ = try d.call("policy.reload").get()
        let allowed = try d.call("decide", try JSON.parse(Self.bobReadsMetadata)).get()
        #expect(allowed["decision"] == .string("allow"))
        #expect(allowed["reasons"] == .array([.string("guest-bob-onc301")]))
        let linked = try d.call("policy.status").get()
        #expect(linked["templates"] == .int(1) && linked["links"] == .int(1) && linked["warnings"] == .array([]))
        // The daemon's log named the unlinked template at start.
        d.signal(SIGTERM)
        #expect(d.waitForExit() == 0)
        #expect(d.stderrText().contains("warning policy.warning: warning: \(d.policies)/60-guests.cedar:1:1: template \"study-guest\" (policy13) has no link"), "\(d.stderrText())")
    }

    @Test func validateRequestsRefusesANonConformingDecideThroughTheSocketNamingTheField() throws {
        let d = try TestDaemon(files: ["custos.json": #"{"validate_requests": true}"#], schema: true).start()
        var request = try exampleRequest("allow-scientist-reads-own-study.json")
        #expect(try d.call("decide", request).get()["decision"] == .string("allow"))
        request = try JSON.parse(#"{"principal":{"type":"User","id":"alice"},"action":{"type":"Action","id":"read"},"resource":{"type":"Dataset","id":"onc301-de-clinical"},"context":{"purpse":"primary_research"}}"#)
        guard case .failure(let e) = try d.call("decide", request) else { Issue.record("a misspelt context key was decided"); return }
        #expect(e.code == -32602)
        #expect(e.message.hasPrefix("invalid params: params.context.purpse: attribute purpse is not declared"), "\(e.message)")
        #expect(e.message.hasSuffix("did you mean purpose?"), "\(e.message)")
        request = try JSON.parse(#"{"principal":{"type":"User","id":"alice"},"action":{"type":"Action","id":"raed"},"resource":{"type":"Dataset","id":"onc301-de-clinical"}}"#)
        guard case .failure(let a) = try d.call("decide", request) else { Issue.record("an undeclared action was decided"); return }
        #expect(a.message == "invalid params: params.action: action Action::\"raed\" is not declared in the schema; did you mean Action::\"read\"?", "\(a.message)")
    }

    @Test func checkStrictNeedsASchema() throws {
        let d = try TestDaemon()
        let r = try runCustosCommand(["check", "--strict", "--policies", d.policies])
        #expect(r.status == 1)
        #expect(r.err.contains("--strict needs a schema (schema.cedarschema or schema.cedarschema.json)"), "\(r.err)")
        #expect(try runCustosCommand(["check", "--policies", d.policies]).status == 0)
    }

    @Test func linkedTemplatesCountInTestCoverageUnderTheirLinkIDs() throws {
        let root = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/policies", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/suites", withIntermediateDirectories: true)
        let files = [
            "schema.cedarschema": "entity User; entity Doc; action read appliesTo { principal: User, resource: Doc };",
            "a.cedar": #"@id("reader") permit (principal == ?principal, action, resource == ?resource);"#,
            "links.json": #"[{"template_id": "reader", "link_id": "ana-reads-d1", "args": {"?principal": "User::\"ana\"", "?resource": "Doc::\"d1\""}}, {"template_id": "reader", "link_id": "ben-reads-d2", "args": {"?principal": "User::\"ben\"", "?resource": "Doc::\"d2\""}}]"#,
        ]
        for (name, text) in files { try text.write(toFile: root + "/policies/" + name, atomically: true, encoding: .utf8) }
        let params = #"{"principal":{"type":"User","id":"ana"},"action":{"type":"Action","id":"read"},"resource":{"type":"Doc","id":"d1"}}"#
        let suite = #"{"suite":"s","policies":"../policies","time":"2026-06-01T12:00:00Z","cases":[{"name":"ana reads d1","method":"decide","params":\#(params),"expect":{"decision":"allow","reasons":["ana-reads-d1"]}}]}"#
        try suite.write(toFile: root + "/suites/s.json", atomically: true, encoding: .utf8)
        let r = try runCustosCommand(["test", "--coverage", root + "/suites"])
        #expect(r.status == 0, "\(r.out)\(r.err)")
        #expect(r.out.contains("policy not exercised: ben-reads-d2"), "\(r.out)")
        #expect(!r.out.contains("ana-reads-d1 ("), "\(r.out)")
        #expect(!r.out.contains("not exercised: reader"), "\(r.out)")
    }
}
