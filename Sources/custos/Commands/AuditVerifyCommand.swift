import AuditLog
import Foundation

/// `custos audit verify`: the offline check of a whole log, one exit status per kind of damage
/// so scripts and monitoring can tell a failing disk from an attack without parsing text.
enum AuditVerifyCommand {
    static let spec = CommandSpec(
        name: "audit",
        summary: "Verify a state folder's audit log offline: entries, Merkle roots, checkpoint signatures and consistency.",
        usage: "custos audit verify [--state DIR]... [--pubkey FILE]... [--anchor FILE]... [--witness URI|FILE]",
        options: [
            AuditOptions.state,
            OptionSpec(name: "pubkey", valueName: "FILE",
                       help: "The log's verifier key line (from 'custos audit pubkey'), obtained out of band. Without it the key file in the state folder is used, which proves only that the folder is self-consistent."),
            OptionSpec(name: "anchor", valueName: "FILE",
                       help: "A signed checkpoint copied off the machine earlier; the log must still extend it. Repeatable."),
            OptionSpec(name: "witness", valueName: "URI|FILE",
                       help: "The checkpoints a shared state store witnessed (docs/fleet.md): its postgres:// URI, or a dump from 'custos audit witness'. The log must extend every one signed by its key."),
        ],
        details: """
        Recomputes the RFC 9162 Merkle tree from every entry, checks that each entry sits at its
        seq, that every checkpoint is signed by the key, that its root is the root of the entries
        at its size, and that each checkpoint extends the one before it (consistency proof).
        Prints 'OK: N entries, M checkpoints, latest checkpoint size S', or 'FAIL: CLASS at entry
        I: reason' for the first problem in log order (the entry is omitted when the damage is
        in a checkpoint alone).

        Exit status:
          0  the log verified
          2  usage error, or the state folder or key cannot be read
          3  corrupt: bytes of an entry or checkpoint changed (checksum or root mismatch)
          4  missing: an entry or segment was removed from the middle of the log
          5  reordered: entries are out of place (swapped, moved or duplicated)
          6  truncated: the log ends before the size a signed checkpoint or anchor covers
          7  bad-signature: a checkpoint is not signed by the given key
          8  inconsistent-checkpoints: a checkpoint was rolled back or does not extend an earlier one
          9  uncovered: entries no checkpoint covers beyond what a crash leaves (checkpoints.log
             missing or empty while entries exist, or more than one batch of 1024 entries after
             the newest checkpoint): checkpoints were removed
         10  forked: with --witness, two checkpoints of one size with different roots, both
             signed by the key (in the witness, or a witnessed one against the log): rewritten

        The daemon signs a checkpoint after every batch it writes, so after a crash at most one
        batch (1024 entries, in the last segment) can follow the newest checkpoint: those are
        reported with a warning (never acknowledged; the daemon cuts them on its next start).
        A torn final record is reported and not an error. Entries that 'custos audit recover'
        accepted are listed. Deleting the newest entries together with the checkpoints that
        cover them is only caught with --anchor or --witness: with --witness a log shorter than
        a witnessed checkpoint is 'truncated' (rolled back together with its checkpoints).

        Several --state (a fleet, one folder per daemon; docs/fleet.md): each log is verified in
        turn under a line '== DIR', with the --pubkey of the same position (one per --state, or
        none) and the same --witness; --anchor is for one log only. The exit status is that of
        the first log that fails, else 0.
        """)

    static func exitStatus(_ kind: AuditFailureKind) -> Int32 {
        switch kind {
        case .corrupt: 3
        case .missing: 4
        case .reordered: 5
        case .truncated: 6
        case .badSignature: 7
        case .inconsistentCheckpoints: 8
        case .uncovered: 9
        case .forked: 10
        }
    }

    /// The class names printed after FAIL, one word each so scripts can match them.
    static func label(_ kind: AuditFailureKind) -> String {
        switch kind {
        case .corrupt: "corrupt"
        case .missing: "missing"
        case .reordered: "reordered"
        case .truncated: "truncated"
        case .badSignature: "bad-signature"
        case .inconsistentCheckpoints: "inconsistent-checkpoints"
        case .uncovered: "uncovered"
        case .forked: "forked"
        }
    }

    static func run(_ args: ParsedArguments) throws -> Int32 {
        guard AuditOptions.operands(args).isEmpty else { throw UsageError(message: "usage: \(spec.usage)") }
        let states = args.all("state")
        guard states.count > 1 else {
            return try verify(state: AuditOptions.stateDirectory(args), pubkey: args.value("pubkey"),
                              anchors: try args.all("anchor").map { try IO.readText($0) }, witness: args.value("witness"))
        }
        // A fleet (docs/fleet.md): one log per daemon, each with its own key. An anchor belongs
        // to one log, so it is given with that log alone.
        guard args.all("anchor").isEmpty else {
            throw UsageError(message: "--anchor applies to one log: verify that state folder on its own")
        }
        let keys = args.all("pubkey")
        guard keys.isEmpty || keys.count == states.count else {
            throw UsageError(message: "with several --state, give one --pubkey per --state, in the same order (or none)")
        }
        var status: Int32 = 0
        for (i, state) in states.enumerated() {
            let out = StdoutBuffer()
            out.write("== \(state)\n")
            out.flush()
            let s = try verify(state: state, pubkey: keys.isEmpty ? nil : keys[i], anchors: [], witness: args.value("witness"))
            if status == 0 { status = s }
        }
        return status
    }

