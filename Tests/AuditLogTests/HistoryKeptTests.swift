import AuditLog
import CustosJSON
import Foundation
import Synchronization
import Testing

/// Every acknowledged entry is covered by a signed checkpoint on disk, so removing one is
/// detectable with the public key alone; entries that no checkpoint covers stop the writer from
/// opening (beyond one unacknowledged batch, which it cuts) and fail verification, until the
/// explicit recovery records that they were accepted.
@Suite struct HistoryKeptTests {
    /// The state a `kill -9` leaves: the folder's files as they are while the writer runs.
    static func snapshot(_ dir: TempDir) throws -> TempDir {
        let copy = TempDir("snapshot")
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
            try Fixture.write(copy.path + "/" + name, Fixture.read(dir.path + "/" + name))
        }
        return copy
    }

    static func checkpointSizes(_ dir: TempDir, _ s: NoteSigner) throws -> [UInt64] {
        let bytes = Fixture.read(dir.path + "/checkpoints.log")
        return try Fixture.records(bytes).map { r in
            try Checkpoint(signedNote: String(decoding: bytes[(r.lowerBound + 12)..<r.upperBound], as: UTF8.self),
                           verifier: s.verifierKey).size
        }
    }

    /// A closed log of `count` entries with a checkpoint after each: checkpoint record k
    /// covers k entries.
    static func makeLog(_ count: Int, _ s: NoteSigner) throws -> TempDir {
        let dir = TempDir("history")
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: .off, checkpointEvery: CheckpointPolicy(entries: 1), signer: s)
        for i in 0..<count { try w.append(Fixture.entry(i)) }
        try w.close()
        return dir
    }

    /// Cuts checkpoints.log to its first `keep` records.
    static func keepCheckpoints(_ dir: TempDir, _ keep: Int) throws {
        let path = dir.path + "/checkpoints.log"
        let bytes = Fixture.read(path)
        let records = Fixture.records(bytes)
        try Fixture.write(path, keep == 0 ? [] : Array(bytes[..<records[keep - 1].upperBound]))
    }

    @Test func aNewLogStartsWithTheEmptyTreesCheckpoint() throws {
        let s = try Fixture.signer()
        let dir = TempDir("history")
        defer { dir.cleanup() }
        try AuditWriter.open(stateDirectory: dir.path, signer: s).close()
        #expect(try Self.checkpointSizes(dir, s) == [0])
        let report = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        #expect(report.isValid && report.latestCheckpoint?.root == MerkleHash.empty)
    }

    @Test(arguments: [AuditDurability.always, .batch(intervalMs: 1), .off])
    func whenAppendReturnsInAlwaysModeACheckpointOnDiskCoversTheEntry(_ mode: AuditDurability) throws {
        let s = try Fixture.signer()
        let dir = TempDir("history")
        defer { dir.cleanup() }
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: mode, signer: s)
        var uncoveredOnReturn: [UInt64] = []
        for i in 0..<40 {
            let index = try w.append(Fixture.entry(i))
            if mode == .always, try Self.checkpointSizes(dir, s).last ?? 0 <= index { uncoveredOnReturn.append(index) }
        }
        try w.close()
        #expect(uncoveredOnReturn.isEmpty, "acknowledged before a checkpoint covered them: \(uncoveredOnReturn)")
        // Whatever the mode, every batch is followed by its checkpoint: no two are more than a batch apart.
        let sizes = try Self.checkpointSizes(dir, s)
        #expect(sizes.first == 0 && sizes.last == 40)
        #expect(zip(sizes, sizes.dropFirst()).allSatisfy { $1 > $0 && $1 - $0 <= UInt64(CheckpointPolicy.maxEntries) })
    }

    @Test func cuttingAcknowledgedEntriesAfterAKillIsTruncationForVerifyAndForOpen() throws {
        let s = try Fixture.signer()
        let dir = TempDir("history")
        defer { dir.cleanup() }
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: .always, signer: s)
        for i in 0..<300 { try w.append(Fixture.entry(i)) }
        let killed = try Self.snapshot(dir)  // no final checkpoint at close: as after kill -9
        defer { killed.cleanup() }
        try w.close()
        let seg = killed.path + "/" + killed.segments.last!
        let bytes = Fixture.read(seg)
        try Fixture.write(seg, Array(bytes[..<Fixture.records(bytes)[290].lowerBound]))

        let report = AuditVerifier.verify(stateDirectory: killed.path, publicKey: s.verifierKey)
        #expect(report.failure?.kind == .truncated, "\(String(describing: report.failure))")
        #expect(report.failure?.entryIndex == 290)
        #expect(throws: AuditError.truncatedBelowCheckpoint(entries: 290, checkpointSize: 300)) {
            try AuditWriter.open(stateDirectory: killed.path, signer: s)
        }
    }

    enum Deletion: String, CaseIterable, Sendable { case fileRemoved, fileEmptied, allButTheEmptyTreesCheckpoint }

    @Test(arguments: Deletion.allCases)
    func deletedCheckpointsRefuseToOpenAndFailVerification(_ deletion: Deletion) throws {
        let s = try Fixture.signer()
        let dir = try Self.makeLog(1500, s)
        defer { dir.cleanup() }
        let expected: AuditError
        switch deletion {
        case .fileRemoved:
            try FileManager.default.removeItem(atPath: dir.path + "/checkpoints.log")
            expected = .uncoveredEntries(entries: 1500, newestCheckpoint: nil)
        case .fileEmptied:
            try Self.keepCheckpoints(dir, 0)
            expected = .uncoveredEntries(entries: 1500, newestCheckpoint: nil)
        case .allButTheEmptyTreesCheckpoint:
            try Self.keepCheckpoints(dir, 1)
            expected = .uncoveredEntries(entries: 1500, newestCheckpoint: 0)
        }
        let segment = Fixture.read(dir.path + "/" + dir.segments.last!)
        let report = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        #expect(report.failure?.kind == .uncovered, "\(deletion): \(String(describing: report.failure))")
        #expect(report.failure?.entryIndex == 0)
        #expect(throws: expected) { try AuditWriter.open(stateDirectory: dir.path, signer: s) }
        #expect(Fixture.read(dir.path + "/" + dir.segments.last!) == segment, "refusing changes nothing")
    }

    @Test func entriesBeyondOneBatchAfterTheNewestCheckpointRefuseToOpen() throws {
        let s = try Fixture.signer()
        let dir = try Self.makeLog(1100, s)
        defer { dir.cleanup() }
        try Self.keepCheckpoints(dir, 51)  // newest covers 50: 1,050 entries follow it
        let report = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        #expect(report.failure?.kind == .uncovered && report.failure?.entryIndex == 50, "\(String(describing: report.failure))")
        #expect(throws: AuditError.uncoveredEntries(entries: 1100, newestCheckpoint: 50)) {
            try AuditWriter.open(stateDirectory: dir.path, signer: s)
        }
    }

    @Test func oneBatchWrittenButNeverCheckpointedIsCutOnOpenAndReported() throws {
        let s = try Fixture.signer()
        let dir = try Self.makeLog(60, s)
        defer { dir.cleanup() }
        // A crash between the write of entries 50..<60 and their checkpoint leaves this.
        try Self.keepCheckpoints(dir, 51)
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

    @Test func recoveryAcceptsUncoveredEntriesOnceAndTheLogSaysSo() throws {
        let s = try Fixture.signer()
        let dir = try Self.makeLog(1500, s)
        defer { dir.cleanup() }
        try FileManager.default.removeItem(atPath: dir.path + "/checkpoints.log")
        let who = AuditCaller(uid: 0, gid: 0, pid: 1, user: "root")
        let accepted = try AuditWriter.recover(stateDirectory: dir.path, signer: s) { report in
            AuditRecovery.entry(report.accepted!, reason: "INC-7: lost with the old disk", caller: who, decisionID: "r-1")
        }
        #expect(accepted == AuditUncoveredEntries(from: 0, to: 1500, newestCheckpoint: nil))

        let report = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        #expect(report.isValid, "\(String(describing: report.failure))")
        #expect(report.entries == 1501 && report.latestCheckpoint?.size == 1501)
        let recovery = try #require(report.recoveries.first)
        #expect(report.recoveries.count == 1)
        #expect(recovery.seq == 1500 && recovery.method == "audit.recover" && recovery.principal == "user root")
        #expect(recovery.reasons == ["reason: INC-7: lost with the old disk",
                                     "accepted entries 0..<1500 (1500) that no checkpoint covered; checkpoints.log held no checkpoint"])
        #expect(recovery.context?["accepted_to"] == .int(1500))
        try AuditWriter.open(stateDirectory: dir.path, signer: s).close()
        #expect(try AuditWriter.recover(stateDirectory: dir.path, signer: s) { _ in Fixture.entry(0) } == nil,
                "nothing left to accept: nothing written")
        #expect(AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey).entries == 1501)
    }

    @Test func recoveryDoesNotAcceptALogShorterThanItsCheckpoints() throws {
        let s = try Fixture.signer()
        let dir = try Self.makeLog(20, s)
        defer { dir.cleanup() }
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
