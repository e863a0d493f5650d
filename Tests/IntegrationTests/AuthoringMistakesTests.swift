import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Testing

/// Issue 10 §2 through the real `custos serve` and socket: authoring mistakes fail closed.
@Suite(.serialized) struct AuthoringMistakesTests {
    static let typo = #"@id("typo-forbid") forbid(principal, action, resource) when { resource.data_stat == "identified" };"# + "\n"

    /// The study lead exports the identified US EHR extract: the example's own forbid denies it.
    static let export = #"{"principal":{"type":"User","id":"frank"},"action":{"type":"Action","id":"export"},"resource":{"type":"Dataset","id":"card201-us-ehr"},"context":{"purpose":"primary_research","region":"us-east-1"}}"#

    static func reloadError(_ d: TestDaemon) throws -> RPCError? {
        if case .failure(let e) = try d.call("policy.reload") { return e }
        return nil
    }

    /// A TestDaemon over the example policies including `guardrails/`.
    static func withGuardrails(files: [String: String] = [:]) throws -> TestDaemon {
        let d = try TestDaemon(files: files)
        let fm = FileManager.default
        try fm.createDirectory(atPath: d.policies + "/guardrails", withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: daemonExamplePolicies + "/guardrails") {
            try fm.copyItem(atPath: daemonExamplePolicies + "/guardrails/" + name, toPath: d.policies + "/guardrails/" + name)
        }
        return d
    }

