import AuditLog
import Cedar
import CustosDaemon
import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

@Suite struct AuditRecorderTests {
    static func tempState() -> String {
        Scratch.directory("cxar")
    }

    static let caller = CallContext(uid: 4242, gid: 4243, pid: 99, connectionID: 1)

    @Test func auditMethodsAreOnlyForTheDaemonUIDByDefault() {
        let access = DaemonConfig.defaultAccess(adminUID: 500)
        for method in ["audit.query", "audit.checkpoint"] {
            #expect(access.rule(for: method).permits(uid: 500, gid: 1), "\(method)")
            #expect(!access.rule(for: method).permits(uid: 501, gid: 1), "\(method)")
        }
    }

    @Test func theRequestHashDoesNotDependOnContextMemberOrderButOnEveryValue() throws {
        func request(_ context: String) throws -> Request {
            let o = try #require(try JSON.parse(context).objectValue)
            return Request(principal: try EntityUID(json: try JSON.parse(#"{"type":"User","id":"a"}"#)),
                           action: try EntityUID(json: try JSON.parse(#"{"type":"Action","id":"read"}"#)),
                           resource: try EntityUID(json: try JSON.parse(#"{"type":"Dataset","id":"d"}"#)),
                           context: try CedarRecord(json: o))
        }
        let a = AuditRecorder.requestHash(try request(#"{"purpose":"care","n":{"y":1,"x":2}}"#))
        let b = AuditRecorder.requestHash(try request(#"{"n":{"x":2,"y":1},"purpose":"care"}"#))
        let c = AuditRecorder.requestHash(try request(#"{"n":{"x":2,"y":1},"purpose":"billing"}"#))
        #expect(a == b)
        #expect(a != c)
        #expect(a.count == 64)
    }

    @Test func theRequestHashIsTheSHA256OfTheDocumentedCanonicalJSON() throws {
        let context = #"{"z":[true,2,"s"],"purpose":"care","who":{"__entity":{"type":"User","id":"b"}},"#
            + #""when":{"__extn":{"fn":"datetime","arg":"2026-01-02"}},"n":{"y":-1,"x":"\u00e9"}}"#
        let o = try #require(try JSON.parse(context).objectValue)
        let r = Request(principal: EntityUID("User", "a"), action: EntityUID("Action", "read"),
                        resource: EntityUID("Dataset", "d"), context: try CedarRecord(json: o))
        let canonical = #"{"action":{"id":"read","type":"Action"},"#
            + #""context":{"n":{"x":"é","y":-1},"purpose":"care","#
            + #""when":{"__extn":{"arg":"2026-01-02","fn":"datetime"}},"#
            + #""who":{"__entity":{"id":"b","type":"User"}},"z":["s",2,true]},"#
            + #""principal":{"id":"a","type":"User"},"resource":{"id":"d","type":"Dataset"}}"#
        #expect(AuditRecorder.requestHash(r) == SHA256Digest.hash(canonical).hex)
        // A set is a set: the order its elements were sent in does not change the hash.
        let reordered = try #require(try JSON.parse(context.replacingOccurrences(of: #"[true,2,"s"]"#, with: #"[2,"s",true]"#)).objectValue)
        var r2 = r
        r2.context = try CedarRecord(json: reordered)
        #expect(AuditRecorder.requestHash(r2) == SHA256Digest.hash(canonical).hex)
    }

    @Test func aSecondRecorderOnTheSameStateFolderIsRefusedUntilTheFirstCloses() throws {
        let state = Self.tempState()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let first = try AuditRecorder.open(stateDirectory: state)
        #expect(throws: AuditRecorderError.self) { try AuditRecorder.open(stateDirectory: state) }
        try first.close()
        let again = try AuditRecorder.open(stateDirectory: state)
        try again.close()
    }

    @Test func eventsBecomeEntriesAndClosingSignsACheckpointCoveringThemAll() throws {
        let state = Self.tempState()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let r = try AuditRecorder.open(stateDirectory: state)
        let hook = r.recorder
        try hook.event(.started(revision: "sha256:r1"))
        try hook.event(.refused(method: "policy.reload", caller: Self.caller))
        try hook.event(.policyLoaded(previous: "sha256:r1", revision: "sha256:r2", caller: Self.caller))
        try hook.event(.stopped)
        #expect(hook.unavailable() == nil)
        try r.close()
        #expect(hook.unavailable() != nil, "a closed log keeps nothing, so health must not say ready")
        #expect(throws: RecorderError.self) { try hook.event(.stopped) }

        let found = try AuditMethods.query(Params(.object(JSONObject(["method": .string("policy.reload")]))),
                                           logDirectory: state + "/audit")
        let entries = found.objectValue?["entries"]?.arrayValue ?? []
        #expect(entries.count == 2)
        let refused = try #require(entries.first { $0["decision"]?.stringValue == "deny" })
        #expect(refused["caller"]?["uid"]?.intValue == 4242)
        #expect(refused["caller"]?["pid"]?.intValue == 99)
        let load = try #require(entries.first { $0["decision"]?.stringValue == "allow" })
        #expect(load["policy_revision"]?.stringValue == "sha256:r2")
        #expect(load["reasons"]?.arrayValue == [.string("previous sha256:r1"), .string("loaded sha256:r2")])

        let cp = try AuditMethods.checkpoint(logDirectory: state + "/audit")
        #expect(cp.objectValue?["size"]?.intValue == 4)
    }

    @Test func queryLimitsAndReportsTruncation() throws {
        let state = Self.tempState()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let r = try AuditRecorder.open(stateDirectory: state)
        for _ in 0..<5 { try r.recorder.event(.stopped) }
        try r.close()
        let out = try AuditMethods.query(Params(.object(JSONObject(["limit": .int(3)]))), logDirectory: state + "/audit")
        #expect(out.objectValue?["count"]?.intValue == 3)
        #expect(out.objectValue?["truncated"] == .bool(true))
        #expect(throws: RPCError.self) {
            try AuditMethods.query(Params(.object(JSONObject(["principle": .string("x")]))), logDirectory: state + "/audit")
        }
    }

    static func record(_ i: Int) -> DecisionRecord {
        DecisionRecord(method: "decide", caller: caller,
                       request: Request(principal: EntityUID("User", "u\(i)"), action: EntityUID("Action", "read"),
                                        resource: EntityUID("Dataset", "d"), context: CedarRecord()),
                       decision: .deny, policyRevision: "r",
                       // A decision's own clock reading, taken before it reaches the log.
                       decidedAt: WallTime(seconds: 1_700_000_000 - Int64(i), nanoseconds: 0))
    }

    @Test func decisionIDsAndTimesAreMadeInLogOrderWhateverConnectionGetsThereFirst() throws {
        let state = Self.tempState()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let r = try AuditRecorder.open(stateDirectory: state)
        let hook = r.recorder
        let given = Mutex<[String]>([])
        let group = DispatchGroup()
        for t in 0..<16 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                for i in 0..<40 {
                    var records = [Self.record(t * 100 + i), Self.record(t * 100 + i + 50)]
                    guard let enqueue = hook.enqueue, let commit = hook.commit,
                          let last = try? enqueue(&records), (try? commit(last)) != nil else { continue }
                    given.withLock { $0 += records.map(\.decisionID) }
                }
            }
        }
        group.wait()
        try r.close()
        let entries = try AuditQuery().run(stateDirectory: state + "/audit")
        #expect(entries.count == 16 * 40 * 2)
        let ids = entries.map(\.decisionID)
        #expect(zip(ids, ids.dropFirst()).allSatisfy { $0.utf8.lexicographicallyPrecedes($1.utf8) }, "ids increase in log order")
        #expect(zip(entries, entries.dropFirst()).allSatisfy { $0.time <= $1.time }, "times never go back in log order")
        #expect(given.withLock { $0 }.sorted() == ids, "each caller got the id that was logged")
    }

    @Test func idsContinueAfterTheLastEntryOfTheLogAcrossARestart() throws {
        let state = Self.tempState()
        defer { try? FileManager.default.removeItem(atPath: state) }
        // The log's last id is ten minutes ahead of a fresh one, as after the clock was set back
        // between runs.
        let (hi, lo) = DecisionID.next()
        let lastID = DecisionID.format(hi: hi + (600_000 << 16), lo: lo)
        let signer = try AuditState.loadOrCreateSigner(state: state)
        let w = try AuditWriter.open(stateDirectory: state + "/audit", signer: signer)
        try w.append(AuditEntry(decisionID: lastID, caller: AuditCaller(uid: 1, gid: 1, pid: 1, user: "u"), method: "decide",
                                principal: "p", action: "a", resource: "r", decision: .deny, policyRevision: "r",
                                requestSHA256: String(repeating: "0", count: 64)))
        try w.close()
        let r = try AuditRecorder.open(stateDirectory: state)
        var records = [Self.record(0)]
        try r.keep(&records)
        try r.close()
        #expect(records[0].decisionID > lastID)
    }

    @Test func theStartEntryNamesWhatOpeningTheLogCut() throws {
        let state = Self.tempState()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let first = try AuditRecorder.open(stateDirectory: state)
        for _ in 0..<4 { try first.recorder.event(.stopped) }
        try first.close()
        let files = ["checkpoints.log", "checkpoint.head"].map { state + "/audit/" + $0 }
        let covering4 = files.map { FileManager.default.contents(atPath: $0)! }
        let second = try AuditRecorder.open(stateDirectory: state)
        try second.recorder.event(.stopped)
        try second.close()
        // A crash between the fifth entry's write and its checkpoint leaves this.
        for (path, data) in zip(files, covering4) { try data.write(to: URL(fileURLWithPath: path)) }
        let again = try AuditRecorder.open(stateDirectory: state)
        #expect(again.openNotes.count == 1)
        try again.recorder.event(.started(revision: "sha256:r"))
        try again.close()
        let start = try #require(try AuditQuery(method: "daemon.start").run(stateDirectory: state + "/audit").first)
        #expect(start.seq == 4, "the fifth entry was cut, and the start entry took its place")
        #expect(start.reasons.count == 2 && start.reasons[1].hasPrefix("cut entries 4..<5 (1) written after the newest checkpoint"), "\(start.reasons)")
    }

    @Test func theStartEntryNamesATornHistoryRecordThatWasCut() throws {
        let state = Self.tempState()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let first = try AuditRecorder.open(stateDirectory: state)
        try first.recorder.event(.stopped)
        try first.close()
        let history = state + "/audit/checkpoints.log"
        let bytes = try #require(FileManager.default.contents(atPath: history))
        try (bytes + bytes.prefix(40)).write(to: URL(fileURLWithPath: history))  // a crash mid-write
        let again = try AuditRecorder.open(stateDirectory: state)
        #expect(again.openNotes == ["cut a torn final record of checkpoints.log of 40 bytes (a history checkpoint whose write was interrupted)"])
        try again.close()
    }
}
