import CustosJSON
import Foundation
import Testing

/// `custos audit` through the real binary, the way an auditor uses it: logs are written by
/// `audit generate` (the daemon's writer and file format), damaged with plain byte edits, and
/// judged only by exit status and output.
@Suite struct AuditCommandTests {
    /// A private folder for one test (from `Binary.scratch()`); removed by `cleanup()`.
    struct Scratch {
        let path: String
        init() throws { path = try Binary.scratch().path }
        func cleanup() { try? FileManager.default.removeItem(atPath: path) }
    }

    static func custos(_ args: [String], stdin: String? = nil) throws -> Binary.Outcome {
        try Binary.run(args, stdin: stdin.map { Data($0.utf8) })
    }

    static let start = "2026-03-01T09:00:00Z"
    static let keyName = "custos.test/audit"

    /// A state folder with `entries` synthetic entries (entry i is at start + i ms) and its
    /// verifier key written to `<scratch>/<name>.pub` via `audit pubkey`.
    @discardableResult
    static func makeLog(_ scratch: Scratch, name: String = "state", entries: Int,
                        checkpointEvery: Int = 1000) throws -> (state: String, pubkey: String) {
        let state = scratch.path + "/" + name
        let gen = try custos(["audit", "generate", "--state", state, "--entries", String(entries), "--start", start,
                              "--key-name", keyName, "--checkpoint-every", String(checkpointEvery)])
        try #require(gen.status == 0, "generate failed: \(gen.stderr)")
        let pub = try custos(["audit", "pubkey", "--state", state])
        try #require(pub.status == 0, "pubkey failed: \(pub.stderr)")
        let pubPath = scratch.path + "/" + name + ".pub"
        try Data(pub.stdout.utf8).write(to: URL(fileURLWithPath: pubPath))
        return (state, pubPath)
    }

    static func read(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }
    static func write(_ path: String, _ bytes: [UInt8]) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

    /// Byte ranges (12-byte header included) of the framed records of a segment or
    /// checkpoints.log: `length u32le | crc32c u32le | header crc32c u32le | payload`.
    static func records(_ bytes: [UInt8]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var p = 0
        while p + 12 <= bytes.count {
            let len = Int(bytes[p]) | Int(bytes[p + 1]) << 8 | Int(bytes[p + 2]) << 16 | Int(bytes[p + 3]) << 24
            guard p + 12 + len <= bytes.count else { break }
            out.append(p..<(p + 12 + len))
            p += 12 + len
        }
        return out
    }

