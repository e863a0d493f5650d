/// What kind of damage the verifier found.
public enum AuditFailureKind: String, Sendable, Equatable {
    /// Bytes of an entry (or a checkpoint record) changed: checksum or Merkle root mismatch.
    case corrupt
    /// An entry or a whole segment is gone from the middle of the log.
    case missing
    /// Entries are present but not in their positions (swapped, moved or duplicated).
    case reordered
    /// The log ends before the size a signed checkpoint (or an external anchor) covers.
    case truncated
    /// A checkpoint is not signed by the expected key, or its signature does not verify.
    case badSignature
    /// Checkpoints contradict each other: a later one is smaller (rolled back) or does not extend
    /// an earlier one.
    case inconsistentCheckpoints
    /// Entries that no checkpoint covers beyond what a crash leaves (one batch of at most
    /// `AuditWriter.maxBatch` entries at the end, with `checkpoint.head` present), or entries
    /// while `checkpoints.log` holds no checkpoint: checkpoints were removed.
    case uncovered
    /// Two checkpoints of one size with different roots, both signed by the log's key (in a
    /// witness, or a witnessed one against the log's entries): the history was rewritten.
    case forked
}

public struct AuditVerifyFailure: Sendable, Equatable, CustomStringConvertible {
    public var kind: AuditFailureKind
    /// The first entry that cannot be trusted, when the damage can be placed.
    public var entryIndex: UInt64?
    /// The position (0-based) of the offending checkpoint in checkpoints.log, if one is involved.
    public var checkpointIndex: Int?
    public var message: String

    public var description: String {
        var s = "\(kind.rawValue)"
        if let entryIndex { s += " at entry \(entryIndex)" }
        if let checkpointIndex { s += " (checkpoint #\(checkpointIndex))" }
        return s + ": " + message
    }
}

public struct AuditVerifyReport: Sendable {
    /// The first entry the folder holds: 0, or the size of its `base.json` when older entries
    /// were archived and pruned (or the folder is an archive of a later range).
    public var origin: UInt64 = 0
    /// One past the last whole entry found in the segments (their count when `origin` is 0).
    public var entries: UInt64 = 0
    /// Checkpoints of `checkpoints.log` older than `origin`: signatures and order checked, their
    /// roots only in the archive that holds their entries.
    public var checkpointsBeforeOrigin: Int = 0
    /// Anchors older than `origin`, left to the archive that holds their entries.
    public var anchorsBeforeOrigin: Int = 0
    /// Checkpoints read from `checkpoints.log` (all of them when the log is valid).
    public var checkpoints: Int = 0
    /// The newest checkpoint whose signature verified, of `checkpoints.log` and `checkpoint.head`.
    public var latestCheckpoint: Checkpoint?
    /// Bytes of a torn final record: never acknowledged, cut by the writer on its next start.
    public var tornTailBytes: Int = 0
    /// The first problem found, in log order; nil when everything verified.
    public var failure: AuditVerifyFailure?
    /// Whether `checkpoint.head` exists (a log written by a custos before it has none).
    public var headExists = false
    /// Entries by which `custos audit recover` accepted entries no checkpoint covered, in log
    /// order: the breaks a verifier must see even in a log that verifies.
    public var recoveries: [AuditEntry] = []

    public var isValid: Bool { failure == nil }

    /// Entries no verified checkpoint vouches for yet: normal for the last moments before a
    /// crash or a read during writing, but only checked for framing and order, not signatures.
    public var entriesAfterLatestCheckpoint: UInt64 {
        let covered = latestCheckpoint?.size ?? 0
        return entries > covered ? entries - covered : 0
    }
}

