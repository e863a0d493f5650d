/// A signed checkpoint someone outside the node saw: the witness table of a shared state store
/// (docs/fleet.md) or an anchor. Kept apart from the verifier's own checks so the witness is
/// one more source of checkpoints, read the same way wherever it came from.
public struct WitnessNote: Sendable, Hashable {
    /// The signed note as published.
    public var note: String
    /// Where it came from, for messages (`witness row 12 (pdp-02, 2026-03-01T09:00:00.000Z)`).
    public var source: String

    public init(note: String, source: String) {
        self.note = note
        self.source = source
    }
}

/// What the witness says about one log.
public struct WitnessReport: Sendable {
    /// Witnessed checkpoints signed by the log's key, for this log.
    public var checked = 0
    /// The largest of them.
    public var newest: Checkpoint?
    /// Witnessed notes not signed by the key or for another log; `verify` fails on them,
    /// `serve` leaves them out (anyone who may write the table could add them).
    public var unsigned: [String] = []
    /// The first disagreement, nil when the log extends every witnessed checkpoint.
    public var failure: AuditVerifyFailure?
}

/// Compares a log with the checkpoints a witness holds for it.
///
/// What a root attacker on the node cannot hide from a witness: entries and checkpoints rolled
/// back together (a witnessed checkpoint larger than the log: `truncated`), and a rewritten
/// history (two signed checkpoints of one size with different roots, in the witness or between
/// the witness and the log's own entries: `forked`). The entries are read once and only the
/// roots at the witnessed sizes are kept, in memory logarithmic in the log.
public enum AuditWitness {
    public static func check(logDirectory dir: String, publicKey: NoteVerifierKey,
                             witnessed: [WitnessNote]) -> WitnessReport {
        var report = WitnessReport()
        var bySize: [UInt64: (Checkpoint, String)] = [:]
        for w in witnessed {
            let cp: Checkpoint
            do { cp = try Checkpoint(signedNote: w.note, verifier: publicKey) } catch {
                report.unsigned.append("\(w.source): \(error.description)")
                continue
            }
            guard cp.origin.utf8.elementsEqual(publicKey.name.utf8) else {
                report.unsigned.append("\(w.source): a checkpoint of log \"\(cp.origin)\", not \"\(publicKey.name)\"")
                continue
            }
            report.checked += 1
            if let (other, where0) = bySize[cp.size], other.root != cp.root, report.failure == nil {
                report.failure = AuditVerifyFailure(kind: .forked, entryIndex: nil,
                    message: "the witness holds two checkpoints of size \(cp.size) with different roots (\(where0) and \(w.source)), both signed by the log's key: the log was rewritten after it was witnessed")
            }
            if bySize[cp.size] == nil { bySize[cp.size] = (cp, w.source) }
            if cp.size >= report.newest?.size ?? 0 { report.newest = cp }
        }
        if report.failure != nil || bySize.isEmpty { return report }

        // A folder whose older entries were archived starts at its base.json: the tree goes on
        // from the base's frontier (signed by the key), not from an empty one. Checkpoints the
        // witness saw before that start are the archive's to answer for (`custos audit verify`
        // on the archive); they are not compared here.
        let base: LogBase?
        do {
            base = try LogBase.read(dir)
            _ = try base?.verify(publicKey: publicKey)
        } catch {
            report.failure = AuditVerifyFailure(kind: .corrupt, message: error.description)
            return report
        }
        var frontier = base?.frontier ?? MerkleFrontier()
        let origin = frontier.size
        var roots: [UInt64: SHA256Digest] = [origin: frontier.root]
        let summary: LogReader.Summary
        do {
            summary = try LogReader.scan(dir, origin: origin) { _, payload in
                frontier.append(leafHash: MerkleHash.leaf(payload))
                if bySize[frontier.size] != nil { roots[frontier.size] = frontier.root }
                return true
            }
        } catch {
            report.failure = AuditVerifyFailure(kind: .missing, message: error.description)
            return report
        }
        if summary.issue != nil {
            report.failure = AuditVerifyFailure(kind: .corrupt, message: "the log cannot be read to the end (run verify without --witness to see why)")
            return report
        }
        for size in bySize.keys.sorted() where size >= origin {
            let (cp, source) = bySize[size]!
            guard let root = roots[size] else {
                report.failure = AuditVerifyFailure(kind: .truncated, entryIndex: frontier.size,
                    message: "the log has \(frontier.size) entries but the witness saw a checkpoint of size \(size) (\(source)): entries were rolled back together with their checkpoints")
                return report
            }
            if root != cp.root {
                report.failure = AuditVerifyFailure(kind: .forked, entryIndex: nil,
                    message: "the first \(size) entries do not hash to the root the witness saw signed at that size (\(source)): the log was rewritten after it was witnessed")
                return report
            }
        }
        return report
    }
}

extension AuditVerifyFailure {
    /// For checks made beside the verifier's own (the witness, in the command line tool).
    public init(kind: AuditFailureKind, message: String) {
        self.init(kind: kind, entryIndex: nil, checkpointIndex: nil, message: message)
    }
}
