import AuditLog
import CustosJSON
import Foundation
import Glibc
import Testing

/// `audit.record_requests` and `custos diff --audit` through the real binaries: a daemon records
/// the traffic it decides, is stopped, and its log is replayed under a changed policy folder.
@Suite struct ReplayDaemonTests {
    static let recordConfig = #"{"audit":{"record_requests":true},"access":{"methods":{"entities":{"allow_uids":[\#(getuid())]}}}}"#

    /// A copy of the shipped policies (schema and guardrails included) at `path`, with `extra`
    /// entities appended to entities.json (a suite's fixture entities join the folder's). The
    /// harness adds fixture entities after the schema has validated the folder, and some are
    /// deliberately malformed for the guardrails (a `legal_hold` that is not a Bool): a folder
    /// holding them keeps no schema, as the suite's loaded folder is validated without them.
    static func copyPolicies(to path: String, extraEntities: [JSON] = []) throws {
        try FileManager.default.copyItem(atPath: daemonExamplePolicies, toPath: path)
        guard !extraEntities.isEmpty else { return }
        try FileManager.default.removeItem(atPath: path + "/schema.cedarschema")
        let file = path + "/entities.json"
        let shipped = try JSON.parse(String(contentsOfFile: file, encoding: .utf8))
        try JSON.array((shipped.arrayValue ?? []) + extraEntities).serialized.write(toFile: file, atomically: true, encoding: .utf8)
    }

    /// The same folder without one policy file (the auditors' permit unless told): the change
    /// under assessment.
    static func changed(_ v1: String, to path: String, removing policy: String = "30-auditors.cedar") throws -> String {
        try FileManager.default.copyItem(atPath: v1, toPath: path)
        try FileManager.default.removeItem(atPath: path + "/" + policy)
        return path
    }

    /// A daemon serving `policies` with record_requests on and `context` allow-listed.
    static func recordingDaemon(_ policies: String, context: [String], config: String = recordConfig) throws -> TestDaemon {
        try TestDaemon(config: config, copyExample: false, extraArguments: ["--audit-context", context.joined(separator: ",")],
                       source: ["--policies", policies]).start()
    }

    static func stop(_ d: TestDaemon) throws {
        d.signal(SIGTERM)
        try #require(d.waitForExit() == 0, "\(d.stderrText())")
    }

    /// seq -> decision_id of the log's entries.
    static func decisionIDs(_ state: String) throws -> [String: String] {
        let q = try runCustosCommand(["audit", "query", "--state", state])
        try #require(q.status == 0, "\(q.err)")
        var out: [String: String] = [:]
        for line in q.out.split(separator: "\n") {
            let e = try JSON.parse(String(line))
            out["seq \(e["seq"]?.intValue ?? -1)"] = e["decision_id"]?.stringValue
        }
        return out
    }

    static func diff(_ args: [String]) throws -> (status: Int32, report: JSON, err: String) {
        let r = try runCustosCommand(["diff"] + args + ["--json"])
        let report = (try? JSON.parse(r.out)) ?? .null
        return (r.status, report, r.err)
    }

    static func changedCases(_ report: JSON) -> Set<String> {
        Set((report["decisions_changed"]?.arrayValue ?? []).map { ($0["suite"]?.stringValue ?? "") + "/" + ($0["case"]?.stringValue ?? "") })
    }

    // MARK: acceptance

