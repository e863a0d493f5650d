import AuditLog
import CustosTestSupport
import Foundation
import Testing

/// Each case damages a real 10,000-entry log the way an attacker or a failing disk would, and
/// the verifier must name the right kind of damage and place it.
@Suite struct TamperTests {
    enum Tamper: String, CaseIterable, Sendable {
        case flipPayloadBit, flipHeaderBit, rewriteEntryWithValidChecksum, deleteEntry, swapEntries
        case deleteSegment, truncateBelowLastCheckpoint, resignCheckpointWithAnotherKey, rollBackCheckpoint
    }

    static let entryCount = 10_000

    /// A log written through AuditWriter in `off` mode (no fsync) with several segments and
    /// many checkpoints.
    static func makeLog() throws -> (TempDir, NoteSigner) {
        let dir = TempDir("tamper")
        let s = try Fixture.signer()
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: .off,
                                     checkpointEvery: CheckpointPolicy(entries: 1000, milliseconds: 60_000),
                                     signer: s, segmentBytes: 512 << 10)
        for i in 0..<entryCount { try w.append(Fixture.entry(i)) }
        try w.close()
        return (dir, s)
    }

    /// (segment path, byte range of the record) for each entry, in log order.
    static func locate(_ dir: TempDir) -> [(String, Range<Int>)] {
        dir.segments.flatMap { name in
            let path = dir.path + "/" + name
            return Fixture.records(Fixture.read(path)).map { (path, $0) }
        }
    }

    static func checkpointNotes(_ dir: TempDir) -> (path: String, records: [Range<Int>], bytes: [UInt8]) {
        let path = dir.path + "/checkpoints.log"
        let bytes = Fixture.read(path)
        return (path, Fixture.records(bytes), bytes)
    }

    static func checkpointSizes(_ dir: TempDir, _ s: NoteSigner) throws -> [UInt64] {
        let cps = checkpointNotes(dir)
        return try cps.records.map { r in
            try Checkpoint(signedNote: String(decoding: cps.bytes[(r.lowerBound + 12)..<r.upperBound], as: UTF8.self),
                           verifier: s.verifierKey).size
        }
    }

    static func frame(_ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        RecordFrame.append(payload, to: &out)
        return out
    }

    @Test func untouchedLogVerifies() throws {
        let (dir, s) = try Self.makeLog()
        defer { dir.cleanup() }
        let report = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        #expect(report.isValid, "\(report.failure.map(String.init(describing:)) ?? "")")
        #expect(report.entries == UInt64(Self.entryCount))
        #expect(report.latestCheckpoint?.size == UInt64(Self.entryCount))
        #expect(report.checkpoints >= 5)  // every >= 1000 entries, at batch boundaries
        #expect(dir.segments.count >= 3)
    }

    @Test(arguments: Tamper.allCases)
    func tamperingIsDetectedWithTheRightClass(_ tamper: Tamper) throws {
        let (dir, s) = try Self.makeLog()
        defer { dir.cleanup() }
        let records = Self.locate(dir)
        #expect(records.count == Self.entryCount)
        var expected: AuditFailureKind
        var expectedEntry: UInt64? = nil

        switch tamper {
        case .flipPayloadBit:
            let (path, r) = records[4321]
            var b = Fixture.read(path)
            b[r.lowerBound + 12 + 57] ^= 0x10
            try Fixture.write(path, b)
            expected = .corrupt; expectedEntry = 4321
        case .flipHeaderBit:
            let (path, r) = records[777]
            var b = Fixture.read(path)
            b[r.lowerBound + 1] ^= 0x01  // the length field
            try Fixture.write(path, b)
            expected = .corrupt; expectedEntry = 777
        case .rewriteEntryWithValidChecksum:
            // An attacker without the key rewrites a decision and fixes the frame checksum.
            let (path, r) = records[2500]
            var b = Fixture.read(path)
            let payload = String(decoding: b[(r.lowerBound + 12)..<r.upperBound], as: UTF8.self)
            let forged = payload.replacingOccurrences(of: "\"decision\":\"deny\"", with: "\"decision\":\"allow\"")
            #expect(forged != payload)
            b.replaceSubrange(r, with: Self.frame(Array(forged.utf8)))
            try Fixture.write(path, b)
            // Placed at the newest checkpoint that still vouches for the entries before it.
            let sizes = try Self.checkpointSizes(dir, s)
            expected = .corrupt; expectedEntry = sizes.filter { $0 <= 2500 }.max() ?? 0
        case .deleteEntry:
            let (path, r) = records[5000]
            var b = Fixture.read(path)
            b.removeSubrange(r)
            try Fixture.write(path, b)
            expected = .missing; expectedEntry = 5000
        case .swapEntries:
            let i = (6000..<7000).first { records[$0].0 == records[$0 + 1].0 }!
            let (path, r1) = records[i]
            let (_, r2) = records[i + 1]
            var b = Fixture.read(path)
            let first = Array(b[r1]), second = Array(b[r2])
            b.replaceSubrange(r1.lowerBound..<r2.upperBound, with: second + first)
            try Fixture.write(path, b)
            expected = .reordered; expectedEntry = UInt64(i)
        case .deleteSegment:
            let segs = dir.segments
            let victim = segs[1]
            let firstOfVictim = records.firstIndex { $0.0.hasSuffix(victim) }!
            try FileManager.default.removeItem(atPath: dir.path + "/" + victim)
            expected = .missing; expectedEntry = UInt64(firstOfVictim)
        case .truncateBelowLastCheckpoint:
            // Cut inside the last segment (where batching put its first entry varies), so what
            // remains is a shorter log rather than one with a gap before a later segment.
            let lastPath = records.last!.0
            let first = records.firstIndex { $0.0 == lastPath }!
            let cut = first + (records.count - first) / 2
            let (path, r) = records[cut]
            let b = Fixture.read(path)
            try Fixture.write(path, Array(b[..<r.lowerBound]))
            expected = .truncated; expectedEntry = UInt64(cut)
        case .resignCheckpointWithAnotherKey:
            let cps = Self.checkpointNotes(dir)
            let r = cps.records[3]
            let note = String(decoding: cps.bytes[(r.lowerBound + 12)..<r.upperBound], as: UTF8.self)
            let body = String(note[..<note.range(of: "\n\n")!.lowerBound]) + "\n"
            let impostor = try NoteSigner(name: s.name, privateKey: Ed25519PrivateKey.generate())
            var b = cps.bytes
            b.replaceSubrange(r, with: Self.frame(Array(try impostor.sign(body: body).utf8)))
            try Fixture.write(cps.path, b)
            expected = .badSignature
        case .rollBackCheckpoint:
            // A genuine but older checkpoint replayed as the newest one.
            let cps = Self.checkpointNotes(dir)
            try Fixture.write(cps.path, cps.bytes + Array(cps.bytes[cps.records[1]]))
            expected = .inconsistentCheckpoints
        }

        let report = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        let failure = try #require(report.failure, "\(tamper) went unnoticed")
        #expect(failure.kind == expected, "\(tamper): \(failure)")
        if let expectedEntry { #expect(failure.entryIndex == expectedEntry, "\(tamper): \(failure)") }
    }

    /// Beyond the cases above, whose places were chosen: a byte changed at a random place of
    /// any segment or of the history (headers, checksums, payloads, the first and last bytes),
    /// 400 times from a fixed seed, is caught every time, and the verifier never fails any
    /// other way than by reporting it (20,000 changes from another seed were all caught too).
    /// `checkpoint.head` is left out on purpose: a slot whose record is damaged reads as a write
    /// torn by a crash and is skipped, the bytes after a slot's record are leftovers of longer
    /// notes, and here the history's checkpoints cover every entry anyway (docs/audit.md).
    @Test func aByteChangedAnywhereInTheSegmentsOrTheHistoryIsCaught() throws {
        let dir = TempDir("tamper-random")
        defer { dir.cleanup() }
        let s = try Fixture.signer()
        // `always`: a batch per entry, so that segments are cut where their size says (a
        // segment is cut between batches only).
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: .always,
                                     checkpointEvery: CheckpointPolicy(entries: 100, milliseconds: 60_000),
                                     signer: s, segmentBytes: 32 << 10)
        for i in 0..<600 { try w.append(Fixture.entry(i)) }
        try w.close()
        let files = (dir.segments + ["checkpoints.log"]).map { dir.path + "/" + $0 }
        #expect(files.count > 3, "several segments: \(files)")
        #expect(AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey).failure == nil)
        let originals = files.map(Fixture.read)
        let total = originals.reduce(0) { $0 + $1.count }
        var rng = SeededRandom(state: 0x7461_6d70_6572_0001)
        for trial in 0..<400 {
            // A place in the concatenation of the files, so that larger files are hit more.
            var at = trial < 2 ? (trial == 0 ? 0 : total - 1) : Int.random(in: 0..<total, using: &rng)
            var f = 0
            while at >= originals[f].count { at -= originals[f].count; f += 1 }
            var bytes = originals[f]
            bytes[at] ^= UInt8.random(in: 1...255, using: &rng)
            try Fixture.write(files[f], bytes)
            let report = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
            #expect(report.failure != nil, "byte \(at) of \(files[f]) changed and the log still verifies")
            try Fixture.write(files[f], originals[f])
        }
    }

    @Test func externalAnchorCatchesALogCutTogetherWithItsCheckpoints() throws {
        let (dir, s) = try Self.makeLog()
        defer { dir.cleanup() }
        let cps = Self.checkpointNotes(dir)
        let last = cps.records.last!
        let anchor = String(decoding: cps.bytes[(last.lowerBound + 12)..<last.upperBound], as: UTF8.self)
        // A root attacker drops the newest checkpoint and the entries after the one before it.
        let prior = cps.records[cps.records.count - 2]
        let priorNote = String(decoding: cps.bytes[(prior.lowerBound + 12)..<prior.upperBound], as: UTF8.self)
        let priorSize = try Checkpoint(signedNote: priorNote, verifier: s.verifierKey).size
        try Fixture.write(cps.path, Array(cps.bytes[..<last.lowerBound]))
        // ... and checkpoint.head, which covers every entry too (the history then does).
        try FileManager.default.removeItem(atPath: dir.path + "/checkpoint.head")
        let (path, r) = Self.locate(dir)[Int(priorSize)]
        try Fixture.write(path, Array(Fixture.read(path)[..<r.lowerBound]))
        for seg in dir.segments where seg > (path as NSString).lastPathComponent {
            try FileManager.default.removeItem(atPath: dir.path + "/" + seg)
        }
        #expect(AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey).isValid)
        let anchored = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey, anchors: [anchor])
        #expect(anchored.failure?.kind == .truncated)
    }
}
