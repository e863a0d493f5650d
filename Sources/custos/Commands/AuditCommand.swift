/// `custos audit SUBCOMMAND`: offline, read-only tools over a state folder's audit log, usable
/// by an auditor with only the folder and the log's public key (docs/audit.md).
enum AuditCommand {
    /// `generate` is left out of the group help on purpose: it writes, and exists for tests and demos.
    static var group: SubcommandGroup { SubcommandGroup(name: "audit", subcommands: [
        ("verify", "Recompute the tree, check every checkpoint; exit status names the damage.", AuditVerifyCommand.spec, AuditVerifyCommand.run),
        ("query", "Filter entries; JSON lines or an aligned table.", AuditQueryCommand.spec, AuditQueryCommand.run),
        ("prove", "Print an inclusion proof for one entry against the latest checkpoint.", AuditProveCommand.spec, AuditProveCommand.run),
        ("verify-proof", "Check an inclusion proof with only the verifier key.", AuditVerifyProofCommand.spec, AuditVerifyProofCommand.run),
        ("checkpoint", "Print the newest signed checkpoint, to keep off the machine as an anchor.", AuditCheckpointCommand.spec, AuditCheckpointCommand.run),
        ("pubkey", "Print the verifier key line of the state folder's signing key.", AuditPubkeyCommand.spec, AuditPubkeyCommand.run),
        ("archive", "Copy sealed segments with their checkpoint to an archive; prune archived ones.", AuditArchiveCommand.spec, AuditArchiveCommand.run),
        ("recover", "Accept entries no checkpoint covers, recorded in the log (daemon stopped).", AuditRecoverCommand.spec, AuditRecoverCommand.run),
        ("witness", "Print the checkpoints a shared state store witnessed (fleet mode).", AuditWitnessCommand.spec, AuditWitnessCommand.run),
        ("generate", "", AuditGenerateCommand.spec, AuditGenerateCommand.run),
    ]) }

    static let groupSpec = group.groupSpec(summary: "Verify, query and prove entries of the tamper-evident audit log (offline).", details: """
        Run 'custos audit SUBCOMMAND --help' for its options and exit statuses. All but recover
        and archive only read; recover appends one entry and a checkpoint, with the daemon
        stopped; archive copies sealed segments out and, when asked, prunes archived ones. The
        unlisted 'custos audit generate' writes synthetic entries, for tests and demos. The
        state folder defaults to ./state, as for 'custos serve'; the log lives in <state>/audit/.
        The format and an auditor's walkthrough: docs/audit.md.
        """)

    static var spec: CommandSpec { group.spec(group: groupSpec) }

    static func run(_ args: ParsedArguments) throws -> Int32 { try group.run(args, group: groupSpec) }
}
