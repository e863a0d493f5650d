import CustosJSON
import CustosServer
import Foundation
import Glibc
import Testing

/// `custos serve` writing its audit log, judged the way an auditor would: by `custos audit
/// query` and `custos audit verify` on the state folder.
@Suite struct AuditDaemonTests {
    static let decideParams: JSON = .object(JSONObject([
        "principal": .object(JSONObject(["type": .string("User"), "id": .string("alice")])),
        "action": .object(JSONObject(["type": .string("Action"), "id": .string("read")])),
        "resource": .object(JSONObject(["type": .string("Dataset"), "id": .string("onc301-de-clinical")])),
        "context": .object(JSONObject(["purpose": .string("primary_research"), "note": .string("clinical free text")])),
    ]))

    /// Entries `custos audit query` finds with `filters`, as parsed JSON lines.
    static func query(_ state: String, _ filters: [String]) throws -> [JSON] {
        let r = try runCustosCommand(["audit", "query", "--state", state] + filters)
        try #require(r.status == 0, "audit query failed: \(r.err)")
        return try r.out.split(separator: "\n").map { try JSON.parse(String($0)) }
    }

    static func verify(_ state: String) throws -> (status: Int32, out: String, err: String) {
        let pub = try runCustosCommand(["audit", "pubkey", "--state", state])
        try #require(pub.status == 0, "audit pubkey failed: \(pub.err)")
        let pubPath = state + "/verifier.pub"
        try pub.out.write(toFile: pubPath, atomically: true, encoding: .utf8)
        return try runCustosCommand(["audit", "verify", "--state", state, "--pubkey", pubPath])
    }

    @Test func decisionsBatchesRefusalsAndReloadsAreRecordedFoundByQueryAndVerified() throws {
        let d = try TestDaemon(config: #"{"access":{"methods":{"policy.status":"nobody"}}}"#,
                               extraArguments: ["--audit-context", "purpose"])
        try d.start()
        let one = try d.call("decide", Self.decideParams).get()
        let oneID = try #require(one.objectValue?["decision_id"]?.stringValue)
        let batch = try d.call("decide.batch", .object(JSONObject(["requests": .array([Self.decideParams, Self.decideParams, Self.decideParams])]))).get()
        let batchIDs = (batch.objectValue?["results"]?.arrayValue ?? []).compactMap { $0.objectValue?["decision_id"]?.stringValue }
        #expect(batchIDs.count == 3)
        #expect(errorCodeOf(try d.call("policy.status")) == RPCError.forbiddenCode)
        try d.write("extra.cedar", "permit(principal, action == Action::\"audit-test\", resource);\n")
        let reload = try d.call("policy.reload").get()
        let newRevision = try #require(reload.objectValue?["revision"]?.stringValue)

        // The RPC view of the same log, while the daemon runs (the test runs as the daemon's uid).
        let viaRPC = try d.call("audit.query", .object(JSONObject(["decision_id": .string(oneID)]))).get()
        #expect(viaRPC.objectValue?["count"]?.intValue == 1)
        let cp = try d.call("audit.checkpoint").get()
        #expect(cp.objectValue?["checkpoint"] != nil)

        d.signal(SIGTERM)
        #expect(d.waitForExit() == 0, "custos serve did not stop cleanly: \(d.stderrText())")

        let found = try Self.query(d.dir, ["--decision-id", oneID])
        try #require(found.count == 1)
        let e = found[0]
        #expect(e["method"]?.stringValue == "decide")
        #expect(e["principal"]?.stringValue == #"User::"alice""#)
        #expect(e["action"]?.stringValue == #"Action::"read""#)
        #expect(e["resource"]?.stringValue == #"Dataset::"onc301-de-clinical""#)
        #expect(e["decision"]?.stringValue == "allow")
        #expect(e["purpose"]?.stringValue == "primary_research")
        #expect(e["caller"]?["uid"]?.intValue == Int64(getuid()))
        #expect(e["caller"]?["user"]?.stringValue?.isEmpty == false)
        #expect(e["request_sha256"]?.stringValue?.count == 64)
        #expect(e["policy_revision"]?.stringValue == one.objectValue?["policy_revision"]?.stringValue)
        // Only allow-listed context reaches the log.
        #expect(e["context"]?["purpose"]?.stringValue == "primary_research")
        #expect(e["context"]?["note"] == nil)

        let batchEntries = try Self.query(d.dir, ["--method", "decide.batch"])
        #expect(Set(batchEntries.compactMap { $0["decision_id"]?.stringValue }) == Set(batchIDs))

        let refused = try Self.query(d.dir, ["--method", "policy.status"])
        #expect(refused.count == 1)
        #expect(refused.first?["decision"]?.stringValue == "deny")

        let reloads = try Self.query(d.dir, ["--method", "policy.reload"])
        #expect(reloads.count == 1)
        #expect(reloads.first?["policy_revision"]?.stringValue == newRevision)
        #expect(reloads.first?["reasons"]?.arrayValue?.contains(.string("loaded " + newRevision)) == true)

        #expect(try Self.query(d.dir, ["--method", "daemon.start"]).count == 1)
        #expect(try Self.query(d.dir, ["--method", "daemon.stop"]).count == 1)

        let v = try Self.verify(d.dir)
        #expect(v.status == 0, "audit verify: \(v.out) \(v.err)")
        #expect(v.out.hasPrefix("OK"))
    }

    @Test func aSecondDaemonOnTheSameStateFolderIsRefused() throws {
        let first = try TestDaemon()
        try first.start()
        let second = try runCustosCommand(["serve", "--policies", first.policies, "--state", first.dir,
                                           "--socket", first.dir + "/second.sock"])
        #expect(second.status == 2)
        #expect(second.err.contains("another custos serve is writing the audit log"))
    }

    @Test func noAuditSaysSoAtStartAndWritesNoLog() throws {
        let d = try TestDaemon(extraArguments: ["--no-audit"])
        try d.start()
        _ = try d.call("decide", Self.decideParams).get()
        d.signal(SIGTERM)
        #expect(d.waitForExit() == 0)
        #expect(d.stderrText().contains("WITHOUT an audit log"))
        #expect(!FileManager.default.fileExists(atPath: d.dir + "/audit"))
    }

    @Test func auditMethodsAreRefusedToOtherUIDsByDefault() throws {
        // Run as root, the test can only show the rule through a configuration that names
        // another uid as the sole admin; the default (daemon uid only) is checked in
        // CustosDaemonTests.
        let d = try TestDaemon(config: #"{"access":{"methods":{"audit.query":{"allow_uids":[4242]},"audit.checkpoint":{"allow_uids":[4242]}}}}"#)
        try d.start()
        #expect(errorCodeOf(try d.call("audit.query")) == RPCError.forbiddenCode)
        #expect(errorCodeOf(try d.call("audit.checkpoint")) == RPCError.forbiddenCode)
    }
}