/// Offline verification of a state folder with only the log's public key: recomputes the tree
/// from the entries, checks every checkpoint signature, that each checkpoint's root is the
/// root of the entries at its size, and that consecutive checkpoints are consistent.
///
/// Locally this detects any edit below the newest checkpoint. Rewriting the whole folder
/// including checkpoints needs the signing key; a root attacker who has it, or who truncates the
/// log together with the checkpoints, is only caught by `anchors`: checkpoints copied off the
/// machine earlier (witnesses, WORM storage).
public enum AuditVerifier {
    public static func verify(stateDirectory dir: String, publicKey: NoteVerifierKey,
                              anchors: [String] = []) -> AuditVerifyReport {
        var report = AuditVerifyReport()
        // A folder that starts after entry 0 proves its start with base.json: a frontier that
        // must hash to the root of a checkpoint signed by the key.
        let base: LogBase?
        var baseCheckpoint: Checkpoint? = nil
        do { base = try LogBase.read(dir) } catch {
            report.failure = AuditVerifyFailure(kind: .corrupt, message: error.description)
            return report
        }
        do { baseCheckpoint = try base?.verify(publicKey: publicKey) } catch {
            report.failure = AuditVerifyFailure(kind: .badSignature, message: error.description)
            return report
        }
        let origin = base?.size ?? 0
        report.origin = origin
        report.latestCheckpoint = baseCheckpoint
        var tree = base.map { MerkleTree(base: $0.frontier) } ?? MerkleTree()
        var seqs: [UInt64?] = []
        var summary = LogReader.Summary()
        summary.entries = origin
        func readEntries(from start: UInt64) -> AuditVerifyFailure? {
            do {
                summary = try LogReader.scan(dir, origin: origin, from: start) { _, payload in
                    seqs.append(LogReader.seq(of: payload))
                    tree.append(leafHash: MerkleHash.leaf(payload))
                    if let r = recovery(payload) { report.recoveries.append(r) }
                    return true
                }
            } catch {
                return AuditVerifyFailure(kind: .missing, message: error.description)
            }
            return nil
        }
        if let f = readEntries(from: origin) {
            report.failure = f
            return report
        }
        // The checkpoint files are read after the entries: a daemon writing the folder meanwhile
        // may have signed checkpoints over entries the scan has not seen, so read on until the
        // checkpoints read are behind the entries (at once, for a copy). What still ends past
        // the entries after that is a real cut, reported below.
        var cps: (notes: [String], validLength: Int, corrupt: String?) = ([], 0, nil)
        var head: (exists: Bool, notes: [(slot: Int, note: String)]) = (false, [])
        var checkpointsUnreadable: AuditError? = nil
        for _ in 0..<100 {
            do {
                cps = try LogReader.checkpoints(dir)
                head = try CheckpointHead.read(dir)
            } catch {
                checkpointsUnreadable = error
                break
            }
            let sizes = (cps.notes.suffix(1) + head.notes.map(\.note)).compactMap { unsignedSize($0) }
            guard summary.issue == nil, let newest = sizes.max(), newest > tree.size else { break }
            let before = tree.size
            if let f = readEntries(from: before) {
                report.failure = f
                return report
            }
            if tree.size == before { break }
        }
        report.entries = summary.entries
        report.tornTailBytes = summary.tornBytes

        // Entry-level damage first: it places the failure at an entry.
        if let f = sequenceFailure(seqs, origin: origin) {
            report.failure = f
            return report
        }
        switch summary.issue {
        case .segmentGap(let name, let expected, let found)?:
            report.failure = AuditVerifyFailure(
                kind: found > expected ? .missing : .reordered, entryIndex: expected,
                message: "segment \(name) starts at entry \(found) but \(expected) entries precede it")
            return report
        case .corrupt(let name, let offset, let index, let reason)?:
            report.failure = AuditVerifyFailure(kind: .corrupt, entryIndex: index,
                                                message: "\(name) at byte \(offset): \(reason)")
            return report
        case nil:
            break
        }

        if let checkpointsUnreadable {
            report.failure = AuditVerifyFailure(kind: .corrupt, message: checkpointsUnreadable.description)
            return report
        }
        var previous: Checkpoint? = nil
        for (k, note) in cps.notes.enumerated() {
            report.checkpoints = k + 1
            let cp: Checkpoint
            do {
                cp = try Checkpoint(signedNote: note, verifier: publicKey)
            } catch {
                report.failure = AuditVerifyFailure(kind: .badSignature, checkpointIndex: k, message: error.description)
                return report
            }
            guard cp.origin.utf8.elementsEqual(publicKey.name.utf8) else {
                report.failure = AuditVerifyFailure(kind: .badSignature, checkpointIndex: k,
                                                    message: "checkpoint is for log \"\(cp.origin)\", not \"\(publicKey.name)\"")
                return report
            }
            if cp.size < origin {
                // Its entries are archived: the archive holding them checks its root.
                if let p = previous, cp.size < p.size {
                    report.failure = AuditVerifyFailure(kind: .inconsistentCheckpoints, entryIndex: cp.size, checkpointIndex: k,
                                                        message: "checkpoint size \(cp.size) is below the earlier checkpoint's \(p.size): rolled back")
                    return report
                }
                report.checkpointsBeforeOrigin += 1
                previous = cp
                continue
            }
            let from = previous.map { $0.size < origin } ?? true ? baseCheckpoint : previous
            if let p = previous, cp.size < p.size {
                report.failure = AuditVerifyFailure(kind: .inconsistentCheckpoints, entryIndex: cp.size, checkpointIndex: k,
                                                    message: "checkpoint size \(cp.size) is below the earlier checkpoint's \(p.size): rolled back")
                return report
            }
            if let f = check(cp, previous: from, tree: tree, checkpointIndex: k) {
                report.failure = f
                return report
            }
            previous = cp
            report.latestCheckpoint = cp
        }
        if let corrupt = cps.corrupt {
            report.failure = AuditVerifyFailure(kind: .corrupt, checkpointIndex: cps.notes.count, message: corrupt)
            return report
        }
        // checkpoint.head: the newest checkpoint, rewritten after every batch (two slots; a torn
        // slot is what a crash mid-write leaves and is skipped).
        report.headExists = head.exists
        for h in head.notes {
            let cp: Checkpoint
            do { cp = try Checkpoint(signedNote: h.note, verifier: publicKey) } catch {
                report.failure = AuditVerifyFailure(kind: .badSignature, message: "\(CheckpointHead.fileName) slot \(h.slot): \(error.description)")
                return report
            }
            guard cp.origin.utf8.elementsEqual(publicKey.name.utf8) else {
                report.failure = AuditVerifyFailure(kind: .badSignature,
                                                    message: "\(CheckpointHead.fileName) slot \(h.slot) is for log \"\(cp.origin)\", not \"\(publicKey.name)\"")
                return report
            }
            if cp.size < origin {
                report.failure = AuditVerifyFailure(kind: .inconsistentCheckpoints, entryIndex: cp.size,
                                                    message: "\(CheckpointHead.fileName) slot \(h.slot) is at size \(cp.size), before the folder's base (\(origin)): rolled back")
                return report
            }
            if let f = check(cp, previous: nil, tree: tree, checkpointIndex: nil) {
                report.failure = AuditVerifyFailure(kind: f.kind, entryIndex: f.entryIndex,
                                                    message: "\(CheckpointHead.fileName) slot \(h.slot): " + f.message)
                return report
            }
            if cp.size > report.latestCheckpoint?.size ?? 0 || report.latestCheckpoint == nil { report.latestCheckpoint = cp }
        }
        for (a, note) in anchors.enumerated() {
            let cp: Checkpoint
            do { cp = try Checkpoint(signedNote: note, ofLog: publicKey) } catch {
                report.failure = AuditVerifyFailure(kind: .badSignature, message: "anchor #\(a): \(error.description)")
                return report
            }
            if cp.size < origin {
                report.anchorsBeforeOrigin += 1
                continue
            }
            if let f = check(cp, previous: nil, tree: tree, checkpointIndex: nil) {
                report.failure = AuditVerifyFailure(kind: f.kind, entryIndex: f.entryIndex,
                                                    message: "anchor #\(a): " + f.message)
                return report
            }
        }
        if let f = uncoveredFailure(report, history: cps.notes.count, checkpointsFile: FileSystem.exists(dir + "/" + LogReader.checkpointFile),
                                    lastSegmentFirst: summary.lastSegment.flatMap { SegmentName.firstIndex(of: $0.name) } ?? 0) {
            report.failure = f
            return report
        }
        return report
    }