    static func segments(_ state: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: state + "/audit")
            .filter { $0.hasPrefix("segment-") }.sorted().map { state + "/audit/" + $0 }
    }

    static func verify(_ state: String, _ pubkey: String) throws -> Binary.Outcome {
        try custos(["audit", "verify", "--state", state, "--pubkey", pubkey])
    }

    // MARK: verify

    @Test func freshTenThousandEntryLogVerifiesWithItsPublicKey() throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let (state, pub) = try Self.makeLog(scratch, entries: 10_000)
        let r = try Self.verify(state, pub)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let line = try #require(r.stdout.split(separator: "\n").first.map(String.init))
        #expect(line.hasPrefix("OK: 10000 entries, "), "\(line)")
        #expect(line.hasSuffix(" checkpoints, latest checkpoint size 10000"), "\(line)")
        let checkpoints = Int(line.split(separator: " ")[3]) ?? 0
        #expect(checkpoints >= 5, "a checkpoint every 1000 to 2023 entries (batch boundaries): \(line)")
        #expect(r.stderr.isEmpty, "an explicit --pubkey gives no warning: \(r.stderr)")
    }

    enum Tamper: String, CaseIterable, Sendable {
        case flipBit, deleteEntry, swapEntries, truncateBelowLastCheckpoint, resignCheckpoint, rollBackCheckpoint
    }

    @Test(arguments: Tamper.allCases)
    func tamperingIsReportedWithItsClassAndExitStatus(_ tamper: Tamper) throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let (state, pub) = try Self.makeLog(scratch, entries: 10_000)
        let segment = try #require(try Self.segments(state).first)
        #expect(try Self.segments(state).count == 1, "the default segment size holds all 10,000 entries")
        let checkpoints = state + "/audit/checkpoints.log"
        var seg = try Self.read(segment)
        let recs = Self.records(seg)
        try #require(recs.count == 10_000)
        let expectedStatus: Int32
        let expectedPrefix: String

        switch tamper {
        case .flipBit:
            seg[recs[4321].lowerBound + 12 + 40] ^= 0x04
            try Self.write(segment, seg)
            (expectedStatus, expectedPrefix) = (3, "FAIL: corrupt at entry 4321")
        case .deleteEntry:
            seg.removeSubrange(recs[5000])
            try Self.write(segment, seg)
            (expectedStatus, expectedPrefix) = (4, "FAIL: missing at entry 5000")
        case .swapEntries:
            let a = Array(seg[recs[6000]]), b = Array(seg[recs[6001]])
            seg.replaceSubrange(recs[6000].lowerBound..<recs[6001].upperBound, with: b + a)
            try Self.write(segment, seg)
            (expectedStatus, expectedPrefix) = (5, "FAIL: reordered at entry 6000")
        case .truncateBelowLastCheckpoint:
            try Self.write(segment, Array(seg[..<recs[9900].lowerBound]))
            (expectedStatus, expectedPrefix) = (6, "FAIL: truncated at entry 9900")
        case .resignCheckpoint:
            // The same entries under the same log name, signed by another key: the newest
            // checkpoints of both logs have identical bodies, so swapping the framed note in is
            // exactly a re-signature by an impostor who lacks the real key.
            try Self.makeLog(scratch, name: "impostor", entries: 10_000)
            let theirs = try Self.read(scratch.path + "/impostor/audit/checkpoints.log")
            var ours = try Self.read(checkpoints)
            let ourLast = try #require(Self.records(ours).last), theirLast = try #require(Self.records(theirs).last)
            ours.replaceSubrange(ourLast, with: theirs[theirLast])
            try Self.write(checkpoints, ours)
            (expectedStatus, expectedPrefix) = (7, "FAIL: bad-signature (checkpoint #\(Self.records(ours).count - 1)")
        case .rollBackCheckpoint:
            // A genuine older checkpoint replayed as the newest one.
            let cps = try Self.read(checkpoints)
            let r = Self.records(cps)
            try Self.write(checkpoints, cps + Array(cps[r[1]]))
            (expectedStatus, expectedPrefix) = (8, "FAIL: inconsistent-checkpoints")
        }

        let r = try Self.verify(state, pub)
        #expect(r.status == expectedStatus, "\(tamper): \(r.stdout)\(r.stderr)")
        #expect(r.stdout.hasPrefix(expectedPrefix), "\(tamper): \(r.stdout)")
    }

    @Test func verifyWithoutALogIsAUsageErrorAndHelpDocumentsEveryExitStatus() throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let r = try Self.custos(["audit", "verify", "--state", scratch.path + "/nothing-here"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("no audit log at"), "\(r.stderr)")
        let help = try Self.custos(["audit", "verify", "--help"])
        #expect(help.status == 0)
        for line in ["0  the log verified", "2  usage error", "3  corrupt", "4  missing", "5  reordered",
                     "6  truncated", "7  bad-signature", "8  inconsistent-checkpoints", "9  uncovered"] {
            #expect(help.stdout.contains(line), "verify --help lacks '\(line)'")
        }
        let group = try Self.custos(["audit", "--help"])
        #expect(group.stdout.contains("\n  verify-proof  "))
        #expect(!group.stdout.contains("\n  generate "), "the test-support subcommand is not listed")
        let gen = try Self.custos(["audit", "generate", "--help"])
        #expect(gen.stdout.contains("For tests and demos only"))
    }

    @Test func generateKeepsTheFoldersKeyAndContinuesTheLog() throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let (state, pub) = try Self.makeLog(scratch, entries: 5)
        var st = stat()
        #expect(stat(state + "/audit/signing.key", &st) == 0 && st.st_mode & 0o777 == 0o600, "the signing key is owner-only")
        let again = try Self.custos(["audit", "generate", "--state", state, "--entries", "7", "--start", "2026-03-02T00:00:00Z"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.hasPrefix("appended 7 entries (seq 5..<12)"), "\(again.stdout)")
        #expect(try Self.custos(["audit", "pubkey", "--state", state]).stdout == (try String(contentsOfFile: pub, encoding: .utf8)))
        let r = try Self.verify(state, pub)
        #expect(r.status == 0 && r.stdout.hasPrefix("OK: 12 entries, "), "\(r.stdout)")
        let withoutKey = try Self.custos(["audit", "verify", "--state", state])
        #expect(withoutKey.status == 0 && withoutKey.stdout.hasPrefix("OK: 12 entries, "), "\(withoutKey.stdout)")
        #expect(withoutKey.stderr.contains("warning: no --pubkey given"), "falling back to the folder's own key is announced")
        let later = try Self.custos(["audit", "query", "--state", state, "--since", "2026-03-02T00:00:00Z"])
        #expect(try Self.seqs(later.stdout) == Array(5..<12))
    }

    @Test func tornTailAndOneUncoveredBatchAreReportedButEntriesWithoutAnyCheckpointFail() throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let (state, pub) = try Self.makeLog(scratch, entries: 100)
        let segment = try #require(try Self.segments(state).last)
        let seg = try Self.read(segment)
        let last = try #require(Self.records(seg).last)
        // A crash mid-write: the final record is cut short (it was never acknowledged).
        try Self.write(segment, seg + Array(seg[last].prefix(30)))
        let r = try Self.verify(state, pub)
        #expect(r.status == 0, "\(r.stdout)")
        #expect(r.stdout.contains("torn record of 30 bytes"), "\(r.stdout)")
        // A crash between a batch's write and its checkpoint: at most one batch, reported.
        let cpsPath = state + "/audit/checkpoints.log", headPath = state + "/audit/checkpoint.head"
        let covering100 = (try Self.read(cpsPath), try Self.read(headPath))
        let more = try Self.custos(["audit", "generate", "--state", state, "--entries", "10"])
        try #require(more.status == 0, "\(more.stderr)")
        try Self.write(cpsPath, covering100.0)
        try Self.write(headPath, covering100.1)
        let batch = try Self.verify(state, pub)
        #expect(batch.status == 0, "\(batch.stdout)")
        #expect(batch.stdout.hasPrefix("OK: 110 entries, 2 checkpoints, latest checkpoint size 100"), "\(batch.stdout)")
        #expect(batch.stdout.contains("the last 10 entries are not covered by a signed checkpoint"), "\(batch.stdout)")
        // No checkpoint at all while entries exist is never what a crash leaves.
        try Self.write(cpsPath, [])
        let bare = try Self.verify(state, pub)
        #expect(bare.status == 9, "\(bare.stdout)")
        #expect(bare.stdout.hasPrefix("FAIL: uncovered at entry 0: checkpoints.log holds no checkpoint but the log has 110 entries"), "\(bare.stdout)")
        try FileManager.default.removeItem(atPath: cpsPath)
        let missing = try Self.verify(state, pub)
        #expect(missing.status == 9 && missing.stdout.hasPrefix("FAIL: uncovered at entry 0: checkpoints.log is missing"), "\(missing.stdout)")
    }

    @Test func anAnchorCatchesTheLogCutTogetherWithItsCheckpoints() throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let (state, pub) = try Self.makeLog(scratch, entries: 5000)
        let cp = try Self.custos(["audit", "checkpoint", "--state", state])
        #expect(cp.status == 0)
        #expect(cp.stdout.hasPrefix(Self.keyName + "\n5000\n") && cp.stdout.contains("\n\n\u{2014} \(Self.keyName) "), "\(cp.stdout)")
        let anchor = scratch.path + "/anchor.txt"
        try Data(cp.stdout.utf8).write(to: URL(fileURLWithPath: anchor))
        // Someone with root cuts the newest checkpoint and every entry it alone covers.
        let cpsPath = state + "/audit/checkpoints.log"
        let cps = try Self.read(cpsPath)
        let cpRecords = Self.records(cps)
        let prior = String(decoding: cps[cpRecords[cpRecords.count - 2]].dropFirst(12), as: UTF8.self)
        let priorSize = try #require(Int(prior.split(separator: "\n")[1]))
        try Self.write(cpsPath, Array(cps[..<cpRecords[cpRecords.count - 1].lowerBound]))
        let segment = try #require(try Self.segments(state).last)
        let seg = try Self.read(segment)
        try Self.write(segment, Array(seg[..<Self.records(seg)[priorSize].lowerBound]))
        // ... and checkpoint.head, which covers every entry too (the history then does).
        try FileManager.default.removeItem(atPath: state + "/audit/checkpoint.head")

        let alone = try Self.verify(state, pub)
        #expect(alone.status == 0 && alone.stdout.hasPrefix("OK: \(priorSize) entries"), "undetectable without an anchor: \(alone.stdout)")
        let anchored = try Self.custos(["audit", "verify", "--state", state, "--pubkey", pub, "--anchor", anchor])
        #expect(anchored.status == 6, "\(anchored.stdout)")
        #expect(anchored.stdout.hasPrefix("FAIL: truncated at entry \(priorSize)"), "\(anchored.stdout)")
    }

    // MARK: query

    static func seqs(_ jsonl: String) throws -> [Int64] {
        try jsonl.split(separator: "\n").map { line in
            try #require(try JSON.parse(String(line))["seq"]?.intValue)
        }
    }

    @Test func queryFiltersCombineAndMatchExactly() throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let (state, _) = try Self.makeLog(scratch, entries: 300)
        func q(_ args: String...) throws -> [Int64] {
            let r = try Self.custos(["audit", "query", "--state", state] + args)
            #expect(r.status == 0, "\(args): \(r.stderr)")
            return try Self.seqs(r.stdout)
        }
        #expect(try q("--principal", "Clinician::\"c1\"") == (0..<300).filter { $0 % 7 == 1 }.map(Int64.init))
        #expect(try q("--action", "Action::\"write\"", "--decision", "deny") == (0..<300).filter { $0 % 12 == 0 }.map(Int64.init))
        #expect(try q("--resource", "Record::\"r10\"", "--method", "policy.update") == [10, 60, 110, 160, 210, 260])
        #expect(try q("--decision-id", "d-123") == [123])
        #expect(try q("--principal", "Clinician::\"C1\"").isEmpty)
        #expect(try q("--since", "2026-03-01T09:00:00.100Z", "--until", "2026-03-01T09:00:00.105Z") == [100, 101, 102, 103, 104])
        #expect(try q("--decision", "allow", "--limit", "3") == [1, 2, 3])
        #expect(try q("--limit", "4") == [0, 1, 2, 3])
        #expect(try q().count == 300)
    }

    @Test func jsonLinesAreTheCanonicalEntriesWhetherFilteredOrNot() throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let (state, _) = try Self.makeLog(scratch, entries: 20)
        let all = try Self.custos(["audit", "query", "--state", state]).stdout.split(separator: "\n")
        #expect(all.count == 20)
        let one = try Self.custos(["audit", "query", "--state", state, "--decision-id", "d-7"]).stdout
        #expect(one == all[7] + "\n")
        #expect(one.hasPrefix("{\"seq\":7,\"time\":\"2026-03-01T09:00:00.007Z\",\"decision_id\":\"d-7\",\"caller\":{"))
        let e = try JSON.parse(one)
        #expect(e["principal"]?.stringValue == "Clinician::\"c0\"")
        #expect(e["decision"]?.stringValue == "allow")
        #expect(e["policy_revision"]?.stringValue == "rev-1")
    }

    @Test func tableFormatAlignsItsColumns() throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let (state, _) = try Self.makeLog(scratch, entries: 40)
        let r = try Self.custos(["audit", "query", "--state", state, "--principal", "Clinician::\"c3\"", "--format", "table"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 1 + 6)  // header + seq 3, 10, 17, 24, 31, 38
        let header = try #require(lines.first)
        let columns = ["seq", "time", "decision", "principal", "action", "resource", "method", "decision_id"]
        #expect(header.split(separator: " ").map(String.init) == columns)
        let starts = columns.map { header.range(of: $0)!.lowerBound.utf16Offset(in: header) }
        for line in lines.dropFirst() {
            // Every cell starts at its header's column and no cell here contains a space.
            let cells = line.split(separator: " ").map(String.init)
            #expect(cells.count == columns.count, "\(line)")
            for (cell, start) in zip(cells, starts) {
                let at = line.index(line.startIndex, offsetBy: start)
                #expect(line[at...].hasPrefix(cell), "\(cell) not at column \(start) in \(line)")
            }
        }
        #expect(lines[1].hasPrefix("3 ") && lines[1].contains("Clinician::\"c3\"") && lines[1].hasSuffix("d-3"))
    }

    @Test func queryRejectsBadArguments() throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let (state, _) = try Self.makeLog(scratch, entries: 5)
        for args in [["--decision", "maybe"], ["--since", "2026-03-01 09:00"], ["--format", "csv"], ["--limit", "0"]] {
            let r = try Self.custos(["audit", "query", "--state", state] + args)
            #expect(r.status == 2, "\(args)")
            #expect(!r.stderr.isEmpty, "\(args)")
        }
    }

    // MARK: proofs and keys

    @Test func proveThenVerifyProofRoundTripsFromAFileAndFromStandardInput() throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let (state, pub) = try Self.makeLog(scratch, entries: 3000)
        let proofPath = scratch.path + "/proof.json"
        let prove = try Self.custos(["audit", "prove", "--state", state, "--decision-id", "d-2024", "--out", proofPath])
        #expect(prove.status == 0, "\(prove.stderr)")
        let proof = try JSON.parse(try String(contentsOfFile: proofPath, encoding: .utf8))
        #expect(proof["index"]?.intValue == 2024)
        #expect(proof["size"]?.intValue == 3000)
        #expect((proof["path"]?.arrayValue?.count ?? 0) >= 11)  // ceil(log2(3000)) - 1 at least
        #expect(proof["checkpoint"]?.stringValue?.hasPrefix(Self.keyName + "\n3000\n") == true)

        let fromFile = try Self.custos(["audit", "verify-proof", "--pubkey", pub, proofPath])
        #expect(fromFile.status == 0, "\(fromFile.stdout)")
        #expect(fromFile.stdout.hasPrefix("OK: entry 2024 (decision_id d-2024) is in log \(Self.keyName) at size 3000"))
        let byIndex = try Self.custos(["audit", "prove", "--state", state, "--index", "2024"])
        #expect(byIndex.stdout == (try String(contentsOfFile: proofPath, encoding: .utf8)))
        let fromStdin = try Self.custos(["audit", "verify-proof", "--pubkey", pub, "-"], stdin: byIndex.stdout)
        #expect(fromStdin.status == 0, "\(fromStdin.stdout)")
    }

    enum ProofTamper: String, CaseIterable, Sendable {
        case entryAltered, pathHashReplaced, indexMoved, checkpointSizeEdited, otherLogsKey
    }

    @Test(arguments: ProofTamper.allCases)
    func tamperedProofIsRejectedWithAReason(_ tamper: ProofTamper) throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let (state, pub) = try Self.makeLog(scratch, entries: 500)
        let text = try Self.custos(["audit", "prove", "--state", state, "--index", "123"]).stdout
        guard case .object(var o) = try JSON.parse(text) else { Issue.record("proof is not an object"); return }
        func set(_ k: String, _ v: JSON) {
            o.members = o.members.map { $0.key == k ? JSONObject.Member(key: k, value: v) : $0 }
        }
        var key = pub
        switch tamper {
        case .entryAltered:
            let entry = try #require(o["entry"]?.stringValue)
            let forged = entry.replacingOccurrences(of: "\"decision\":\"allow\"", with: "\"decision\":\"deny\"")
            #expect(forged != entry)
            set("entry", .string(forged))
        case .pathHashReplaced:
            var path = try #require(o["path"]?.arrayValue)
            path[2] = path[3]
            set("path", .array(path))
        case .indexMoved:
            set("index", .int(124))
        case .checkpointSizeEdited:
            let note = try #require(o["checkpoint"]?.stringValue)
            set("checkpoint", .string(note.replacingOccurrences(of: "\n500\n", with: "\n501\n")))
            set("size", .int(501))
        case .otherLogsKey:
            key = try Self.makeLog(scratch, name: "other", entries: 1).pubkey
        }
        let r = try Self.custos(["audit", "verify-proof", "--pubkey", key], stdin: JSON.object(o).serialized)
        #expect(r.status == 1, "\(tamper): \(r.stdout)")
        #expect(r.stdout.hasPrefix("INVALID: "), "\(tamper): \(r.stdout)")
    }

    @Test func pubkeyPrintsANoteVerifierKeyForTheLogName() throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let (state, pubPath) = try Self.makeLog(scratch, entries: 1)
        let line = try String(contentsOfFile: pubPath, encoding: .utf8)
        #expect(line.hasSuffix("\n"))
        // name+keyid+base64: the base64 may itself hold '+', so split at the first two only.
        let parts = line.dropLast().split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        try #require(parts.count == 3, "\(line)")
        #expect(parts[0] == Self.keyName[...])
        #expect(parts[1].count == 8 && parts[1].allSatisfy(\.isHexDigit))
        let key = try #require(Data(base64Encoded: String(parts[2])))
        #expect(key.count == 33 && key.first == 0x01, "Ed25519 algorithm byte then 32 key bytes")
        // The same line is stored publicly in the state folder for operators.
        #expect(try String(contentsOfFile: state + "/audit/verifier.key", encoding: .utf8) == line)
        let missing = try Self.custos(["audit", "pubkey", "--state", scratch.path + "/none"])
        #expect(missing.status == 2)
    }
}