    /// Verifies the log of one state folder; the exit status of its first failure, else 0.
    static func verify(state: String, pubkey: String?, anchors: [String], witness witnessSource: String?) throws -> Int32 {
        let dir = AuditState.logDirectory(state: state)
        guard IO.isDirectory(dir) else {
            throw UsageError(message: "no audit log at \(dir): pass the daemon's state folder with --state DIR")
        }
        let key: NoteVerifierKey
        if let file = pubkey {
            key = try AuditOptions.publicKey(file: file)
        } else {
            let path = AuditState.verifierKeyPath(state: state)
            do { key = try AuditState.readVerifierKey(path: path) } catch {
                throw UsageError(message: "\(error.description); pass the log's verifier key with --pubkey FILE")
            }
            IO.printError("warning: no --pubkey given, using \(path) from the state folder itself: this shows the folder is consistent, not that it is the original log")
        }
        // The verifier reports any failure to read as damage; a permission problem is the
        // user's to fix (exit 2), not evidence of tampering.
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else {
            throw UsageError(message: "\(dir) cannot be listed: run verify as a user who can read the whole audit folder")
        }
        for name in names where name.hasPrefix("segment-") || name == "checkpoints.log" || name == "base.json" {
            guard FileManager.default.isReadableFile(atPath: dir + "/" + name) else {
                throw UsageError(message: "\(dir)/\(name) cannot be read: run verify as a user who can read the whole audit folder")
            }
        }

        let witness = try witnessSource.map { try AuditWitnessCommand.witnessed($0, key: key) }
        var report = AuditVerifier.verify(stateDirectory: dir, publicKey: key, anchors: anchors)
        var witnessReport: WitnessReport? = nil
        if report.failure == nil, let witness {
            let w = AuditWitness.check(logDirectory: dir, publicKey: key, witnessed: witness)
            witnessReport = w
            if let f = w.failure {
                report.failure = f
            } else if let u = w.unsigned.first {
                // Whoever may write the table could add it; the log's key did not sign it.
                report.failure = AuditVerifyFailure(kind: .badSignature, message: "witness: \(u)")
            }
        }
        let out = StdoutBuffer()
        defer { out.flush() }
        if let failure = report.failure {
            var line = "FAIL: \(label(failure.kind))"
            if let i = failure.entryIndex { line += " at entry \(i)" }
            if let k = failure.checkpointIndex { line += " (checkpoint #\(k) in checkpoints.log)" }
            out.write(line + ": \(failure.message)\n")
            return exitStatus(failure.kind)
        }
        let latest = report.latestCheckpoint.map { "latest checkpoint size \($0.size)" } ?? "no checkpoint yet"
        if report.origin > 0 {
            out.write("OK: entries \(report.origin)..<\(report.entries), \(report.checkpoints) checkpoints, \(latest)\n")
            out.write("note: the folder starts at entry \(report.origin) (base.json, signed): the entries before it are in an archive, verified there\(report.checkpointsBeforeOrigin > 0 ? "; \(report.checkpointsBeforeOrigin) older checkpoints had their signatures checked" : "")\n")
        } else {
            out.write("OK: \(report.entries) entries, \(report.checkpoints) checkpoints, \(latest)\n")
        }
        if report.entriesAfterLatestCheckpoint > 0 {
            let n = report.entriesAfterLatestCheckpoint
            out.write("warning: the last \(n) entries are not covered by a signed checkpoint (seq \(report.entries - n)..<\(report.entries)): only their framing and order were checked. A daemon signs one right after each batch it writes: either it is writing them now, or it stopped between their write and their checkpoint (they were never acknowledged, and it cuts them on its next start), or their checkpoint was removed.\n")
        }
        for r in report.recoveries {
            out.write("recovery: entry \(r.seq) at \(r.time.rfc3339) by \(r.principal): \(r.reasons.joined(separator: "; "))\n")
        }
        if report.tornTailBytes > 0 {
            out.write("note: the last segment ends with a torn record of \(report.tornTailBytes) bytes (never acknowledged; the daemon cuts it on its next start)\n")
        }
        if !anchors.isEmpty {
            let checked = anchors.count - report.anchorsBeforeOrigin
            out.write("anchors: \(checked) checked, the log extends each\n")
            if report.anchorsBeforeOrigin > 0 {
                out.write("note: \(report.anchorsBeforeOrigin) anchor(s) predate entry \(report.origin), where this folder starts: check them against the archive that holds their entries\n")
            }
        }
        if let w = witnessReport {
            out.write("witness: \(w.checked) checkpoints of this log checked, the log extends each\(w.newest.map { " (newest size \($0.size))" } ?? "")\n")
        }
        return 0
    }
}