    /// Every byte of the daemon's audit log (segments and checkpoints, not its keys).
    static func auditBytes(_ d: TestDaemon) throws -> String {
        let dir = d.dir + "/audit"
        var all = ""
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) where !name.hasSuffix(".key") {
            if let data = FileManager.default.contents(atPath: dir + "/" + name) { all += String(decoding: data, as: UTF8.self) }
        }
        return all
    }

    // MARK: a forbid that errors

    @Test func aForbidThatErrorsDeniesThroughTheSocketAndTheAuditLogSaysWhy() throws {
        let d = try TestDaemon(files: ["95-typo.cedar": Self.typo]).start()
        let request = try exampleRequest("allow-scientist-reads-own-study.json")
        let answer = try d.call("decide", request).get()
        #expect(answer["decision"] == .string("deny"))
        #expect(answer["reasons"] == .array([.string("typo-forbid")]))
        let error = try #require(answer["errors"]?.arrayValue?.first)
        #expect(error["code"] == .string("policy.forbid_error"))
        #expect(error["policy"] == .string("typo-forbid"))
        let id = try #require(answer["decision_id"]?.stringValue)
        let logged = try d.call("audit.query", .object(JSONObject(["decision_id": .string(id)]))).get()
        let reasons = logged["entries"]?.arrayValue?.first?["reasons"]?.arrayValue ?? []
        #expect(reasons.contains(.string("policy.forbid_error: typo-forbid")), "\(logged.serialized)")

        // Cedar's own behaviour, when the folder asks for it.
        try d.write("custos.json", #"{"forbid_errors": "skip"}"#)
        _ = try d.call("policy.reload").get()
        let skipped = try d.call("decide", request).get()
        #expect(skipped["decision"] == .string("allow"))
        #expect(skipped["errors"]?.arrayValue?.first?["code"] == nil)
    }

    @Test func custosAuthorizeStaysExactlyCedarOnAnErroringForbid() throws {
        let d = try TestDaemon(files: ["95-typo.cedar": Self.typo])
        let request = d.dir + "/request.json"
        try String(decoding: FileManager.default.contents(atPath: daemonExamplePolicies + "/requests/allow-scientist-reads-own-study.json")!, as: UTF8.self)
            .write(toFile: request, atomically: true, encoding: .utf8)
        let r = try runCustosCommand(["authorize", "--policies", d.policies, "--entities", d.policies + "/entities.json", "--request", request])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("\"decision\":\"allow\""), "\(r.out)")
    }

    @Test func aConformanceSuiteCanExpectPolicyForbidError() throws {
        let root = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/policies", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/suites", withIntermediateDirectories: true)
        try (#"@id("reads") permit(principal, action, resource);"# + "\n" + Self.typo)
            .write(toFile: root + "/policies/a.cedar", atomically: true, encoding: .utf8)
        let params = #"{"principal":{"type":"User","id":"ana"},"action":{"type":"Action","id":"read"},"resource":{"type":"Dataset","id":"d1"}}"#
        let suite = #"{"suite":"s","policies":"../policies","time":"2026-06-01T12:00:00Z","cases":[{"name":"typo denies","method":"decide","params":\#(params),"expect":{"decision":"deny","reasons":["typo-forbid"],"not_reasons":["reads"],"codes":["policy.forbid_error"]}}]}"#
        try suite.write(toFile: root + "/suites/s.json", atomically: true, encoding: .utf8)
        let r = try runCustosCommand(["test", root + "/suites"])
        #expect(r.status == 0, "\(r.out)\(r.err)")
        #expect(r.out.hasSuffix("1 passed, 0 failed\n"), "\(r.out)")
    }

    // MARK: switching a guardrail off

    @Test func aReloadThatWouldSwitchAGuardrailOffIsRefusedUnlessDisabledSaysWhyAndIsAudited() throws {
        let d = try Self.withGuardrails().start()
        let before = try d.call("policy.status").get()
        try FileManager.default.removeItem(atPath: d.policies + "/guardrails/retention.json")
        let refused = try #require(try Self.reloadError(d), "the reload switched retention off")
        #expect(refused.code == -32004)
        #expect(refused.message.contains("would switch off guardrails/retention.json"), "\(refused.message)")
        let kept = try d.call("policy.status").get()
        #expect(kept["revision"] == before["revision"])
        #expect(kept["guardrails"] == before["guardrails"])
        #expect(kept["last_reload_error"]?["message"]?.stringValue?.contains("guardrails/DISABLED") == true)

        // SIGHUP is refused the same way.
        d.signal(SIGHUP)
        #expect(eventually { (try? d.call("policy.status").get())?["last_reload_error"]?["at"] != kept["last_reload_error"]?["at"] })
        #expect(try d.call("policy.status").get()["revision"] == before["revision"])

        // On purpose: accepted, and audited with the reason.
        try d.write("guardrails/DISABLED", "CAB-4711: retention moves to the records system\n")
        let ok = try d.call("policy.reload").get()
        #expect(ok["reloaded"] == .bool(true))
        let status = try d.call("policy.status").get()
        #expect(status["guardrails_disabled"] == .string("CAB-4711: retention moves to the records system"))
        let entries = try d.call("audit.query", .object(JSONObject(["action": .string("switch_off")]))).get()["entries"]?.arrayValue ?? []
        #expect(entries.count == 1)
        let reasons = entries.first?["reasons"]?.arrayValue ?? []
        #expect(reasons == [.string("switched off guardrails/retention.json"), .string("reason: CAB-4711: retention moves to the records system")])
        d.signal(SIGTERM)
        #expect(d.waitForExit() == 0)
        #expect(d.stderrText().contains("guardrails SWITCHED OFF on purpose: guardrails/retention.json"))
    }

    @Test func aRestartCannotSwitchOffWhatAReloadCouldNot() throws {
        let d = try Self.withGuardrails().start()
        d.signal(SIGTERM)
        #expect(d.waitForExit() == 0)
        try FileManager.default.removeItem(atPath: d.policies + "/guardrails/compute.json")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: daemonCustosBinary)
        p.arguments = ["serve", "--policies", d.policies, "--socket", d.socket, "--state", d.dir]
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
        #expect(eventually { answersHealth(d.socket) })
        let c = try RPCClient(path: d.socket, timeout: .seconds(60))
        defer { c.close() }
        let health = try c.call("health").get()
        #expect(health["ready"] == .bool(false))
        let why = health["reasons"]?.arrayValue?.first?.stringValue ?? ""
        #expect(why.contains("would switch off guardrails/compute.json"), "\(why)")
        #expect(errorCodeOf(try c.call("decide", params: JSON.parse(Self.export))) == -32003)
    }

    // MARK: files that look like policies but are not read

    @Test("a renamed policy file fails the reload, naming it, and the forbid keeps protecting", arguments: [
        "90-forbid.cedar.bak", "90-forbid.Cedar", "90-forbid.cedr", "90-forbid.cedar ",
    ])
    func renamedFilesAreRefused(name: String) throws {
        let d = try Self.withGuardrails().start()
        let request = try JSON.parse(Self.export)
        #expect(decisionOf(try d.call("decide", request)) == "deny")
        try FileManager.default.moveItem(atPath: d.policies + "/90-forbid.cedar", toPath: d.policies + "/" + name)
        let refused = try #require(try Self.reloadError(d), "\(name) was silently not read")
        #expect(refused.code == -32004)
        #expect(refused.message.contains(d.policies + "/" + name + ": not a file the daemon reads"), "\(refused.message)")
        #expect(decisionOf(try d.call("decide", request)) == "deny")
        let check = try runCustosCommand(["check", "--policies", d.policies])
        #expect(check.status == 1)
        #expect(check.err.contains(name + ": not a file the daemon reads"))

        // Listed on purpose: the folder loads without it (and says so in its files).
        // Blanks around a pattern are trimmed, so a trailing space is matched with `?`.
        let pattern = name.hasSuffix(" ") ? name.dropLast() + "?" : name
        try d.write(".custosignore", "# kept for reference, not in force\n" + pattern + "\n")
        _ = try d.call("policy.reload").get()
        #expect(try d.call("policy.status").get()["policies"] == .int(15), "the example's 17 policies without the 2 of 90-forbid.cedar")
    }

    // MARK: byte-order mark

    @Test func aByteOrderMarkGetsOneVerdictFromServeCheckAndAuthorize() throws {
        let d = try TestDaemon().start()
        let file = d.policies + "/10-data-scientists.cedar"
        let text = try #require(FileManager.default.contents(atPath: file))
        try Data([0xEF, 0xBB, 0xBF] + [UInt8](text)).write(to: URL(fileURLWithPath: file))
        let refused = try #require(try Self.reloadError(d))
        #expect(refused.message.contains(file + ":1:1: the file starts with a UTF-8 byte-order mark"), "\(refused.message)")
        let check = try runCustosCommand(["check", "--policies", d.policies])
        #expect(check.status == 1 && check.err.contains("byte-order mark"), "\(check.err)")
        let request = d.dir + "/request.json"
        try Self.export.write(toFile: request, atomically: true, encoding: .utf8)
        let authorize = try runCustosCommand(["authorize", "--policies", d.policies, "--entities", d.policies + "/entities.json", "--request", request])
        #expect(authorize.status == 2 && authorize.err.contains("byte-order mark"), "\(authorize.out) \(authorize.err)")

        // The same for JSON: entities.json with a BOM.
        try Data(text).write(to: URL(fileURLWithPath: file))
        let entities = try #require(FileManager.default.contents(atPath: d.policies + "/entities.json"))
        try Data([0xEF, 0xBB, 0xBF] + [UInt8](entities)).write(to: URL(fileURLWithPath: d.policies + "/entities.json"))
        #expect(try Self.reloadError(d)?.message.contains("entities.json:1:1: invalid JSON: starts with a UTF-8 byte-order mark") == true)
        let authorize2 = try runCustosCommand(["authorize", "--policies", d.policies, "--entities", d.policies + "/entities.json", "--request", request])
        #expect(authorize2.status == 2 && authorize2.err.contains("byte-order mark"), "\(authorize2.err)")
    }

    // MARK: symbolic links and what errors may show

    static let secret = "root:$6$S3CR3TSALT$ZmFrZWhhc2g:19000:0:99999:7:::"

    @Test func aLinkToASecretIsRefusedAndTheSecretNeverLeaks() throws {
        let d = try TestDaemon().start()
        let secretFile = d.dir + "/shadow"
        try (Self.secret + "\n").write(toFile: secretFile, atomically: true, encoding: .utf8)
        let entities = d.policies + "/entities.json"

        // A link to a secret outside the folder, then to the audit signing key.
        for target in [secretFile, d.dir + "/audit/signing.key"] {
            try FileManager.default.removeItem(atPath: entities)
            try FileManager.default.createSymbolicLink(atPath: entities, withDestinationPath: target)
            let refused = try #require(try Self.reloadError(d))
            #expect(refused.message.contains(entities + ": is a symbolic link that leads outside the policies folder"), "\(refused.message)")
        }
        // A regular file in the folder holding the secret: refused by line:col and token class.
        try FileManager.default.removeItem(atPath: entities)
        try (Self.secret + "\n").write(toFile: entities, atomically: true, encoding: .utf8)
        let parsed = try #require(try Self.reloadError(d))
        #expect(parsed.message.contains(entities + ":1:"), "\(parsed.message)")
        #expect(parsed.message.hasSuffix("invalid JSON: invalid token at a bare word"), "\(parsed.message)")

        let key = try String(decoding: #require(FileManager.default.contents(atPath: d.dir + "/audit/signing.key")), as: UTF8.self)
        let keyLine = key.split(separator: "\n").first.map(String.init) ?? key
        let status = try d.call("policy.status").get().serialized
        let audit = try Self.auditBytes(d)
        d.signal(SIGTERM)
        #expect(d.waitForExit() == 0)
        let stderr = d.stderrText()
        for (name, text) in [("policy.status", status), ("the audit log", audit), ("stderr", stderr), ("the reload error", parsed.message)] {
            #expect(!text.contains("S3CR3T") && !text.contains("root:"), "the secret leaked into \(name)")
            #expect(!text.contains(keyLine), "the signing key leaked into \(name)")
        }
        #expect(stderr.contains("leads outside the policies folder"))
    }

    @Test func aDaemonStartedOnALinkOutsideIsNotReadyAndSaysWhichLink() throws {
        let d = try TestDaemon()
        try FileManager.default.removeItem(atPath: d.policies + "/entities.json")
        try FileManager.default.createSymbolicLink(atPath: d.policies + "/entities.json", withDestinationPath: "/etc/passwd")
        try d.start()
        let health = try d.call("health").get()
        #expect(health["ready"] == .bool(false))
        let why = health["reasons"]?.arrayValue?.first?.stringValue ?? ""
        #expect(why.contains("entities.json: is a symbolic link that leads outside"), "\(why)")
        #expect(!why.contains("root"))
    }
}