    /// The shipped suites' one-call `decide` and `transfer` cases are sent, suite by suite, to a daemon whose
    /// world is the suite's (the shipped folder with the suite's fixture entities, its consent
    /// fixtures granted over the socket); replaying each log under the change must flip exactly
    /// the cases `diff --suites` says flip. Suites with holds fixtures are left out: a hold's
    /// set and release times cannot be given over the socket.
    @Test func replayingARecordedLogReportsTheSameFlipsAsTheSuites() throws {
        let root = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let shippedChange = try Self.changed(daemonExamplePolicies, to: root + "/shipped-v2")
        let reference = try Self.diff(["--from", daemonExamplePolicies, "--to", shippedChange, "--suites", daemonRepoRoot + "/conformance"])
        #expect(reference.status == 1, "\(reference.err)")
        let bySuites = Self.changedCases(reference.report)
        try #require(!bySuites.isEmpty, "the change flips some decisions of the shipped suites")

        var sent = Set<String>(), byReplay = Set<String>()
        let files = try FileManager.default.contentsOfDirectory(atPath: daemonRepoRoot + "/conformance").filter { $0.hasSuffix(".json") }.sorted()
        for (i, file) in files.enumerated() {
            let suite = try JSON.parse(String(contentsOfFile: daemonRepoRoot + "/conformance/" + file, encoding: .utf8))
            let name = suite["suite"]?.stringValue ?? file
            let fixtures = suite["fixtures"]?.objectValue ?? JSONObject()
            if fixtures["holds"] != nil { continue }
            let cases = (suite["cases"]?.arrayValue ?? []).filter {
                $0["steps"] == nil && $0["at"] == nil && $0["stale_state"] == nil && ["decide", "transfer"].contains($0["method"]?.stringValue ?? "decide")
            }
            if cases.isEmpty { continue }
            let v1 = root + "/\(i)-v1"
            try Self.copyPolicies(to: v1, extraEntities: fixtures["entities"]?.arrayValue ?? [])
            let v2 = try Self.changed(v1, to: root + "/\(i)-v2")
            var keys = Set<String>()
            for c in cases { keys.formUnion(c["params"]?["context"]?.objectValue?.keys ?? []) }
            let d = try Self.recordingDaemon(v1, context: keys.sorted())
            for grant in fixtures["consent"]?.arrayValue ?? [] {
                var g = try #require(grant.objectValue)
                g.members.removeAll { $0.key == "withdrawn_at" }
                _ = try d.call("consent.grant", .object(g)).get()
                if grant["withdrawn_at"] != nil {
                    let w = JSONObject(g.members.filter { ["dataset", "cohort", "purpose"].contains($0.key) })
                    _ = try d.call("consent.withdraw", .object(w)).get()
                }
            }
            var caseOf: [String: String] = [:]
            for c in cases {
                let caseName = name + "/" + (c["name"]?.stringValue ?? "")
                if case .success(let answer) = try d.call(c["method"]?.stringValue ?? "decide", c["params"]),
                   let id = answer["decision_id"]?.stringValue {
                    caseOf[id] = caseName
                    sent.insert(caseName)
                }
            }
            try Self.stop(d)
            let ids = try Self.decisionIDs(d.dir)
            let replay = try Self.diff(["--from", v1, "--to", v2, "--audit", d.dir])
            #expect(replay.status == 0 || replay.status == 1, "\(file): \(replay.err)")
            #expect(replay.report["suite_errors"] == .array([]), "\(file)")
            let audit = replay.report["audit"]
            #expect(audit?["decisions_read"]?.intValue == Int64(caseOf.count), "\(file)")
            #expect(audit?["replayed_without_unrecorded_context"] == .int(0), "\(file)")
            // No case names an inventory node: every decide and transfer sent is replayed.
            #expect(audit?["skipped"] == .array([]), "\(file)")
            #expect(audit?["replayed"]?.intValue == Int64(caseOf.count), "\(file)")
            // FROM is the folder that made every recorded decision: its replay gives each the recorded answer.
            #expect(audit?["checked_against_recorded"] == audit?["replayed"], "\(file)")
            #expect(audit?["disagree_with_recorded"] == .array([]), "\(file)")
            for change in replay.report["decisions_changed"]?.arrayValue ?? [] {
                let seq = change["case"]?.stringValue ?? ""
                let c = try #require(ids[seq].flatMap { caseOf[$0] }, "\(file): \(seq) is not a decision this test sent")
                byReplay.insert(c)
            }
        }
        #expect(bySuites.isSubset(of: sent), "every flip of the suites was among the requests sent: \(bySuites.subtracting(sent))")
        #expect(byReplay == bySuites.intersection(sent), "replay: \(byReplay.symmetricDifference(bySuites.intersection(sent)))")
    }

