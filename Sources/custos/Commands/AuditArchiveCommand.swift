import AuditLog

/// `custos audit archive`: copies sealed segments, with the checkpoints that cover them, to an
/// archive folder where each range verifies on its own, and prunes the live folder only of
/// what is archived (docs/audit.md, "Archival and retention").
enum AuditArchiveCommand {
    static let spec = CommandSpec(
        name: "audit",
        summary: "Archive sealed audit segments with their covering checkpoint; optionally prune archived ones from the live folder.",
        usage: "custos audit archive --state DIR --to ARCHIVE [--prune-after DAYS] [--pubkey FILE]",
        options: [
            AuditOptions.state,
            OptionSpec(name: "to", valueName: "ARCHIVE", help: "Archive folder (created when missing; one per log). Each run adds a folder <first>-<end> that 'custos audit verify --state' checks on its own."),
            OptionSpec(name: "prune-after", valueName: "DAYS", help: "Then remove from the live folder the archived segments whose last entry is older than DAYS days (0: as soon as archived). Without it nothing is removed."),
            OptionSpec(name: "pubkey", valueName: "FILE", help: "The log's verifier key line; default the state folder's verifier.key."),
        ],
        details: """
        Safe while the daemon runs: only sealed segments are read (the daemon seals one when it
        passes --audit-segment-bytes or --audit-segment-seconds), and each sealed segment ends
        where the daemon put a signed checkpoint into the history. A range is copied, verified on
        its own (entries, roots, signatures), and only then given its final name.

        Retention never removes a segment that is not archived: a segment leaves the live folder
        only when the archived copy still matches its manifest (SHA-256), the live file is the
        same bytes, and its range's last entry is older than --prune-after. The live folder then
        starts at base.json (the Merkle frontier and signed checkpoint where the archive ends),
        and 'custos audit verify' on it checks from there.

        Exit status: 0 done (also when nothing was new), 2 usage or I/O error, 3 the log or the
        archive does not add up (nothing is archived or removed then; run 'custos audit verify').
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        guard AuditOptions.operands(args).isEmpty else { throw UsageError(message: "usage: \(spec.usage)") }
        let dir = try AuditOptions.existingLogDirectory(args)
        let root = try args.required("to")
        let state = AuditOptions.stateDirectory(args)
        var keepMs: Int64? = nil
        if let text = args.value("prune-after") {
            guard let days = Int64(text), days >= 0, days <= 100 * 366 else {
                throw UsageError(message: "--prune-after expects a whole number of days (0 or more), got '\(text)'")
            }
            keepMs = days * 86_400_000
        }
        let key: NoteVerifierKey
        if let file = args.value("pubkey") {
            key = try AuditOptions.publicKey(file: file)
        } else {
            do { key = try AuditState.readVerifierKey(path: AuditState.verifierKeyPath(state: state)) } catch {
                throw UsageError(message: "\(error.description); pass the log's verifier key with --pubkey FILE")
            }
        }
        let report: AuditArchive.Report
        do {
            report = try AuditArchive.run(logDirectory: dir, archiveRoot: root, publicKey: key, pruneOlderThanMs: keepMs)
        } catch {
            IO.printError(error.description)
            switch error {
            case .io: return 2
            default: return 3
            }
        }
        if let r = report.archived {
            print("archived entries \(r.lowerBound)..<\(r.upperBound) (\(report.archivedSegments) segment\(report.archivedSegments == 1 ? "" : "s")) to \(report.archiveFolder ?? root)")
        } else {
            print("nothing new to archive: the archive holds entries before \(report.archivedThrough)")
        }
        if let p = report.pruned {
            print("pruned entries \(p.lowerBound)..<\(p.upperBound) (\(report.prunedSegments) segment\(report.prunedSegments == 1 ? "" : "s")) from \(dir); it now starts at entry \(p.upperBound)")
        }
        if report.pendingSealedSegments > 0 {
            print("note: \(report.pendingSealedSegments) sealed segment(s) end where the history has no checkpoint (written by an older custos); they are archived with the next sealed segment")
        }
        return 0
    }
}
