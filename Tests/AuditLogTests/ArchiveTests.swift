import AuditLog
import Foundation
import Testing

/// Segment sealing, archival and retention (`AuditArchive`), and folders that start at a base.
@Suite struct ArchiveTests {
    /// Appends `count` entries in `always` mode, so each append is a batch of its own and
    /// 8 KiB segments are sealed every couple of dozen entries.
    static func log(_ dir: TempDir, _ s: NoteSigner, count: Int, from first: Int = 0,
                    time: AuditTimestamp = AuditTimestamp(millisecondsSinceEpoch: 1_780_000_000_000),
                    segmentBytes: Int = 8192, maxAgeMs: Int64? = nil) throws {
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: .always, signer: s, segmentBytes: segmentBytes,
                                     segmentMaxAgeMs: maxAgeMs)
        for i in first..<(first + count) { try w.append(Fixture.entry(i, time: time)) }
        try w.close()
    }

    static func history(_ dir: String) throws -> [UInt64] {
        let bytes = Fixture.read(dir + "/checkpoints.log")
        return try Fixture.records(bytes).map { r in
            let note = String(decoding: bytes[(r.lowerBound + 12)..<r.upperBound], as: UTF8.self)
            return try Checkpoint(unsignedNote: note).size
        }
    }

    static func segmentFirsts(_ dir: String) -> [UInt64] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix("segment-") }.sorted()
            .compactMap { UInt64($0.dropFirst(8).dropLast(4)) }
    }

    @Test func everySealedSegmentEndsWhereTheHistoryHasACheckpoint() throws {
        let dir = TempDir(), s = try Fixture.signer()
        defer { dir.cleanup() }
        try Self.log(dir, s, count: 300)
        let firsts = Self.segmentFirsts(dir.path)
        try #require(firsts.count >= 3, "8 KiB segments: several seals")
        let sizes = Set(try Self.history(dir.path))
        for end in firsts.dropFirst() { #expect(sizes.contains(end), "no checkpoint at the seal at \(end)") }
    }

    @Test func aSegmentAsOldAsTheAgeLimitIsSealedBeforeTheNextBatch() throws {
        let dir = TempDir(), s = try Fixture.signer()
        defer { dir.cleanup() }
        // Age 0: every segment is old enough once it holds an entry, so each batch (one append
        // in `always` mode) starts a new segment, whatever the size limit.
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: .always, signer: s, segmentMaxAgeMs: 0)
        for i in 0..<5 { try w.append(Fixture.entry(i)) }
        try w.close()
        #expect(Self.segmentFirsts(dir.path) == [0, 1, 2, 3, 4])
        #expect(AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey).isValid)
    }

    @Test(arguments: [UInt64(1), 2, 3, 5, 8, 13, 64, 100, 127, 128, 129, 1000])
    func aTreeStartedFromAFrontierGivesTheWholeTreesRootsAndProofs(base: UInt64) throws {
        var whole = MerkleTree()
        var frontier = MerkleFrontier()
        let leaves = (0..<(base + 70)).map { MerkleHash.leaf(Array("leaf \($0)".utf8)) }
        for (i, h) in leaves.enumerated() {
            whole.append(leafHash: h)
            if UInt64(i) < base { frontier.append(leafHash: h) }
        }
        let rebuilt = try #require(MerkleFrontier(size: frontier.size, hashes: frontier.nodes.map { $0.hash }))
        var tree = MerkleTree(base: rebuilt)
        for h in leaves[Int(base)...] { tree.append(leafHash: h) }
        #expect(tree.size == whole.size && tree.base == base)
        for size in base...tree.size {
            #expect(tree.root(size: size) == whole.root(size: size), "root at \(size)")
            if size > base { #expect(tree.inclusionProof(index: size - 1, size: tree.size) == whole.inclusionProof(index: size - 1, size: whole.size)) }
            if base > 0 { #expect(tree.consistencyProof(from: base, to: size) == whole.consistencyProof(from: base, to: size)) }
        }
        #expect(tree.inclusionProof(index: base - 1, size: tree.size) == nil, "a leaf before the base has no proof")
    }

    /// A fleet daemon checks its log against the witness at start. After older segments were
    /// archived and pruned the folder starts at its base.json: the witnessed checkpoints must
    /// be compared from the base's frontier on, not from an empty tree (which read every one
    /// as a rewrite, `forked`, and kept the daemon from starting), and a rewrite is still caught.
    @Test func aPrunedFolderStillExtendsWhatTheWitnessSawAndARewriteIsStillCaught() throws {
        let dir = TempDir(), root = TempDir("archive"), other = TempDir(), s = try Fixture.signer()
        defer { dir.cleanup(); root.cleanup(); other.cleanup() }
        func append(_ d: TempDir, from: Int, count: Int) throws -> WitnessNote {
            let w = try AuditWriter.open(stateDirectory: d.path, mode: .always, signer: s, segmentBytes: 8192)
            for i in from..<(from + count) { try w.append(Fixture.entry(i, time: AuditTimestamp(millisecondsSinceEpoch: 1_780_000_000_000))) }
            try w.close()
            return WitnessNote(note: try #require(w.latestCheckpoint), source: "row \(from + count)")
        }
        let at100 = try append(dir, from: 0, count: 100)
        let at400 = try append(dir, from: 100, count: 300)
        let archived = try #require(try AuditArchive.run(logDirectory: dir.path, archiveRoot: root.path, publicKey: s.verifierKey,
                                                         pruneOlderThanMs: 0).pruned)
        try #require(archived.upperBound > 100, "the folder now starts after the first witnessed checkpoint")
        let at700 = try append(dir, from: 400, count: 300)
        let r = AuditWitness.check(logDirectory: dir.path, publicKey: s.verifierKey, witnessed: [at100, at400, at700])
        #expect(r.failure == nil, "\(String(describing: r.failure))")
        #expect(r.checked == 3 && r.newest?.size == 700)
        // Another history of the same size, signed with the same key: a rewrite.
        _ = try append(other, from: 5000, count: 700)
        let rewritten = try append(other, from: 5700, count: 0)
        let forked = AuditWitness.check(logDirectory: dir.path, publicKey: s.verifierKey, witnessed: [at400, rewritten])
        #expect(forked.failure?.kind == .forked, "\(String(describing: forked.failure))")
    }

    @Test func archivedRangesVerifyOnTheirOwnAndTheLiveFolderFromItsBase() throws {
        let dir = TempDir(), root = TempDir("archive"), s = try Fixture.signer()
        defer { dir.cleanup(); root.cleanup() }
        try Self.log(dir, s, count: 400)
        let first = try AuditArchive.run(logDirectory: dir.path, archiveRoot: root.path, publicKey: s.verifierKey, pruneOlderThanMs: 0)
        let archived = try #require(first.archived)
        #expect(archived.lowerBound == 0 && archived.upperBound == Self.segmentFirsts(dir.path).first)
        #expect(first.pruned == archived, "entries old enough are pruned once archived")
        // More entries, then a second range: it starts where the first ended.
        try Self.log(dir, s, count: 300, from: 400)
        let second = try AuditArchive.run(logDirectory: dir.path, archiveRoot: root.path, publicKey: s.verifierKey, pruneOlderThanMs: 0)
        let next = try #require(second.archived)
        #expect(next.lowerBound == archived.upperBound)
        for range in [archived, next] {
            let folder = root.path + "/" + AuditArchive.folderName(range) + "/audit"
            let r = AuditVerifier.verify(stateDirectory: folder, publicKey: s.verifierKey)
            #expect(r.isValid, "\(range): \(r.failure?.description ?? "")")
            #expect(r.origin == range.lowerBound && r.entries == range.upperBound && r.latestCheckpoint?.size == range.upperBound)
            // An entry of the range is provable from the archive alone.
            let proof = try AuditInclusionProof.generate(stateDirectory: folder, index: range.upperBound - 1)
            #expect(try proof.verify(publicKey: s.verifierKey).size == range.upperBound)
        }
        let live = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        #expect(live.isValid, "\(live.failure?.description ?? "")")
        #expect(live.origin == next.upperBound && live.entries == 700)
        // The writer reopens the pruned folder from its base and goes on.
        try Self.log(dir, s, count: 10, from: 700)
        let after = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        #expect(after.isValid && after.entries == 710, "\(after.failure?.description ?? "")")
    }

    @Test func retentionKeepsWhatIsNotOldEnoughAndEverythingNotArchived() throws {
        let dir = TempDir(), root = TempDir("archive"), s = try Fixture.signer()
        defer { dir.cleanup(); root.cleanup() }
        let now = AuditTimestamp(millisecondsSinceEpoch: 1_780_000_000_000 + 86_400_000)
        try Self.log(dir, s, count: 400)
        let before = Self.segmentFirsts(dir.path)
        // Entries a day old, kept two days: archived, nothing pruned.
        let kept = try AuditArchive.run(logDirectory: dir.path, archiveRoot: root.path, publicKey: s.verifierKey,
                                        pruneOlderThanMs: 2 * 86_400_000, now: now)
        #expect(kept.archived != nil && kept.pruned == nil)
        #expect(Self.segmentFirsts(dir.path) == before)
        // Kept half a day: pruned, except the segment being written, which is never sealed or archived.
        let pruned = try AuditArchive.run(logDirectory: dir.path, archiveRoot: root.path, publicKey: s.verifierKey,
                                          pruneOlderThanMs: 43_200_000, now: now)
        #expect(pruned.archived == nil, "nothing new was sealed")
        #expect(Self.segmentFirsts(dir.path) == [before.last!])
        #expect(try LogBase.read(dir.path)?.size == before.last!)
    }

    enum Damage: String, CaseIterable { case archivedCopyChanged, liveFileDiffersFromItsCopy, archivedCopyGone }

    @Test(arguments: Damage.allCases)
    func aPruneThatCannotProveTheArchiveHoldsASegmentRemovesNothing(_ damage: Damage) throws {
        let dir = TempDir(), root = TempDir("archive"), s = try Fixture.signer()
        defer { dir.cleanup(); root.cleanup() }
        try Self.log(dir, s, count: 400)
        let made = try AuditArchive.run(logDirectory: dir.path, archiveRoot: root.path, publicKey: s.verifierKey)
        let range = try #require(made.archived)
        let before = Self.segmentFirsts(dir.path)
        let firstSegment = "segment-00000000000000000000.log"
        let copy = root.path + "/" + AuditArchive.folderName(range) + "/audit/" + firstSegment
        switch damage {
        case .archivedCopyChanged:
            var b = Fixture.read(copy); b[20] ^= 1; try Fixture.write(copy, b)
        case .liveFileDiffersFromItsCopy:
            var b = Fixture.read(dir.path + "/" + firstSegment); b[20] ^= 1; try Fixture.write(dir.path + "/" + firstSegment, b)
        case .archivedCopyGone:
            try FileManager.default.removeItem(atPath: copy)
        }
        #expect(throws: AuditError.self) {
            try AuditArchive.run(logDirectory: dir.path, archiveRoot: root.path, publicKey: s.verifierKey, pruneOlderThanMs: 0)
        }
        #expect(Self.segmentFirsts(dir.path) == before, "nothing removed")
        #expect(try LogBase.read(dir.path) == nil, "the live folder still starts at 0")
    }

    @Test func aLogWhoseEntriesDoNotMatchTheirCheckpointIsNotArchived() throws {
        let dir = TempDir(), root = TempDir("archive"), s = try Fixture.signer()
        defer { dir.cleanup(); root.cleanup() }
        try Self.log(dir, s, count: 400)
        // Change one byte of an entry and frame it anew: the checksums pass, the roots do not.
        let path = dir.path + "/segment-00000000000000000000.log"
        var b = Fixture.read(path)
        let record = Fixture.records(b)[3]
        var payload = Array(b[(record.lowerBound + 12)..<record.upperBound])
        let at = try #require(payload.firstIndex(of: UInt8(ascii: "C")), "the principal Clinician::...")
        payload[at] = UInt8(ascii: "K")
        b.replaceSubrange(record, with: Self.reframe(payload))
        try Fixture.write(path, b)
        #expect(throws: AuditError.self) {
            try AuditArchive.run(logDirectory: dir.path, archiveRoot: root.path, publicKey: s.verifierKey)
        }
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []).filter { !$0.hasPrefix(".") }.isEmpty)
    }

    static func reframe(_ payload: [UInt8]) -> [UInt8] {
        // Same framing as RecordFrame: length, crc32c(payload), crc32c(header[0..<8]).
        func crc(_ d: [UInt8]) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for x in d {
                c ^= UInt32(x)
                for _ in 0..<8 { c = (c >> 1) ^ (0x82F6_3B78 & (0 &- (c & 1))) }
            }
            return ~c
        }
        func le(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8(v >> 24)] }
        let head = le(UInt32(payload.count)) + le(crc(payload))
        return head + le(crc(head)) + payload
    }

    @Test func aBaseWhoseFrontierDoesNotHashToItsCheckpointIsRefused() throws {
        let dir = TempDir(), root = TempDir("archive"), s = try Fixture.signer()
        defer { dir.cleanup(); root.cleanup() }
        try Self.log(dir, s, count: 400)
        _ = try AuditArchive.run(logDirectory: dir.path, archiveRoot: root.path, publicKey: s.verifierKey, pruneOlderThanMs: 0)
        let path = dir.path + "/" + LogBase.fileName
        let text = String(decoding: Fixture.read(path), as: UTF8.self)
        let hash = try #require(text.range(of: #"\["[A-Za-z0-9+/=]{44}"#, options: .regularExpression))
        let forged = text.replacingCharacters(in: text.index(hash.lowerBound, offsetBy: 2)..<text.index(hash.lowerBound, offsetBy: 6), with: "AAAA")
        try Fixture.write(path, Array(forged.utf8))
        let r = AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey)
        #expect(r.failure?.kind == .corrupt)
        #expect(throws: AuditError.self) { _ = try AuditWriter.open(stateDirectory: dir.path, signer: s) }
    }
}
