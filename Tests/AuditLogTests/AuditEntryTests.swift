import AuditLog
import CustosJSON
import Testing

@Suite struct AuditEntryTests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (Int64(1_700_000_000_123), "2023-11-14T22:13:20.123Z"),
        (Int64(1_709_164_800_007), "2024-02-29T00:00:00.007Z"),
        (Int64(-1), "1969-12-31T23:59:59.999Z"),
        (Int64(253_402_300_799_999), "9999-12-31T23:59:59.999Z"),
    ])
    func timestampsFormatAsFixedWidthUTC(_ ms: Int64, _ text: String) {
        let t = AuditTimestamp(millisecondsSinceEpoch: ms)
        #expect(t.rfc3339 == text)
        #expect(AuditTimestamp(rfc3339: text) == t)
    }

    @Test(arguments: ["2024-02-30T00:00:00Z", "2024-01-01T00:00:00+01:00", "2024-01-01 00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:00:00.Z"])
    func nonUTCOrInvalidTimestampsAreRejected(_ text: String) {
        #expect(AuditTimestamp(rfc3339: text) == nil)
    }

    @Test func secondPrecisionTimestampParses() {
        #expect(AuditTimestamp(rfc3339: "1970-01-01T00:00:01Z")?.millisecondsSinceEpoch == 1000)
        #expect(AuditTimestamp(rfc3339: "1970-01-01T00:00:01.5Z")?.millisecondsSinceEpoch == 1500)
    }

    @Test func canonicalJSONHasFixedMemberOrderAndSortedContext() throws {
        var e = Fixture.entry(0, time: AuditTimestamp(millisecondsSinceEpoch: 0))
        e.seq = 7
        e.context = JSONObject(["zeta": .int(1), "alpha": .object(JSONObject(["b": .bool(true), "a": .null]))])
        let text = String(decoding: e.canonicalJSON(), as: UTF8.self)
        #expect(text == #"{"seq":7,"time":"1970-01-01T00:00:00.000Z","decision_id":"d-0","caller":{"uid":1000,"gid":1000,"pid":4242,"user":"ehr-gateway"},"method":"policy.update","principal":"Clinician::\"c0\"","action":"Action::\"write\"","resource":"Record::\"r0\"","purpose":"treatment","basis":"GDPR-9-2-h","decision":"deny","reasons":["policy0"],"policy_revision":"rev-1","request_sha256":"abababababababababababababababababababababababababababababababab","context":{"alpha":{"a":null,"b":true},"zeta":1}}"#)
        let back = try AuditEntry(canonicalJSON: e.canonicalJSON())
        #expect(back.canonicalJSON() == e.canonicalJSON())
    }

    @Test func optionalMembersAreOmittedAndEntryReadsBack() throws {
        var e = Fixture.entry(1)
        e.purpose = nil; e.basis = nil; e.reasons = []
        let bytes = e.canonicalJSON()
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(!text.contains("purpose") && !text.contains("basis") && !text.contains("context"))
        #expect(try AuditEntry(canonicalJSON: bytes) == e)
    }

    enum Field: String, CaseIterable, Sendable { case principal, action, resource, purpose, basis, reason, method, user }

    /// A caller can send about 1 MiB; escaping can double it. Whatever the field, the entry keeps
    /// a prefix and the length and SHA-256 of the whole value, and stays small.
    @Test(arguments: Field.allCases)
    func anOversizeFieldIsStoredAsPrefixLengthAndHash(_ field: Field) throws {
        let huge = "User::\"" + String(repeating: "\"\\", count: 500_000) + "\""
        var e = Fixture.entry(3)
        switch field {
        case .principal: e.principal = huge
        case .action: e.action = huge
        case .resource: e.resource = huge
        case .purpose: e.purpose = huge
        case .basis: e.basis = huge
        case .reason: e.reasons = ["policy1", huge]
        case .method: e.method = huge
        case .user: e.caller.user = huge
        }
        let bytes = e.canonicalJSON()
        #expect(bytes.count < 8 * 1024, "\(field): \(bytes.count) bytes")
        let back = try AuditEntry(canonicalJSON: bytes)
        let stored = switch field {
        case .principal: back.principal
        case .action: back.action
        case .resource: back.resource
        case .purpose: back.purpose ?? ""
        case .basis: back.basis ?? ""
        case .reason: back.reasons.last ?? ""
        case .method: back.method
        case .user: back.caller.user
        }
        let suffix = "\u{2026}[\(huge.utf8.count) bytes, sha256:\(SHA256Digest.hash(huge).hex)]"
        #expect(stored.hasSuffix(suffix), "\(field): \(stored.suffix(120))")
        #expect(huge.hasPrefix(String(stored.dropLast(suffix.count))))
        #expect(stored.utf8.count <= AuditBound.maxBytes)
        #expect(stored == AuditBound.bounded(huge))
    }

    @Test(arguments: [AuditBound.maxBytes - 1, AuditBound.maxBytes, AuditBound.maxBytes + 1])
    func valuesUpToTheBoundAreStoredAsTheyAre(_ length: Int) {
        let s = String(repeating: "a", count: length)
        #expect((AuditBound.bounded(s) == s) == (length <= AuditBound.maxBytes))
    }

    @Test func theKeptPrefixNeverSplitsACharacter() {
        // 'é' is two bytes: with an odd start the cut falls inside one unless it backs off.
        let s = "x" + String(repeating: "\u{E9}", count: 2000)
        let b = AuditBound.bounded(s)
        let prefix = b[..<b.firstIndex(of: "\u{2026}")!]
        #expect(prefix.utf8.count <= AuditBound.prefixBytes)
        #expect(s.hasPrefix(prefix))
        #expect(!prefix.unicodeScalars.contains("\u{FFFD}"))
    }

    @Test func anOversizeContextValueBecomesTheBoundedFormOfItsJSON() throws {
        var e = Fixture.entry(0)
        let names: [JSON] = (0..<50_000).map { .string("node-\($0)") }
        e.context = JSONObject(["names": .array(names), "count": .int(3)])
        let bytes = e.canonicalJSON()
        #expect(bytes.count < 4 * 1024)
        let back = try AuditEntry(canonicalJSON: bytes)
        var w = JSONWriter()
        w.value(.array(names))
        #expect(back.context?["names"]?.stringValue == AuditBound.bounded(w.text))
        #expect(back.context?["count"] == .int(3), "small values are kept as they are")
    }
}