    // MARK: what is recorded and what is refused

    static let scientist = "allow-scientist-reads-own-study.json"

    @Test func withoutRecordRequestsNothingMoreIsRecordedAndNothingIsReplayed() throws {
        let root = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.copyPolicies(to: root + "/v1")
        let v2 = try Self.changed(root + "/v1", to: root + "/v2")
        let d = try Self.recordingDaemon(root + "/v1", context: ["purpose", "region"], config: "{}")
        #expect(decisionOf(try d.call("decide", try exampleRequest(Self.scientist))) == "allow")
        try Self.stop(d)
        let q = try runCustosCommand(["audit", "query", "--state", d.dir, "--method", "decide"])
        #expect(q.status == 0)
        #expect(q.out.contains("\"context\":{"), "the allow-listed context is kept as before: \(q.out)")
        #expect(!q.out.contains("\"request\""), "\(q.out)")

        let r = try Self.diff(["--from", root + "/v1", "--to", v2, "--audit", d.dir])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.report["cases"] == .int(0))
        #expect(r.report["audit"]?["decisions_read"] == .int(1))
        #expect(r.report["audit"]?["replayed"] == .int(0))
        #expect(r.report["audit"]?["skipped"] == .array([.object(JSONObject([
            "reason": .string("no recorded request (audit.record_requests was off)"), "count": .int(1)]))]))
    }

    @Test func aLogWhoseRecordedRequestWasAlteredIsRefusedAndNothingIsReplayed() throws {
        let root = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.copyPolicies(to: root + "/v1")
        let v2 = try Self.changed(root + "/v1", to: root + "/v2")
        let d = try Self.recordingDaemon(root + "/v1", context: ["purpose", "region"])
        #expect(decisionOf(try d.call("decide", try exampleRequest(Self.scientist))) == "allow")
        try Self.stop(d)
        let pub = try runCustosCommand(["audit", "pubkey", "--state", d.dir])
        try pub.out.write(toFile: root + "/log.pub", atomically: true, encoding: .utf8)
        let before = try Self.diff(["--from", root + "/v1", "--to", v2, "--audit", d.dir, "--pubkey", root + "/log.pub"])
        #expect(before.report["audit"]?["replayed"] == .int(1), "\(before.err)")

        // Someone with write access to the folder puts another principal into the recorded
        // request and frames the record again with valid checksums: only the Merkle tree can tell.
        let segment = try #require(try AuditCommandTests.segments(d.dir).first)
        var bytes = try AuditCommandTests.read(segment)
        let records = AuditCommandTests.records(bytes)
        let target = try #require(records.last { r in
            let payload = Array(bytes[(r.lowerBound + 12)..<r.upperBound])
            return String(decoding: payload, as: UTF8.self).contains(#""request":{"#)
        })
        var payload = Array(bytes[(target.lowerBound + 12)..<target.upperBound])
        let text = String(decoding: payload, as: UTF8.self)
        let requestStart = try #require(text.range(of: #""request":{"#)).lowerBound
        let head = String(text[..<requestStart]), tail = String(text[requestStart...])
        let id = try #require(tail.range(of: #""principal":{"id":""#))
        let altered = String(tail[..<id.upperBound]) + "m" + String(tail[id.upperBound...])
        payload = Array((head + altered).utf8)
        var framed: [UInt8] = []
        RecordFrame.append(payload, to: &framed)
        bytes.replaceSubrange(target, with: framed)
        try AuditCommandTests.write(segment, bytes)

        let r = try Self.diff(["--from", root + "/v1", "--to", v2, "--audit", d.dir, "--pubkey", root + "/log.pub"])
        #expect(r.status == 3, "\(r.err)")
        #expect(r.err.contains("the audit log does not verify (FAIL: corrupt"), "\(r.err)")
        #expect(r.err.contains("nothing was replayed"))
        #expect(r.report == .null, "no report is printed")
    }

    @Test func aRequestOverTheBoundIsCountedAsNotReplayableWithWhy() throws {
        let root = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.copyPolicies(to: root + "/v1")
        let v2 = try Self.changed(root + "/v1", to: root + "/v2", removing: "10-data-scientists.cedar")
        let d = try Self.recordingDaemon(root + "/v1", context: ["purpose", "region", "note"])
        let small = try exampleRequest(Self.scientist)
        var big = try #require(small.objectValue)
        var context = try #require(big["context"]?.objectValue)
        context.append("note", .string(String(repeating: "n", count: 70_000)))
        big.members.removeAll { $0.key == "context" }
        big.append("context", .object(context))
        #expect(decisionOf(try d.call("decide", small)) == "allow")
        #expect(decisionOf(try d.call("decide", .object(big))) == "allow")
        try Self.stop(d)

        // A log with recorded requests is a log like any other.
        let verified = try runCustosCommand(["audit", "verify", "--state", d.dir])
        #expect(verified.status == 0, "\(verified.out)\(verified.err)")
        let r = try Self.diff(["--from", root + "/v1", "--to", v2, "--audit", d.dir])
        #expect(r.status == 1, "the scientist's read flips: \(r.err)")
        #expect(r.report["audit"]?["decisions_read"] == .int(2))
        #expect(r.report["audit"]?["replayed"] == .int(1))
        #expect(r.report["audit"]?["skipped"] == .array([.object(JSONObject([
            "reason": .string("the request is over the 65536-byte bound of a recorded request"), "count": .int(1)]))]))
        let md = try runCustosCommand(["diff", "--from", root + "/v1", "--to", v2, "--audit", d.dir])
        #expect(md.out.contains("2 recorded decisions: 1 replayed at their recorded time"), "\(md.out)")
        #expect(md.out.contains("| the request is over the 65536-byte bound of a recorded request | 1 |"), "\(md.out)")
    }

    @Test func sinceAndUntilSelectTheEntriesReplayedByTheirTime() throws {
        let root = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.copyPolicies(to: root + "/v1")
        let v2 = try Self.changed(root + "/v1", to: root + "/v2", removing: "10-data-scientists.cedar")
        let d = try Self.recordingDaemon(root + "/v1", context: ["purpose", "region"])
        for _ in 0..<4 { #expect(decisionOf(try d.call("decide", try exampleRequest(Self.scientist))) == "allow") }
        try Self.stop(d)
        let q = try runCustosCommand(["audit", "query", "--state", d.dir, "--method", "decide"])
        let times = try q.out.split(separator: "\n").map { try #require(try JSON.parse(String($0))["time"]?.stringValue) }
        try #require(times.count == 4)
        let mid = times[2]
        for (option, expected) in [("--since", times.filter { $0 >= mid }.count), ("--until", times.filter { $0 < mid }.count)] {
            let r = try Self.diff(["--from", root + "/v1", "--to", v2, "--audit", d.dir, option, mid])
            #expect(r.report["audit"]?["decisions_read"] == .int(Int64(expected)), "\(option) \(mid): \(r.err)")
            #expect(r.report["audit"]?["replayed"] == .int(Int64(expected)))
            #expect(Self.changedCases(r.report).count == expected, "each replayed read loses its permit")
        }
        let bad = try runCustosCommand(["diff", "--from", root + "/v1", "--to", v2, "--since", mid])
        #expect(bad.status == 2)
        #expect(bad.err.contains("--since applies to --audit only"), "\(bad.err)")
    }
}