    /// The size a note states, its signature unchecked (nil when it is not a checkpoint).
    private static func unsignedSize(_ note: String) -> UInt64? {
        let lines = note.utf8.split(separator: 0x0A, maxSplits: 2, omittingEmptySubsequences: false)
        guard lines.count >= 2 else { return nil }
        return parseCanonicalDecimal(lines[1])
    }

    /// Entries no checkpoint covers are legitimate only as what a crash leaves: the writer signs
    /// a checkpoint into `checkpoint.head` after every batch of at most `AuditWriter.maxBatch`
    /// entries, a batch never spans segments, and a new log starts with the empty tree's
    /// checkpoint in `checkpoints.log`.
    private static func uncoveredFailure(_ report: AuditVerifyReport, history: Int, checkpointsFile: Bool,
                                         lastSegmentFirst: UInt64) -> AuditVerifyFailure? {
        guard report.entries > report.origin else { return nil }
        guard history > 0 else {
            let file = checkpointsFile ? "holds no checkpoint" : "is missing"
            return AuditVerifyFailure(kind: .uncovered, entryIndex: report.origin,
                                      message: "checkpoints.log \(file) but the log has \(report.entries) entries and a log starts with a checkpoint: the history of checkpoints was removed (see custos audit recover)")
        }
        let covered = report.latestCheckpoint?.size ?? 0
        let uncovered = report.entries - covered
        guard uncovered > 0 else { return nil }
        let crashLeftThem = report.headExists && uncovered <= UInt64(AuditWriter.maxBatch) && covered >= lastSegmentFirst
        guard !crashLeftThem else { return nil }
        let why = report.headExists
            ? "more than a crash leaves (one batch of at most \(AuditWriter.maxBatch) entries in the last segment)"
            : "and \(CheckpointHead.fileName), which covers every acknowledged entry, is missing"
        return AuditVerifyFailure(kind: .uncovered, entryIndex: covered,
                                  message: "entries \(covered)..<\(report.entries) follow the newest checkpoint, \(why): checkpoints were removed, or a custos that signed less often wrote the log (see custos audit recover)")
    }

