/// `custos audit SUBCOMMAND`: offline, read-only tools over a state folder's audit log, usable
/// by an auditor with only the folder and the log's public key (docs/audit.md).
enum AuditCommand {
    typealias Subcommand = (name: String, summary: String, spec: CommandSpec, run: (ParsedArguments) throws -> Int32)

    /// `generate` is left out of the group help on purpose: it writes, and exists for tests and demos.
    static var subcommands: [Subcommand] { [
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
    ] }

    static let groupSpec: CommandSpec = {
        var details = "Subcommands:\n"
        let shown = subcommands.filter { !$0.summary.isEmpty }
        let width = shown.map(\.name.count).max() ?? 0
        for s in shown {
            details += "  " + s.name + String(repeating: " ", count: width - s.name.count + 2) + s.summary + "\n"
        }
        details += """

        Run 'custos audit SUBCOMMAND --help' for its options and exit statuses. All but recover
        and archive only read; recover appends one entry and a checkpoint, with the daemon
        stopped; archive copies sealed segments out and, when asked, prunes archived ones. The
        unlisted 'custos audit generate' writes synthetic entries, for tests and demos. The
        state folder defaults to ./state, as for 'custos serve'; the log lives in <state>/audit/.
        The format and an auditor's walkthrough: docs/audit.md.
        """
        return CommandSpec(name: "audit", summary: "Verify, query and prove entries of the tamper-evident audit log (offline).",
                           usage: "custos audit SUBCOMMAND [OPTIONS]", options: [], details: details)
    }()

    /// main.swift parses options against this spec before `run`, and prints its help for
    /// `--help`; picking the subcommand's spec from argv here gives each subcommand its own
    /// options, errors and help without a second parser.
    static var spec: CommandSpec {
        let argv = CommandLine.arguments
        if argv.count > 2, argv[1] == "audit", let sub = subcommands.first(where: { $0.name == argv[2] }) {
            return sub.spec
        }
        return groupSpec
    }

    static func run(_ args: ParsedArguments) throws -> Int32 {
        guard let name = args.positionals.first else {
            IO.printError("missing subcommand\n\n" + groupSpec.help)
            return 2
        }
        guard let sub = subcommands.first(where: { $0.name == name }) else {
            throw UsageError(message: "unknown audit subcommand '\(name)' (see 'custos audit --help')")
        }
        return try sub.run(args)
    }
}
