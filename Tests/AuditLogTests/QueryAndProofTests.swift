import AuditLog
import CustosJSON
import Foundation
import Testing

@Suite struct QueryAndProofTests {
    static let t0 = AuditTimestamp(millisecondsSinceEpoch: 1_780_000_000_000)

    /// 300 entries one millisecond apart, plus one whose context has a key named "principal".
    static func makeLog() throws -> (TempDir, NoteSigner) {
        let dir = TempDir("query")
        let s = try Fixture.signer()
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: .off, signer: s)
        for i in 0..<300 { try w.append(Fixture.entry(i, time: t0)) }
        var decoy = Fixture.entry(300, time: t0)
        decoy.principal = "Clinician::\"other\""
        decoy.context = JSONObject(["principal": .string("Clinician::\"c1\"")])
        try w.append(decoy)
        try w.close()
        return (dir, s)
    }

    @Test func filtersCombineAndMatchExactly() throws {
        let (dir, _) = try Self.makeLog()
        defer { dir.cleanup() }
        let c1 = try AuditQuery(principal: "Clinician::\"c1\"").run(stateDirectory: dir.path)
        #expect(c1.map(\.seq) == (0..<300).filter { $0 % 7 == 1 }.map(UInt64.init))
        let deniedWrites = try AuditQuery(action: "Action::\"write\"", decision: .deny).run(stateDirectory: dir.path)
        #expect(deniedWrites.map(\.seq) == (0...300).filter { $0 % 12 == 0 }.map(UInt64.init))
        let one = try AuditQuery(decisionID: "d-123").run(stateDirectory: dir.path)
        #expect(one.map(\.seq) == [123])
        let policy = try AuditQuery(resource: "Record::\"r10\"", method: "policy.update").run(stateDirectory: dir.path)
        #expect(policy.map(\.seq) == [10, 60, 110, 160, 210, 260])
        #expect(try AuditQuery(principal: "Clinician::\"C1\"").run(stateDirectory: dir.path).isEmpty)
    }

    @Test func timeWindowIsSinceInclusiveUntilExclusive() throws {
        let (dir, _) = try Self.makeLog()
        defer { dir.cleanup() }
        let q = AuditQuery(since: AuditTimestamp(millisecondsSinceEpoch: Self.t0.millisecondsSinceEpoch + 100),
                           until: AuditTimestamp(millisecondsSinceEpoch: Self.t0.millisecondsSinceEpoch + 105))
        #expect(try q.run(stateDirectory: dir.path).map(\.seq) == [100, 101, 102, 103, 104])
        var limited = AuditQuery(decision: .allow)
        limited.limit = 3
        #expect(try limited.run(stateDirectory: dir.path).map(\.seq) == [1, 2, 3])
    }

    @Test func inclusionProofVerifiesWithOnlyThePublicKey() throws {
        let (dir, s) = try Self.makeLog()
        defer { dir.cleanup() }
        for index: UInt64 in [0, 1, 150, 299, 300] {
            let proof = try AuditInclusionProof.generate(stateDirectory: dir.path, index: index)
            let cp = try proof.verify(publicKey: s.verifierKey)
            #expect(cp.size == 301)
            #expect(try AuditEntry(canonicalJSON: proof.entry).seq == index)
        }
        #expect(throws: AuditError.self) { try AuditInclusionProof.generate(stateDirectory: dir.path, index: 301) }
    }

    @Test func inclusionProofForAnAlteredEntryOrAnotherKeyIsRejected() throws {
        let (dir, s) = try Self.makeLog()
        defer { dir.cleanup() }
        let proof = try AuditInclusionProof.generate(stateDirectory: dir.path, index: 42)
        var altered = proof
        altered.entry = Array(String(decoding: proof.entry, as: UTF8.self)
            .replacingOccurrences(of: "\"allow\"", with: "\"deny\"").utf8)
        #expect(altered.entry != proof.entry)
        #expect(throws: AuditError.self) { try altered.verify(publicKey: s.verifierKey) }
        var moved = proof
        moved.index = 43
        #expect(throws: AuditError.self) { try moved.verify(publicKey: s.verifierKey) }
        let stranger = try Fixture.signer()
        #expect(throws: AuditError.self) { try proof.verify(publicKey: stranger.verifierKey) }
    }

    /// The log's key signed the checkpoint, but for another log (a key reused across logs): it
    /// must not vouch for this log's tree, in a proof or as an anchor.
    @Test func aCheckpointTheKeySignedForAnotherLogProvesNothingHere() throws {
        let (dir, s) = try Self.makeLog()
        defer { dir.cleanup() }
        let proof = try AuditInclusionProof.generate(stateDirectory: dir.path, index: 42)
        let mine = try Checkpoint(signedNote: proof.checkpointNote, ofLog: s.verifierKey)
        var elsewhere = proof
        elsewhere.checkpointNote = try s.sign(Checkpoint(origin: "another.example/log", size: mine.size, root: mine.root))
        #expect(try Checkpoint(signedNote: elsewhere.checkpointNote, verifier: s.verifierKey).root == mine.root, "signed by the key")
        #expect(throws: AuditError.self) { try elsewhere.verify(publicKey: s.verifierKey) }
        #expect(try proof.verify(publicKey: s.verifierKey).size == mine.size, "the control")
        let anchored = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey, anchors: [elsewhere.checkpointNote])
        #expect(anchored.failure?.kind == .badSignature, "\(String(describing: anchored.failure))")
        #expect(AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey, anchors: [proof.checkpointNote]).isValid)
    }
}