    /// The entry if it is one `custos audit recover` wrote. Canonical JSON spells the member one
    /// way, so a byte search finds every candidate; the parse rules out a context value that
    /// merely looks like it.
    private static func recovery(_ payload: UnsafeRawBufferPointer) -> AuditEntry? {
        guard AuditQuery.contains(payload, recoveryNeedle), let e = try? AuditEntry(canonicalJSON: payload), e.method.utf8.elementsEqual(AuditRecovery.method.utf8) else {
            return nil
        }
        return e
    }

    /// The end of the caller object, then the method: `}` is rare in an entry, so the search
    /// stops at few places.
    private static let recoveryNeedle = Array("},\"method\":\"\(AuditRecovery.method)\",".utf8)

    /// The first entry whose seq is not its position. If the expected seq shows up later the
    /// entries were moved; if it never does, it was removed.
    private static func sequenceFailure(_ seqs: [UInt64?], origin: UInt64) -> AuditVerifyFailure? {
        for (i, s) in seqs.enumerated() {
            let index = origin + UInt64(i)
            guard let s else {
                return AuditVerifyFailure(kind: .corrupt, entryIndex: index,
                                          message: "entry does not start with a seq member: not a canonical audit entry")
            }
            if s == index { continue }
            let later = seqs[(i + 1)...].contains(index)
            if later || s < index {
                return AuditVerifyFailure(kind: .reordered, entryIndex: index,
                                          message: "entry at position \(index) carries seq \(s)")
            }
            return AuditVerifyFailure(kind: .missing, entryIndex: index,
                                      message: "entries \(index)..<\(s) are missing (next entry carries seq \(s))")
        }
        return nil
    }

    private static func check(_ cp: Checkpoint, previous: Checkpoint?, tree: MerkleTree,
                              checkpointIndex k: Int?) -> AuditVerifyFailure? {
        if let p = previous, cp.size < p.size {
            return AuditVerifyFailure(kind: .inconsistentCheckpoints, entryIndex: cp.size, checkpointIndex: k,
                                      message: "checkpoint size \(cp.size) is below the earlier checkpoint's \(p.size): rolled back")
        }
        if cp.size < tree.base {
            return AuditVerifyFailure(kind: .inconsistentCheckpoints, entryIndex: cp.size, checkpointIndex: k,
                                      message: "checkpoint size \(cp.size) is before the folder's base (\(tree.base))")
        }
        if cp.size > tree.size {
            return AuditVerifyFailure(kind: .truncated, entryIndex: tree.size, checkpointIndex: k,
                                      message: "the log has \(tree.size) entries but a signed checkpoint covers \(cp.size)")
        }
        if tree.root(size: cp.size) != cp.root {
            let from = previous?.size ?? 0
            return AuditVerifyFailure(kind: .corrupt, entryIndex: from, checkpointIndex: k,
                                      message: "entries \(from)..<\(cp.size) do not hash to the root signed at size \(cp.size)")
        }
        if let p = previous, p.size > 0, p.size >= tree.base {
            let proof = tree.consistencyProof(from: p.size, to: cp.size) ?? []
            if !MerkleVerify.consistency(size1: p.size, size2: cp.size, root1: p.root, root2: cp.root, proof: proof) {
                return AuditVerifyFailure(kind: .inconsistentCheckpoints, entryIndex: p.size, checkpointIndex: k,
                                          message: "checkpoint at size \(cp.size) does not extend the one at size \(p.size)")
            }
        }
        return nil
    }
}
