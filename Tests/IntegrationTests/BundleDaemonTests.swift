import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

/// `custos bundle verify` and `custos serve --bundles` judged on the same bundles: every way a
/// bundle can be wrong that issue 16 lists is refused by both, the daemon keeping the bundle in
/// service, naming the reason in `policy.status` and auditing the refusal.
@Suite struct BundleDaemonTests {
    static func status(_ d: TestDaemon) throws -> JSON { try d.call("policy.status").get() }

    static func activeSequence(_ d: TestDaemon) -> Int64? {
        guard let s = try? status(d), case .int(let n)? = s["bundle"]?["sequence"] else { return nil }
        return n
    }

    /// A daemon serving `lab.bundles`, with bundle 1 (the shipped example) in service.
    static func serving(_ lab: BundleLab) throws -> TestDaemon {
        try lab.publish(try lab.build(try lab.policies("v1"), sequence: 1, out: lab.dir + "/1.bundle"), as: "0001.bundle")
        let d = try TestDaemon(copyExample: false, source: ["--bundles", lab.bundles, "--trust", lab.trust]).start()
        try #require(eventually { activeSequence(d) == 1 }, "bundle 1 in service: \(d.stderrText())")
        return d
    }

    @Test(arguments: BundleLab.refusals)
    func aWrongBundleIsRefusedByVerifyAndByTheDaemonWhichKeepsTheLastGood(_ kind: String) throws {
        let lab = try BundleLab()
        let d = try Self.serving(lab)
        let good = try lab.build(try lab.policies("v2", extra: ["95-note.cedar": "// change 2\n"]), sequence: 2, out: lab.dir + "/2.bundle")
        let bad = lab.dir + "/bad.bundle"
        let says = try lab.tampered(kind, good: good, sequence: 2, out: bad)

        let v = try runCustosCommand(["bundle", "verify", bad, "--trust", lab.trust])
        #expect(v.status == 1, "verify: \(v.out)")
        #expect(v.err.contains(says), "verify said: \(v.err)")

        let before = try #require(try Self.status(d)["revision"]?.stringValue)
        try lab.publish(bad, as: "0002.bundle")
        let rejection = eventually { () -> JSON? in
            guard case .array(let rs)? = try? Self.status(d)["bundle_rejections"] else { return nil }
            return rs.first { $0["file"]?.stringValue == "0002.bundle" }
        }
        let r = try #require(rejection, "no rejection in policy.status: \(d.stderrText())")
        #expect(r["reason"]?.stringValue?.contains(says) == true, "policy.status said: \(r)")
        let s = try Self.status(d)
        #expect(s["revision"]?.stringValue == before)
        #expect(s["bundle"]?["sequence"] == .int(1))
        #expect(s["ready"] == .bool(true))
        #expect(s["last_reload_error"]?["message"]?.stringValue?.contains(says) == true)

        let audited = try AuditDaemonTests.query(d.dir, ["--method", "policy.load", "--resource", "bundle 0002.bundle"])
        let entry = try #require(audited.first, "the refusal is not in the audit log")
        #expect(entry["decision"] == .string("deny"))
        #expect(entry["action"] == .string("activate"))
        let reasons = entry["reasons"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(reasons.contains { $0.contains(says) }, "\(reasons)")
        #expect(reasons.contains("kept " + before), "\(reasons)")
    }

    /// Files claiming one sequence are weighed once verified: an unsigned file that claims the
    /// sequence of an approved bundle (anyone who can write to the folder can drop one) must
    /// not keep that bundle out of service. Every file is in the folder before the daemon
    /// starts, so one reload weighs them together.
    @Test func aTwinThatDoesNotVerifyDoesNotBlockTheApprovedBundleOfItsSequence() throws {
        let lab = try BundleLab()
        try lab.publish(try lab.build(try lab.policies("v1"), sequence: 1, out: lab.dir + "/1.bundle"), as: "0001.bundle")
        let good = try lab.build(try lab.policies("v2", extra: ["95-note.cedar": "// change 2\n"]), sequence: 2, out: lab.dir + "/2.bundle")
        let unsigned = try lab.build(try lab.policies("v2-other", extra: ["95-note.cedar": "// another change 2\n"]), sequence: 2,
                                     out: lab.dir + "/2-unsigned.bundle", approvers: [])
        try lab.publish(unsigned, as: "0002-a.bundle")
        try lab.publish(good, as: "0002-b.bundle")
        let d = try TestDaemon(copyExample: false, source: ["--bundles", lab.bundles, "--trust", lab.trust]).start()
        try #require(eventually { Self.activeSequence(d) == 2 }, "the approved bundle 2 is served: \(String(describing: try? Self.status(d)))")
        let s = try Self.status(d)
        #expect(s["bundle"]?["file"] == .string("0002-b.bundle"))
        let rejected = s["bundle_rejections"]?.arrayValue ?? []
        #expect(rejected.contains { $0["file"] == .string("0002-a.bundle") && $0["reason"]?.stringValue?.contains("approvals") == true }, "\(rejected)")
    }

    /// Two approved manifests for one sequence: which change was meant is not for the daemon
    /// to pick, so neither is served and the one before stays.
    @Test func twoApprovedBundlesClaimingOneSequenceServeNeither() throws {
        let lab = try BundleLab()
        try lab.publish(try lab.build(try lab.policies("v1"), sequence: 1, out: lab.dir + "/1.bundle"), as: "0001.bundle")
        try lab.publish(try lab.build(try lab.policies("v3", extra: ["95-note.cedar": "// change 3\n"]), sequence: 3, out: lab.dir + "/3.bundle"),
                        as: "0003-a.bundle")
        try lab.publish(try lab.build(try lab.policies("v3-other", extra: ["95-note.cedar": "// other change 3\n"]), sequence: 3,
                                      out: lab.dir + "/3-other.bundle"), as: "0003-b.bundle")
        let d = try TestDaemon(copyExample: false, source: ["--bundles", lab.bundles, "--trust", lab.trust]).start()
        try #require(eventually { Self.activeSequence(d) == 1 }, "bundle 1 in service: \(String(describing: try? Self.status(d)))")
        let rejected = try Self.status(d)["bundle_rejections"]?.arrayValue ?? []
        let twins = rejected.filter { $0["reason"]?.stringValue?.contains("claims sequence 3 too, with another approved manifest") == true }
        #expect(Set(twins.compactMap { $0["file"]?.stringValue }) == ["0003-a.bundle", "0003-b.bundle"], "\(rejected)")
    }

    @Test func aDowngradeIsRefusedByVerifyAndByTheDaemonButASignedRollbackIsServed() throws {
        let lab = try BundleLab()
        let d = try Self.serving(lab)
        let v2 = try lab.build(try lab.policies("v2", extra: ["95-note.cedar": "// change 2\n"]), sequence: 2, out: lab.dir + "/2.bundle")
        try lab.publish(v2, as: "0002.bundle")
        #expect(eventually { Self.activeSequence(d) == 2 })
        let rev2 = try #require(try Self.status(d)["revision"]?.stringValue)

        // verify, told what is in service (directly, or by the daemon's state folder).
        let byNumber = try runCustosCommand(["bundle", "verify", lab.dir + "/1.bundle", "--trust", lab.trust, "--in-service", "2"])
        #expect(byNumber.status == 1)
        #expect(byNumber.err.contains("going back is a downgrade"), "\(byNumber.err)")
        let byState = try runCustosCommand(["bundle", "verify", lab.dir + "/1.bundle", "--trust", lab.trust, "--state", d.dir])
        #expect(byState.status == 1)
        #expect(byState.err.contains("below the bundle in service (2)"), "\(byState.err)")

        // The daemon: the bundle in service taken away, only an older one left.
        try FileManager.default.removeItem(atPath: lab.bundles + "/0002.bundle")
        let refused = eventually { () -> String? in
            guard let m = try? Self.status(d)["last_reload_error"]?["message"]?.stringValue, m.contains("downgrade") else { return nil }
            return m
        }
        #expect(refused != nil, "\(d.stderrText())")
        #expect(try Self.status(d)["revision"]?.stringValue == rev2)
        #expect(Self.activeSequence(d) == 2)
        let audited = try AuditDaemonTests.query(d.dir, ["--method", "policy.load", "--decision", "deny"])
        #expect(audited.contains { e in e["reasons"]?.arrayValue?.contains { $0.stringValue?.contains("downgrade") == true } == true })

        // A rollback: bundle 1's files again, as sequence 3, approved like any change.
        let rollback = try lab.build(lab.dir + "/1.bundle", sequence: 3, out: lab.dir + "/3.bundle", rollbackOf: 2)
        let ok = try runCustosCommand(["bundle", "verify", rollback, "--trust", lab.trust, "--state", d.dir])
        #expect(ok.status == 0, "\(ok.err)")
        #expect(ok.out.contains("rollback of sequence 2"))
        try lab.publish(rollback, as: "0003.bundle")
        #expect(eventually { Self.activeSequence(d) == 3 }, "\(d.stderrText())")
        let s = try Self.status(d)
        #expect(s["bundle"]?["rollback_of"] == .int(2))
        #expect(s["revision"]?.stringValue != rev2)
        #expect(s["last_reload_error"] == .null)
    }

    @Test func anActivationIsInPolicyStatusAndTheAuditLogWithWhoApprovedIt() throws {
        let lab = try BundleLab()
        let d = try Self.serving(lab)
        let s = try Self.status(d)
        #expect(s["source"] == .string("bundles"))
        let b = try #require(s["bundle"])
        #expect(b["file"] == .string("0001.bundle"))
        #expect(b["change_ticket"] == .string("CC-1"))
        #expect(b["author"]?["name"] == .string("Alice Author"))
        let names = b["approvers"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        #expect(Set(names) == ["Quinn QA", "Lee Lead"])
        let keys = b["approvers"]?.arrayValue?.compactMap { $0["key"]?.stringValue } ?? []
        #expect(keys.count == 2 && keys.allSatisfy { $0.hasPrefix("sha256:") && $0.utf8.count == 71 })

        let audited = try AuditDaemonTests.query(d.dir, ["--method", "policy.load", "--resource", "bundle 1"])
        let e = try #require(audited.first, "no activation entry")
        #expect(e["decision"] == .string("allow"))
        #expect(e["policy_revision"] == s["revision"])
        let reasons = e["reasons"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(reasons.contains("sequence 1"))
        #expect(reasons.contains { $0.hasPrefix("approved by Quinn QA (sha256:") })
        #expect(reasons.contains { $0.hasPrefix("approved by Lee Lead (sha256:") })
        #expect(reasons.contains("change ticket CC-1"))
    }

    @Test func aRestartNeverServesAnOlderBundleThanTheStateFolderRecorded() throws {
        let lab = try BundleLab()
        let d = try Self.serving(lab)
        try lab.publish(try lab.build(try lab.policies("v2", extra: ["95-note.cedar": "// change 2\n"]), sequence: 2, out: lab.dir + "/2.bundle"), as: "0002.bundle")
        #expect(eventually { Self.activeSequence(d) == 2 })
        d.signal(SIGTERM)
        #expect(d.waitForExit() == 0)
        try FileManager.default.removeItem(atPath: lab.bundles + "/0002.bundle")
        let again = try TestDaemon(copyExample: false, source: ["--bundles", lab.bundles, "--trust", lab.trust], state: d.dir).start()
        let h = try again.call("health").get()
        #expect(h["ready"] == .bool(false))
        let s = try Self.status(again)
        #expect(s["bundle"] == .null)
        #expect(s["last_reload_error"]?["message"]?.stringValue?.contains("downgrade") == true, "\(s)")
    }

    @Test func aValidBundleActivatedUnderPipelinedLoadLosesNoRequest() throws {
        let lab = try BundleLab()
        let d = try Self.serving(lab)
        let v2 = try lab.build(try lab.policies("v2", extra: ["95-note.cedar": "// change 2\n"]), sequence: 2, out: lab.dir + "/2.bundle")
        let rev1 = try #require(try Self.status(d)["revision"]?.stringValue)
        let progress = LoadProgress()
        progress.extend.store(true, ordering: .relaxed)
        let published = Mutex<[String]>([])
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            defer { progress.extend.store(false, ordering: .relaxed); done.signal() }
            guard eventually({ progress.answered.load(ordering: .relaxed) > 0 }) else {
                published.withLock { $0.append("the load never answered") }
                return
            }
            do { try lab.publish(v2, as: "0002.bundle") } catch { published.withLock { $0.append("\(error)") } }
            // Keep the load going until the new bundle is in service and answers flowed after it.
            guard eventually({ Self.activeSequence(d) == 2 }) else {
                published.withLock { $0.append("bundle 2 never came into service") }
                return
            }
            let mark = progress.answered.load(ordering: .relaxed)
            _ = eventually { progress.answered.load(ordering: .relaxed) > mark + 1000 }
        }
        let tallies = try pipelinedLoad(socket: d.socket, clients: 16, perClient: 500, progress: progress)
        done.wait()
        #expect(published.withLock { $0 }.isEmpty, "\(published.withLock { $0 })")
        let wrong = tallies.flatMap(\.wrong)
        #expect(wrong.isEmpty, "\(wrong.prefix(5))")
        #expect(tallies.count == 16)
        let rev2 = try #require(try Self.status(d)["revision"]?.stringValue)
        #expect(rev2 != rev1)
        let seen = tallies.reduce(into: Set<String>()) { $0.formUnion($1.revisions) }
        #expect(seen == [rev1, rev2], "answers came from both bundles and from no other revision")
    }

    /// Each case of a `custos test --json` report: whether it passed, the decision it got
    /// (`allow`, `deny`, ...), and the policies that decided it.
    struct Outcome: Equatable { var passed: Bool; var decision: String; var policies: [String] }

    static func outcomes(_ out: String) throws -> [String: Outcome] {
        let report = try JSON.parse(out)
        var all: [String: Outcome] = [:]
        for c in report["cases"]?.arrayValue ?? [] {
            let id = (c["suite"]?.stringValue ?? "") + "/" + (c["case"]?.stringValue ?? "")
            let got = c["got"]?.stringValue ?? ""
            all[id] = Outcome(passed: c["passed"] == .bool(true), decision: String(got.prefix { $0 != "," }),
                              policies: c["policies"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        }
        return all
    }

    @Test func testWithPoliciesRunsTheShippedSuitesAgainstACandidateBundleAndShowsExactlyTheDecisionsThatFlip() throws {
        let lab = try BundleLab()
        let suites = daemonRepoRoot + "/conformance"
        let same = try lab.build(try lab.policies("v1"), sequence: 1, out: lab.dir + "/1.bundle")
        let reference = try runCustosCommand(["test", "--policies", same, "--json", suites])
        #expect(reference.status == 0, "\(reference.err)")
        let before = try Self.outcomes(reference.out)
        let decidedByAuditors = Set(before.filter { $0.value.policies.contains("auditor-reads-metadata") }.keys)
        let allowedByAuditors = Set(before.filter { $0.value.policies.contains("auditor-reads-metadata") && $0.value.decision == "allow" }.keys)
        try #require(!allowedByAuditors.isEmpty, "the shipped suites exercise auditor-reads-metadata")

        // The change under assessment: the auditors' permit removed. What it allowed alone
        // is now denied; nothing else changes its decision, and the cases that fail are all
        // cases it decided (some expect its name among the reasons without the decision flipping).
        let v2 = try lab.policies("v2")
        try FileManager.default.removeItem(atPath: v2 + "/30-auditors.cedar")
        let candidate = try lab.build(v2, sequence: 2, out: lab.dir + "/2.bundle")
        for (what, target) in [("bundle", candidate), ("folder", v2)] {
            let r = try runCustosCommand(["test", "--policies", target, "--json", suites])
            #expect(r.status == 1, "\(what)")
            let after = try Self.outcomes(r.out)
            #expect(Set(after.keys) == Set(before.keys))
            let flipped = Set(after.filter { before[$0.key]?.decision != $0.value.decision }.keys)
            #expect(flipped == allowedByAuditors, "\(what): \(flipped.symmetricDifference(allowedByAuditors))")
            #expect(flipped.allSatisfy { after[$0]?.decision == "deny" && after[$0]?.passed == false })
            let failed = Set(after.filter { !$0.value.passed }.keys)
            #expect(failed.isSubset(of: decidedByAuditors), "\(what): \(failed.subtracting(decidedByAuditors))")
        }

        let missing = try runCustosCommand(["test", "--policies", lab.dir + "/nowhere", suites])
        #expect(missing.status == 2)
        #expect(missing.err.contains("--policies"))
    }

    @Test func diffReportsExactlyTheDecisionsAChangeFlipsGroupedByThePolicy() throws {
        let lab = try BundleLab()
        let suites = daemonRepoRoot + "/conformance"
        let v1 = try lab.policies("v1")
        let reference = try runCustosCommand(["test", "--policies", v1, "--json", suites])
        let before = try Self.outcomes(reference.out)
        let decidedByAuditors = Set(before.filter { $0.value.policies.contains("auditor-reads-metadata") }.keys)
        let allowedByAuditors = Set(before.filter { $0.value.policies.contains("auditor-reads-metadata") && $0.value.decision == "allow" }.keys)
        try #require(!allowedByAuditors.isEmpty)

        let v2 = try lab.policies("v2")
        try FileManager.default.removeItem(atPath: v2 + "/30-auditors.cedar")
        let candidate = try lab.build(v2, sequence: 2, out: lab.dir + "/2.bundle")
        let r = try runCustosCommand(["diff", "--from", v1, "--to", candidate, "--suites", suites, "--json"])
        #expect(r.status == 1, "\(r.err)")
        let report = try JSON.parse(r.out)
        func ids(_ member: String) -> Set<String> {
            Set((report[member]?.arrayValue ?? []).map { ($0["suite"]?.stringValue ?? "") + "/" + ($0["case"]?.stringValue ?? "") })
        }
        #expect(ids("decisions_changed") == allowedByAuditors)
        #expect(ids("reasons_changed") == decidedByAuditors.subtracting(allowedByAuditors))
        let groups = report["groups"]?.arrayValue ?? []
        #expect(groups.count == 1)
        #expect(groups.first?["because"] == .string("policy auditor-reads-metadata"))
        #expect(Set(groups.first?["cases"]?.arrayValue?.compactMap(\.stringValue) ?? []) == allowedByAuditors)
        #expect(report["suite_errors"] == .array([]))

        let md = try runCustosCommand(["diff", "--from", v1, "--to", candidate, "--suites", suites])
        #expect(md.status == 1)
        #expect(md.out.contains("**\(allowedByAuditors.count) decisions change**"), "\(md.out.prefix(600))")
        #expect(md.out.contains("### policy auditor-reads-metadata (\(allowedByAuditors.count))"))

        let same = try runCustosCommand(["diff", "--from", v1, "--to", try lab.build(try lab.policies("v1b"), sequence: 3, out: lab.dir + "/3.bundle"), "--suites", suites, "--json"])
        #expect(same.status == 0, "\(same.err)")
        #expect(try JSON.parse(same.out)["decisions_changed"] == .array([]))
    }

    @Test func diffDecidesARequestsFileOnBothSidesAndReportsTheLineThatFlips() throws {
        let lab = try BundleLab()
        let v1 = try lab.policies("v1")
        let v2 = try lab.policies("v2")
        try FileManager.default.removeItem(atPath: v2 + "/30-auditors.cedar")
        let roles = try JSON.parse(String(contentsOfFile: daemonRepoRoot + "/conformance/roles.json", encoding: .utf8))
        let auditor = try #require(roles["cases"]?.arrayValue?.first { $0["name"]?.stringValue == "auditor reads the metadata of an ONC-301 dataset" }?["params"])
        let scientist = try exampleRequest("allow-scientist-reads-own-study.json")
        let file = lab.dir + "/requests.jsonl"
        try (scientist.serialized + "\n\n" + auditor.serialized + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let r = try runCustosCommand(["diff", "--from", v1, "--to", v2, "--requests", file, "--at", "2026-06-01T12:00:00Z", "--json"])
        #expect(r.status == 1, "\(r.err)")
        let report = try JSON.parse(r.out)
        let changed = report["decisions_changed"]?.arrayValue ?? []
        #expect(changed.map { $0["case"]?.stringValue } == [file + ":3"])
        #expect(changed.first?["from"]?["decision"] == .string("allow"))
        #expect(changed.first?["to"]?["decision"] == .string("deny"))
        #expect(report["cases"] == .int(2))

        let bad = lab.dir + "/bad.jsonl"
        try "{\"principal\": \n".write(toFile: bad, atomically: true, encoding: .utf8)
        let refused = try runCustosCommand(["diff", "--from", v1, "--to", v2, "--requests", bad])
        #expect(refused.status == 2)
        #expect(refused.err.contains(bad + ":1:"), "\(refused.err)")
    }
}
