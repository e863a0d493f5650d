import AuditLog
import Cedar
import CustosDaemon
import CustosJSON
import CustosServer
import Foundation
import Glibc
import Testing

@Suite struct AuditRecorderTests {
    static func tempState() -> String {
        var template = Array("/tmp/cxar-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(p != nil, "mkdtemp failed")
        return String(cString: p!)
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
}
