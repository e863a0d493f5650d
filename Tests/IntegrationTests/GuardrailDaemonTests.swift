import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Testing

/// The guardrails through the real `custos serve`: decisions, reloads, and durability of
/// consent and hold changes across kill -9.
@Suite(.serialized) struct GuardrailDaemonTests {
    /// A TestDaemon over the example policies including `guardrails/` (TestDaemon copies only
    /// the top-level files).
    static func daemon(config: String? = nil) throws -> TestDaemon {
        let d = try TestDaemon(config: config)
        let fm = FileManager.default
        try fm.createDirectory(atPath: d.policies + "/guardrails", withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: daemonExamplePolicies + "/guardrails") {
            try fm.copyItem(atPath: daemonExamplePolicies + "/guardrails/" + name, toPath: d.policies + "/guardrails/" + name)
        }
        return try d.start()
    }

    /// Starts a second `custos serve` on the same policies, state and socket as `d` (after `d`
    /// was killed) and waits until it answers.
    static func restart(_ d: TestDaemon) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: daemonCustosBinary)
        p.arguments = ["serve", "--policies", d.policies, "--socket", d.socket, "--state", d.dir]
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        if eventually({ answersHealth(d.socket) }) { return p }
        kill(p.processIdentifier, SIGKILL)
        throw DaemonFailure(message: "the restarted daemon did not answer on \(d.socket)")
    }

    /// SIGKILL, then wait for the exit, so the next daemon never races the dying one.
    static func killHard(_ p: Process) {
        guard p.isRunning else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    static func request(_ who: String, _ action: String, _ dataset: String, _ context: String) throws -> JSON {
        try JSON.parse(#"{"principal":{"type":"User","id":"\#(who)"},"action":{"type":"Action","id":"\#(action)"},"resource":{"type":"Dataset","id":"\#(dataset)"},"context":\#(context)}"#)
    }

    static let train = #"{"purpose":"ml_model_training","region":"eu-central-1"}"#

    static func codes(_ r: Result<JSON, RPCError>) throws -> [String] {
        try r.get().objectValue?["guardrail_reasons"]?.arrayValue?.compactMap { $0.objectValue?["code"]?.stringValue } ?? []
    }

    @Test func theRealDaemonDeniesWithTheGuardrailCodeAndAllowsWithObligations() throws {
        let d = try Self.daemon()
        let c = try d.client()
        let status = try c.call("policy.status").get().objectValue
        #expect(status?["guardrails"]?.stringValue?.hasPrefix("active (") == true)
        let out = try c.call("decide", params: Self.request("alice", "read", "onc301-de-clinical", #"{"purpose":"primary_research","region":"in-hyderabad"}"#))
        #expect(decisionOf(out) == "deny")
        #expect(try Self.codes(out) == ["residency.cross_border"])
        let ok = try c.call("decide", params: try exampleRequest("allow-scientist-reads-own-study.json"))
        #expect(decisionOf(ok) == "allow")
        #expect(try ok.get().objectValue?["obligations"]?.arrayValue?.first?.objectValue?["kind"]?.stringValue == "legal_basis")
    }

    @Test func consentAndHoldChangesSurviveKillNineRightAfterTheAcknowledgement() throws {
        let d = try Self.daemon()
        let train = try Self.request("erin", "train_model", "onc301-de-clinical", Self.train)
        let delete = try Self.request("olivia", "delete", "onc301-de-feasibility", "{}")
        let c = try d.client()
        #expect(try Self.codes(c.call("decide", params: train)) == ["consent.missing"])
        _ = try c.call("consent.grant", params: try JSON.parse(#"{"cohort":"onc301-de","purpose":"ml_model_training","evidence":"ICF v3"}"#)).get()
        _ = try c.call("hold.set", params: try JSON.parse(#"{"dataset":"onc301-de-feasibility","matter":"LIT-2026-7","reason":"claim"}"#)).get()
        // No clean shutdown: the acknowledgements above are all the daemon gave.
        Self.killHard(d.process)

        let second = try Self.restart(d)
        defer { Self.killHard(second) }
        let c2 = try d.client()
        #expect(decisionOf(try c2.call("decide", params: train)) == "allow", "the grant survived")
        #expect(try Self.codes(c2.call("decide", params: delete)) == ["retention.legal_hold"], "the hold survived")
        _ = try c2.call("consent.withdraw", params: try JSON.parse(#"{"cohort":"onc301-de","purpose":"ml_model_training"}"#)).get()
        _ = try c2.call("hold.release", params: try JSON.parse(#"{"dataset":"onc301-de-feasibility","matter":"LIT-2026-7","reason":"settled"}"#)).get()
        Self.killHard(second)

        let third = try Self.restart(d)
        defer { Self.killHard(third) }
        let c3 = try d.client()
        #expect(try Self.codes(c3.call("decide", params: train)) == ["consent.withdrawn"], "the withdrawal survived")
        #expect(decisionOf(try c3.call("decide", params: delete)) == "allow", "the release survived")
        let history = try c3.call("consent.get", params: try JSON.parse(#"{"cohort":"onc301-de"}"#)).get().objectValue?["history"]?.arrayValue
        #expect(history?.map { $0.objectValue?["op"]?.stringValue } == ["consent.grant", "consent.withdraw"])
    }

    @Test func aBadGuardrailConfigurationIsRejectedAtReloadAndThePreviousOneStaysInService() throws {
        let d = try Self.daemon(config: #"{"access":{"methods":{"policy.reload":"anyone"}}}"#)
        let c = try d.client()
        let before = try #require(try c.call("policy.status").get().objectValue?["revision"]?.stringValue)
        try d.write("guardrails/transfers.json", #"{"last_reviewed":"2026-06-30","adequacy":[{"destination":"IN","scope":"whole_territory","decision":"wishful","colour":"red"}],"bases":[]}"#)
        let r = try c.call("policy.reload")
        #expect(errorCodeOf(r) == -32004)
        if case .failure(let e) = r {
            #expect(e.message.contains("guardrails/transfers.json") && e.message.contains("$.adequacy[0]"), "\(e.message)")
        }
        let status = try c.call("policy.status").get().objectValue
        #expect(status?["revision"]?.stringValue == before)
        #expect(status?["guardrails"]?.stringValue?.hasPrefix("active (") == true)
        // India is still not adequate: the kept configuration decides.
        let out = try c.call("decide", params: Self.request("alice", "read", "onc301-de-clinical", #"{"purpose":"primary_research","region":"in-hyderabad"}"#))
        #expect(try Self.codes(out) == ["residency.cross_border"])
    }
}
