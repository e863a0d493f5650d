import AuditLog
import Foundation
import Synchronization
import Testing

@Suite struct AuditWriterTests {
    @Test func entriesWrittenInAlwaysModeVerifyAndReadBack() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let s = try Fixture.signer()
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: .always,
                                     // No time-based checkpoint: the count must not depend on the machine's speed.
                                     checkpointEvery: CheckpointPolicy(entries: 7, milliseconds: 600_000), signer: s)
        for i in 0..<30 { #expect(try w.append(Fixture.entry(i)) == UInt64(i)) }
        try w.close()
        #expect(throws: AuditError.closed) { try w.append(Fixture.entry(99)) }
        let report = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        #expect(report.isValid, "\(report.failure.map(String.init(describing:)) ?? "")")
        #expect(report.entries == 30)
        #expect(report.latestCheckpoint?.size == 30)
        #expect(report.checkpoints == 6)  // the empty tree's, at 7, 14, 21, 28 and at close
        let all = try AuditQuery().run(stateDirectory: dir.path)
        #expect(all.map(\.seq) == Array(0..<30))
        #expect(all[3].decisionID == "d-3")
    }

    @Test func reopenedLogContinuesTheTreeAcrossSegments() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let s = try Fixture.signer()
        for round in 0..<3 {
            let w = try AuditWriter.open(stateDirectory: dir.path, mode: round == 1 ? .batch(intervalMs: 2) : .always, signer: s, segmentBytes: 4096)
            for i in 0..<40 { try w.append(Fixture.entry(round * 40 + i)) }
            try w.close()
        }
        #expect(dir.segments.count > 3)
        let report = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        #expect(report.isValid, "\(report.failure.map(String.init(describing:)) ?? "")")
        #expect(report.entries == 120)
        // The history: the empty tree's, one at each close, and one at each seal (a segment ends
        // where a checkpoint covers it, so it can be archived alone) unless a close just wrote it.
        let history = try ArchiveTests.history(dir.path)
        let expected = Set<UInt64>([0, 40, 80, 120]).union(ArchiveTests.segmentFirsts(dir.path).dropFirst())
        #expect(Set(history) == expected, "\(history)")
        #expect(report.checkpoints == expected.count && history.count == expected.count, "\(history)")
    }

    @Test func tornFinalRecordIsCutOnReopenAndTheTreeContinues() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let s = try Fixture.signer()
        var w = try AuditWriter.open(stateDirectory: dir.path, mode: .always, signer: s)
        for i in 0..<20 { try w.append(Fixture.entry(i)) }
        try w.close()
        let seg = dir.path + "/" + dir.segments.last!
        var bytes = Fixture.read(seg)
        let whole = Fixture.records(bytes)
        let goodLength = bytes.count
        let copy = Array(bytes[whole[3]])
        bytes += copy[0..<(copy.count / 2)]  // half a record, as a crash mid-write leaves it
        try Fixture.write(seg, bytes)

        let torn = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        #expect(torn.isValid)
        #expect(torn.tornTailBytes == copy.count / 2)

        w = try AuditWriter.open(stateDirectory: dir.path, mode: .always, signer: s)
        #expect(Fixture.read(seg).count == goodLength)
        for i in 20..<25 { #expect(try w.append(Fixture.entry(i)) == UInt64(i)) }
        try w.close()
        let report = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        #expect(report.isValid, "\(report.failure.map(String.init(describing:)) ?? "")")
        #expect(report.entries == 25)
        #expect(report.tornTailBytes == 0)
        #expect(report.entriesAfterLatestCheckpoint == 0)
    }

    @Test func aTornFinalRecordOfTheHistoryIsCutOnReopenAndReported() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let s = try Fixture.signer()
        var w = try AuditWriter.open(stateDirectory: dir.path, mode: .always, signer: s)
        for i in 0..<20 { try w.append(Fixture.entry(i)) }
        try w.close()
        #expect(w.openReport.tornHistoryBytesCut == 0)
        let history = dir.path + "/checkpoints.log"
        let bytes = Fixture.read(history)
        let last = try #require(Fixture.records(bytes).last)
        try Fixture.write(history, bytes + Array(bytes[last].prefix(last.count / 2)))  // a note half written

        w = try AuditWriter.open(stateDirectory: dir.path, mode: .always, signer: s)
        #expect(w.openReport.tornHistoryBytesCut == last.count / 2)
        #expect(w.openReport.tornBytesCut == 0)
        #expect(Fixture.read(history).count == bytes.count)
        try w.append(Fixture.entry(20))
        try w.close()
        #expect(AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey).isValid)
    }

    @Test func zeroFilledTailIsTreatedAsTornButGarbageMidFileIsNot() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let s = try Fixture.signer()
        var w = try AuditWriter.open(stateDirectory: dir.path, mode: .always, signer: s)
        for i in 0..<10 { try w.append(Fixture.entry(i)) }
        try w.close()
        let seg = dir.path + "/" + dir.segments.last!
        let original = Fixture.read(seg)
        try Fixture.write(seg, original + [UInt8](repeating: 0, count: 700))
        w = try AuditWriter.open(stateDirectory: dir.path, mode: .always, signer: s)
        try w.close()
        #expect(Fixture.read(seg) == original)

        var damaged = original
        damaged[Fixture.records(original)[4].lowerBound + 20] ^= 0x01
        try Fixture.write(seg, damaged)
        #expect(throws: AuditError.self) { try AuditWriter.open(stateDirectory: dir.path, signer: s) }
        #expect(Fixture.read(seg) == damaged)  // never repaired by cutting
    }

    @Test func concurrentAppendersGetConsecutiveIndicesAndFindTheirEntryOnDisk() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let s = try Fixture.signer()
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: .always, signer: s)
        let threads = 16, perThread = 25
        let indices = Mutex<[UInt64]>([])
        let notOnDisk = Mutex<[UInt64]>([])
        let done = DispatchGroup()
        for t in 0..<threads {
            done.enter()
            let thread = Thread {
                for i in 0..<perThread {
                    do {
                        let index = try w.append(Fixture.entry(t * perThread + i))
                        indices.withLock { $0.append(index) }
                        // Durable before return: a fresh reader of the files already sees it.
                        let found = try AuditQuery(decisionID: "d-\(t * perThread + i)").run(stateDirectory: dir.path)
                        if found.first?.seq != index { notOnDisk.withLock { $0.append(index) } }
                    } catch {
                        notOnDisk.withLock { $0.append(UInt64.max) }
                    }
                }
                done.leave()
            }
            thread.start()
        }
        done.wait()
        try w.close()
        #expect(indices.withLock { $0.sorted() } == (0..<UInt64(threads * perThread)).map { $0 })
        #expect(notOnDisk.withLock { $0 }.isEmpty)
        let report = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        #expect(report.isValid)
        #expect(report.entries == UInt64(threads * perThread))
    }

    @Test func closingWhileAppendersLeadTheirOwnCommitsLosesNoAcknowledgedEntry() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let s = try Fixture.signer()
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: .always, signer: s)
        let threads = 8
        let acknowledged = Mutex<[UInt64]>([])
        let refusedOtherwise = Mutex<[String]>([])
        let warmedUp = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        for t in 0..<threads {
            done.enter()
            let thread = Thread {
                for i in 0..<100_000 {
                    do {
                        let index = try w.append(Fixture.entry(t * 100_000 + i))
                        acknowledged.withLock { $0.append(index) }
                        if i == 9 { warmedUp.signal() }
                    } catch {
                        if case .closed? = error as? AuditError {} else { refusedOtherwise.withLock { $0.append("\(error)") } }
                        if i <= 9 { warmedUp.signal() }
                        break
                    }
                }
                done.leave()
            }
            thread.start()
        }
        // Close while every thread is still appending, each leading commits or waiting on one.
        for _ in 0..<threads { warmedUp.wait() }
        try w.close()
        done.wait()
        #expect(refusedOtherwise.withLock { $0 }.isEmpty, "an append after close is refused as closed")
        let report = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        #expect(report.isValid)
        let acked = acknowledged.withLock { $0 }
        #expect(acked.count >= threads * 10)
        #expect(acked.allSatisfy { $0 < report.entries }, "every acknowledged entry is in the closed log")
    }

    @Test func writeFailureStopsTheWriterForGood() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let s = try Fixture.signer()
        let reported = Mutex<AuditError?>(nil)
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: .always, signer: s, segmentBytes: 4096,
                                     onFailure: { e in reported.withLock { $0 = e } })
        // Occupy every name the next segment could take, so creating it fails.
        for i in 1..<200 {
            let name = String(format: "segment-%020d.log", i)
            _ = FileManager.default.createFile(atPath: dir.path + "/" + name, contents: nil)
        }
        var failure: AuditError? = nil
        for i in 0..<200 {
            do { try w.append(Fixture.entry(i)) } catch { failure = error; break }
        }
        guard case .writerFailed? = failure else {
            Issue.record("expected writerFailed, got \(String(describing: failure))")
            return
        }
        #expect(!w.isHealthy)
        #expect(throws: AuditError.self) { try w.append(Fixture.entry(500)) }
        #expect(throws: AuditError.self) { try w.close() }
        #expect(reported.withLock { $0 } != nil)
    }

    @Test func logShorterThanItsNewestCheckpointRefusesToOpen() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let s = try Fixture.signer()
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: .off, signer: s)
        for i in 0..<10 { try w.append(Fixture.entry(i)) }
        try w.close()
        let seg = dir.path + "/" + dir.segments.last!
        let bytes = Fixture.read(seg)
        try Fixture.write(seg, Array(bytes[..<Fixture.records(bytes)[8].lowerBound]))
        #expect(throws: AuditError.truncatedBelowCheckpoint(entries: 8, checkpointSize: 10)) {
            try AuditWriter.open(stateDirectory: dir.path, signer: s)
        }
    }
}
