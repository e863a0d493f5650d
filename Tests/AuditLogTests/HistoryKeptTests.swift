import AuditLog
import CustosJSON
import Foundation
import Synchronization
import Testing

/// Every acknowledged entry is covered by a signed checkpoint on disk (`checkpoint.head`), so
/// removing one is detectable with the public key alone; entries that no checkpoint covers stop
/// the writer from opening (beyond one unacknowledged batch, which it cuts) and fail
/// verification, until the explicit recovery records that they were accepted.
@Suite struct HistoryKeptTests {
    /// Copies of the folder's files: the state a `kill -9` leaves, or one to put back later.
    static func snapshot(_ dir: TempDir, _ names: [String]? = nil) throws -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        for name in try names ?? FileManager.default.contentsOfDirectory(atPath: dir.path) {
            files[name] = Fixture.read(dir.path + "/" + name)
        }
        return files
    }

    static func restore(_ files: [String: [UInt8]], into dir: TempDir) throws {
        for (name, bytes) in files { try Fixture.write(dir.path + "/" + name, bytes) }
    }

    /// Sizes of the signed checkpoints in checkpoints.log, and of the newest one in the head.
    static func sizes(_ dir: TempDir, _ s: NoteSigner) throws -> (history: [UInt64], head: UInt64?) {
        let bytes = Fixture.read(dir.path + "/checkpoints.log")
        let history = try Fixture.records(bytes).map { r in
            try Checkpoint(signedNote: String(decoding: bytes[(r.lowerBound + 12)..<r.upperBound], as: UTF8.self),
                           verifier: s.verifierKey).size
        }
        let head = try CheckpointHead.read(dir.path).notes.map { try Checkpoint(signedNote: $0.note, verifier: s.verifierKey).size }.max()
        return (history, head)
    }

    /// Appends entries `range` in `off` mode (fast) and closes: both checkpoint files then cover them.
    static func append(_ range: Range<Int>, to dir: TempDir, _ s: NoteSigner) throws {
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: .off, signer: s)
        for i in range { try w.append(Fixture.entry(i)) }
        try w.close()
    }

    static let checkpointFiles = ["checkpoints.log", "checkpoint.head"]
    /// The history's checkpoints by count only, so what a test expects does not depend on speed.
    static let noTimedHistory = CheckpointPolicy(entries: 1024, milliseconds: 600_000)

    @Test func aNewLogStartsWithTheEmptyTreesCheckpointInBothFiles() throws {
        let s = try Fixture.signer()
        let dir = TempDir("history")
        defer { dir.cleanup() }
        try AuditWriter.open(stateDirectory: dir.path, signer: s).close()
        let sizes = try Self.sizes(dir, s)
        #expect(sizes.history == [0] && sizes.head == 0)
        let report = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        #expect(report.isValid && report.latestCheckpoint?.root == MerkleHash.empty && report.headExists)
    }

    @Test func whenAppendReturnsInAlwaysModeASignedCheckpointOnDiskCoversTheEntry() throws {
        let s = try Fixture.signer()
        let dir = TempDir("history")
        defer { dir.cleanup() }
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: .always, checkpointEvery: Self.noTimedHistory, signer: s)
        var uncoveredOnReturn: [UInt64] = []
        for i in 0..<30 {
            let index = try w.append(Fixture.entry(i))
            if try Self.sizes(dir, s).head ?? 0 <= index { uncoveredOnReturn.append(index) }
        }
        try w.close()
        #expect(uncoveredOnReturn.isEmpty, "acknowledged before a checkpoint on disk covered them: \(uncoveredOnReturn)")
        let sizes = try Self.sizes(dir, s)
        #expect(sizes.head == 30 && sizes.history == [0, 30], "the history keeps its own pace: \(sizes.history)")
    }

    @Test func cuttingAcknowledgedEntriesAfterAKillIsTruncationForVerifyAndForOpen() throws {
        let s = try Fixture.signer()
        let dir = TempDir("history")
        defer { dir.cleanup() }
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: .always, checkpointEvery: Self.noTimedHistory, signer: s)
        for i in 0..<50 { try w.append(Fixture.entry(i)) }
        let killed = try Self.snapshot(dir)  // no final checkpoint at close: as after kill -9
        try w.close()
        let copy = TempDir("killed")
        defer { copy.cleanup() }
        try Self.restore(killed, into: copy)
        #expect(try Self.sizes(copy, s).history == [0], "the history had no checkpoint over these yet")
        let seg = copy.path + "/" + copy.segments.last!
        let bytes = Fixture.read(seg)
        try Fixture.write(seg, Array(bytes[..<Fixture.records(bytes)[40].lowerBound]))

        let report = AuditVerifier.verify(stateDirectory: copy.path, publicKey: s.verifierKey)
        #expect(report.failure?.kind == .truncated, "\(String(describing: report.failure))")
        #expect(report.failure?.entryIndex == 40)
        #expect(throws: AuditError.truncatedBelowCheckpoint(entries: 40, checkpointSize: 50)) {
            try AuditWriter.open(stateDirectory: copy.path, signer: s)
        }
    }

    enum Deletion: String, CaseIterable, Sendable {
        case historyRemoved, historyEmptied, everyCheckpointRemoved, headRemovedAndHistoryBehind
    }

    @Test(arguments: Deletion.allCases)
    func deletedCheckpointsRefuseToOpenAndFailVerification(_ deletion: Deletion) throws {
        let s = try Fixture.signer()
        let dir = TempDir("history")
        defer { dir.cleanup() }
        try Self.append(0..<50, to: dir, s)
        let at50 = try Self.snapshot(dir, ["checkpoints.log"])
        try Self.append(50..<100, to: dir, s)
        let expected: AuditError
        var expectedEntry: UInt64 = 0
        switch deletion {
        case .historyRemoved:
            try FileManager.default.removeItem(atPath: dir.path + "/checkpoints.log")
            expected = .checkpointsMissing(entries: 100)
        case .historyEmptied:
            try Fixture.write(dir.path + "/checkpoints.log", [])
            expected = .checkpointsMissing(entries: 100)
        case .everyCheckpointRemoved:
            for name in Self.checkpointFiles { try FileManager.default.removeItem(atPath: dir.path + "/" + name) }
            expected = .checkpointsMissing(entries: 100)
        case .headRemovedAndHistoryBehind:
            // Only the history's checkpoint at 50 left: the head, which covered 100, is gone.
            try Self.restore(at50, into: dir)
            try FileManager.default.removeItem(atPath: dir.path + "/checkpoint.head")
            expected = .uncoveredEntries(entries: 100, newestCheckpoint: 50, headMissing: true)
            expectedEntry = 50
        }
        let segment = Fixture.read(dir.path + "/" + dir.segments.last!)
        let report = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        #expect(report.failure?.kind == .uncovered, "\(deletion): \(String(describing: report.failure))")
        #expect(report.failure?.entryIndex == expectedEntry)
        #expect(throws: expected) { try AuditWriter.open(stateDirectory: dir.path, signer: s) }
        #expect(Fixture.read(dir.path + "/" + dir.segments.last!) == segment, "refusing changes nothing")
    }

    @Test func entriesBeyondOneBatchAfterTheNewestCheckpointRefuseToOpen() throws {
        let s = try Fixture.signer()
        let dir = TempDir("history")
        defer { dir.cleanup() }
        try Self.append(0..<50, to: dir, s)
        let at50 = try Self.snapshot(dir, Self.checkpointFiles)
        try Self.append(50..<1150, to: dir, s)
        try Self.restore(at50, into: dir)  // both checkpoint files rolled back to 50
        let report = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        #expect(report.failure?.kind == .uncovered && report.failure?.entryIndex == 50, "\(String(describing: report.failure))")
        #expect(throws: AuditError.uncoveredEntries(entries: 1150, newestCheckpoint: 50, headMissing: false)) {
            try AuditWriter.open(stateDirectory: dir.path, signer: s)
        }
    }

    @Test func oneBatchWrittenButNeverCheckpointedIsCutOnOpenAndReported() throws {
        let s = try Fixture.signer()
        let dir = TempDir("history")
        defer { dir.cleanup() }
        try Self.append(0..<50, to: dir, s)
        let at50 = try Self.snapshot(dir, Self.checkpointFiles)
        try Self.append(50..<60, to: dir, s)
        // A crash between the write of entries 50..<60 and their checkpoint leaves this.
        try Self.restore(at50, into: dir)
        let seg = dir.path + "/" + dir.segments.last!
        let bytes = Fixture.read(seg)
        let cutFrom = Fixture.records(bytes)[50].lowerBound
        let before = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        #expect(before.isValid && before.entriesAfterLatestCheckpoint == 10, "reported, not a failure: \(String(describing: before.failure))")

        let w = try AuditWriter.open(stateDirectory: dir.path, signer: s)
        let cut = try #require(w.openReport.uncoveredCut)
        #expect(cut.from == 50 && cut.to == 60 && cut.newestCheckpoint == 50)
        #expect(cut.sha256 == SHA256Digest.hash(Array(bytes[cutFrom...])).hex)
        #expect(w.openReport.entries == 50)
        #expect(w.openReport.lastEntry?.decisionID == "d-49")
        #expect(try w.append(Fixture.entry(50)) == 50)
        try w.close()
        #expect(AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey).isValid)
    }

    @Test func aTornHeadSlotLeavesThePreviousCheckpoint() throws {
        let s = try Fixture.signer()
        let dir = TempDir("history")
        defer { dir.cleanup() }
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: .always, signer: s)
        for i in 0..<3 { try w.append(Fixture.entry(i)) }
        try w.close()
        let headPath = dir.path + "/checkpoint.head"
        var head = Fixture.read(headPath)
        let slots = try CheckpointHead.read(dir.path).notes
        let newest = try #require(slots.max { a, b in
            (try? Checkpoint(signedNote: a.note, verifier: s.verifierKey).size) ?? 0 < (try? Checkpoint(signedNote: b.note, verifier: s.verifierKey).size) ?? 0
        })
        head[newest.slot * CheckpointHead.slotSize + 40] ^= 0xFF  // a write torn by a power cut
        try Fixture.write(headPath, head)
        #expect(try CheckpointHead.read(dir.path).notes.count == 1)
        let report = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        #expect(report.isValid, "the other slot and the history still cover the log: \(String(describing: report.failure))")
        #expect(report.latestCheckpoint?.size == 3)
    }

    @Test func aHeadSignedByAnotherKeyIsABadSignature() throws {
        let s = try Fixture.signer()
        let dir = TempDir("history")
        defer { dir.cleanup() }
        try Self.append(0..<5, to: dir, s)
        // The same checkpoint body, re-signed by an impostor who lacks the real key.
        let impostor = try NoteSigner(name: s.name, privateKey: Ed25519PrivateKey.generate())
        let headPath = dir.path + "/checkpoint.head"
        var head = Fixture.read(headPath)
        for slot in try CheckpointHead.read(dir.path).notes {
            let body = String(slot.note[..<slot.note.range(of: "\n\n")!.lowerBound]) + "\n"
            var framed: [UInt8] = []
            RecordFrame.append(Array(try impostor.sign(body: body).utf8), to: &framed)
            head.replaceSubrange((slot.slot * CheckpointHead.slotSize)..<(slot.slot * CheckpointHead.slotSize + framed.count), with: framed)
        }
        try Fixture.write(headPath, head)
        let report = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        #expect(report.failure?.kind == .badSignature, "\(String(describing: report.failure))")
        #expect(report.failure?.message.hasPrefix("checkpoint.head slot ") == true)
    }

    @Test func recoveryAcceptsUncoveredEntriesOnceAndTheLogSaysSo() throws {
        let s = try Fixture.signer()
        let dir = TempDir("history")
        defer { dir.cleanup() }
        try Self.append(0..<1500, to: dir, s)
        for name in Self.checkpointFiles { try FileManager.default.removeItem(atPath: dir.path + "/" + name) }
        let who = AuditCaller(uid: 0, gid: 0, pid: 1, user: "root")
        let accepted = try AuditWriter.recover(stateDirectory: dir.path, signer: s) { report in
            AuditRecovery.entry(report.accepted!, reason: "INC-7: lost with the old disk", caller: who, decisionID: "r-1")
        }
        #expect(accepted == AuditUncoveredEntries(from: 0, to: 1500, newestCheckpoint: nil, checkpointsLogMissing: true))

        let report = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        #expect(report.isValid, "\(String(describing: report.failure))")
        #expect(report.entries == 1501 && report.latestCheckpoint?.size == 1501)
        let recovery = try #require(report.recoveries.first)
        #expect(report.recoveries.count == 1)
        #expect(recovery.seq == 1500 && recovery.method == "audit.recover" && recovery.principal == "user root")
        #expect(recovery.reasons == ["reason: INC-7: lost with the old disk",
                                     "accepted entries 0..<1500 (1500) that no checkpoint covered; there was no checkpoint; checkpoints.log was missing or held no checkpoint"])
        #expect(recovery.context?["accepted_to"] == .int(1500))
        try AuditWriter.open(stateDirectory: dir.path, signer: s).close()
        #expect(try AuditWriter.recover(stateDirectory: dir.path, signer: s) { _ in Fixture.entry(0) } == nil,
                "nothing left to accept: nothing written")
        #expect(AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey).entries == 1501)
    }

    @Test func recoveryDoesNotAcceptALogShorterThanItsCheckpoints() throws {
        let s = try Fixture.signer()
        let dir = TempDir("history")
        defer { dir.cleanup() }
        try Self.append(0..<20, to: dir, s)
        let seg = dir.path + "/" + dir.segments.last!
        let bytes = Fixture.read(seg)
        try Fixture.write(seg, Array(bytes[..<Fixture.records(bytes)[15].lowerBound]))
        #expect(throws: AuditError.truncatedBelowCheckpoint(entries: 15, checkpointSize: 20)) {
            try AuditWriter.recover(stateDirectory: dir.path, signer: s) { _ in Fixture.entry(0) }
        }
    }

    @Test func stampedTimesAndIDsFollowLogOrderUnderConcurrentAppenders() throws {
        let s = try Fixture.signer()
        let dir = TempDir("history")
        defer { dir.cleanup() }
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: .always, signer: s)
        let counter = Atomic<Int>(0)
        let threads = 16, perThread = 50
        let group = DispatchGroup()
        for t in 0..<threads {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                for i in 0..<perThread {
                    var e = Fixture.entry(t * perThread + i)
                    e.decisionID = "id-00000000"
                    // A clock reading taken before the lock, as a decision's own, would go backwards.
                    e.time = AuditTimestamp(millisecondsSinceEpoch: 0)
                    _ = try? w.append(e) { _, id in
                        let n = counter.add(1, ordering: .relaxed).oldValue
                        let digits = Array(String(format: "%08d", n).utf8)
                        for (k, c) in digits.enumerated() { id[3 + k] = c }
                    }
                }
            }
        }
        group.wait()
        try w.close()
        let all = try AuditQuery().run(stateDirectory: dir.path)
        #expect(all.count == threads * perThread)
        #expect(all.map(\.decisionID) == (0..<(threads * perThread)).map { String(format: "id-%08d", $0) })
        #expect(zip(all, all.dropFirst()).allSatisfy { $0.time <= $1.time }, "times never go back in log order")
        #expect(all.allSatisfy { $0.time.millisecondsSinceEpoch > 0 }, "the time is read when the entry is placed")
    }

    @Test func aStampNeedsAPlaceholderWithoutEscapes() throws {
        let s = try Fixture.signer()
        let dir = TempDir("history")
        defer { dir.cleanup() }
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: .always, signer: s)
        defer { try? w.close() }
        var e = Fixture.entry(0)
        e.decisionID = "a\"b"
        #expect(throws: AuditError.self) { try w.append(e) { _, _ in } }
        #expect(w.count == 0)
    }
}
