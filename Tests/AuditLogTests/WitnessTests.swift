import AuditLog
import Foundation
import Testing

/// `AuditWitness.check`: a log against the signed checkpoints a witness holds for it
/// (docs/fleet.md, "Checkpoint witnessing").
@Suite struct WitnessTests {
    /// A closed log of `count` entries starting at entry `first`, and its newest checkpoint note.
    static func log(_ dir: String, signer: NoteSigner, first: Int = 0, count: Int) throws -> String {
        let w = try AuditWriter.open(stateDirectory: dir, mode: .always,
                                     checkpointEvery: CheckpointPolicy(entries: 1000, milliseconds: 600_000), signer: signer)
        for i in first..<(first + count) { _ = try w.append(Fixture.entry(i)) }
        try w.close()
        return try #require(w.latestCheckpoint)
    }

    @Test func aLogThatExtendsEveryWitnessedCheckpointPasses() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let s = try Fixture.signer()
        let at10 = try Self.log(dir.path, signer: s, count: 10)
        let at30 = try Self.log(dir.path, signer: s, first: 10, count: 20)
        let r = AuditWitness.check(logDirectory: dir.path, publicKey: s.verifierKey,
                                   witnessed: [WitnessNote(note: at10, source: "row 1"), WitnessNote(note: at30, source: "row 2")])
        #expect(r.failure == nil, "\(String(describing: r.failure))")
        #expect(r.checked == 2)
        #expect(r.newest?.size == 30)
        #expect(r.unsigned.isEmpty)
    }

    /// Rolled back with its checkpoints: locally consistent, shorter than what was witnessed.
    @Test func aLogShorterThanAWitnessedCheckpointIsTruncated() throws {
        let dir = TempDir(), old = TempDir()
        defer { dir.cleanup(); old.cleanup() }
        let s = try Fixture.signer()
        _ = try Self.log(old.path, signer: s, count: 10)
        _ = try Self.log(dir.path, signer: s, count: 10)
        let at30 = try Self.log(dir.path, signer: s, first: 10, count: 20)
        #expect(AuditVerifier.verify(stateDirectory: old.path, publicKey: s.verifierKey).isValid, "the rolled-back copy verifies on its own")
        let r = AuditWitness.check(logDirectory: old.path, publicKey: s.verifierKey, witnessed: [WitnessNote(note: at30, source: "row 7")])
        #expect(r.failure?.kind == .truncated)
        #expect(r.failure?.message.contains("row 7") == true)
    }

    /// Rewritten with the signing key: the same size, another root.
    @Test func aRewrittenLogOfAWitnessedSizeIsForkedAndSoAreTwoRootsInTheWitness() throws {
        let dir = TempDir(), other = TempDir()
        defer { dir.cleanup(); other.cleanup() }
        let s = try Fixture.signer()
        let mine = try Self.log(dir.path, signer: s, count: 20)
        let theirs = try Self.log(other.path, signer: s, first: 500, count: 20)
        let againstLog = AuditWitness.check(logDirectory: dir.path, publicKey: s.verifierKey, witnessed: [WitnessNote(note: theirs, source: "w")])
        #expect(againstLog.failure?.kind == .forked)
        let inWitness = AuditWitness.check(logDirectory: dir.path, publicKey: s.verifierKey,
                                           witnessed: [WitnessNote(note: mine, source: "a"), WitnessNote(note: theirs, source: "b")])
        #expect(inWitness.failure?.kind == .forked)
        #expect(inWitness.failure?.message.contains("two checkpoints of size 20") == true)
    }

    /// Anyone who may write the witness table could add a note: only the log's key counts.
    @Test func aNoteTheLogsKeyDidNotSignIsSetAsideNotTrusted() throws {
        let dir = TempDir(), other = TempDir()
        defer { dir.cleanup(); other.cleanup() }
        let s = try Fixture.signer()
        _ = try Self.log(dir.path, signer: s, count: 5)
        let forged = try Self.log(other.path, signer: try Fixture.signer(), count: 50)
        let r = AuditWitness.check(logDirectory: dir.path, publicKey: s.verifierKey, witnessed: [WitnessNote(note: forged, source: "row 9")])
        #expect(r.failure == nil)
        #expect(r.checked == 0)
        #expect(r.unsigned.count == 1 && r.unsigned[0].hasPrefix("row 9: "))
    }
}
