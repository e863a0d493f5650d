import AuditLog
import CustosJSON
import Foundation
import Testing

/// `forEachMatchingRecord` passes entries without a context on the byte tests alone; it must
/// give exactly what parsing every candidate gives, including for entries built to fool the
/// byte tests (a context member named like a filter, a reason quoting one, a recorded request
/// holding namesakes of the top-level members).
@Suite struct QueryFastPathTests {
    static func log() throws -> TempDir {
        let dir = TempDir("fastpath")
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: .off, signer: try Fixture.signer())
        for i in 0..<400 {
            var e = Fixture.entry(i)
            switch i % 8 {
            case 1:
                // A denied entry whose allow-listed context says "decision":"allow".
                e.decision = .deny
                e.context = JSONObject(["decision": .string("allow"), "principal": .string("Clinician::\"c1\"")])
            case 2:
                // A reason quoting a filter: inside a JSON string its quotes are escaped.
                e.reasons = [#""decision":"allow""#, #""action":"Action::\"read\"""#]
                e.decision = .deny
            case 3:
                e.action = #"Action::"read_metadata""#  // a longer value with the same prefix
            case 4:
                // A denied entry with no context whose recorded request (audit.record_requests)
                // holds a request entity with members named like filters.
                e.decision = .deny
                e.context = nil
                e.request = .object(JSONObject(["format": .int(1), "entities": .array([.object(JSONObject([
                    "attrs": .object(JSONObject(["decision": .string("allow"), "principal": .string("Clinician::\"c1\"")]))]))])]))
            default:
                break
            }
            try w.append(e)
        }
        try w.close()
        return dir
    }

    static let queries: [(String, AuditQuery)] = [
        ("decision allow", AuditQuery(decision: .allow)),
        ("decision deny", AuditQuery(decision: .deny)),
        ("principal c1", AuditQuery(principal: #"Clinician::"c1""#)),
        ("action read", AuditQuery(action: #"Action::"read""#)),
        ("action read, decision allow, limit 7", AuditQuery(action: #"Action::"read""#, decision: .allow, limit: 7)),
        ("decision id", AuditQuery(decisionID: "d-201")),
        ("time window", AuditQuery(since: AuditTimestamp(millisecondsSinceEpoch: 1_780_000_000_100),
                                   until: AuditTimestamp(millisecondsSinceEpoch: 1_780_000_000_150))),
    ]

    @Test(arguments: queries.indices)
    func theFastPathGivesExactlyWhatParsingGives(_ i: Int) throws {
        let dir = try Self.log()
        defer { dir.cleanup() }
        let (name, q) = Self.queries[i]
        let parsed = try q.run(stateDirectory: dir.path).map(\.seq)
        var fast: [UInt64] = []
        try q.forEachMatchingRecord(stateDirectory: dir.path) { payload in
            if let e = try? AuditEntry(canonicalJSON: Array(payload)) { fast.append(e.seq) }
        }
        #expect(fast == parsed, "\(name)")
        #expect(!parsed.isEmpty, "\(name) matches something, so the comparison means something")
    }
}
