import AuditLog

/// `custos audit checkpoint`: the newest signed checkpoint, for copying off the machine. Those
/// copies (anchors) are what catches a root attacker who cuts the log and its checkpoints.
enum AuditCheckpointCommand {
    static let spec = CommandSpec(
        name: "audit",
        summary: "Print the newest signed checkpoint note of the audit log, to store elsewhere as an anchor.",
        usage: "custos audit checkpoint [--state DIR]",
        options: [AuditOptions.state],
        details: """
        Prints the C2SP signed note (origin, size, base64 root, blank line, signature line)
        exactly as stored. Save it off the machine (another host, WORM storage, a witness) at
        regular intervals; later, 'custos audit verify --anchor FILE' fails unless the log still
        extends it. It is printed as found: verify checks it.
        Exit status: 0, 1 when the log has no checkpoint yet, 2 when the log cannot be read.
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        guard AuditOptions.operands(args).isEmpty else { throw UsageError(message: "usage: \(spec.usage)") }
        let dir = try AuditOptions.existingLogDirectory(args)
        let note: String?
        do { note = try AuditState.latestCheckpointNote(logDirectory: dir) } catch { throw UsageError(message: error.description) }
        guard let note else {
            IO.printError("\(dir) has no signed checkpoint yet")
            return 1
        }
        let out = StdoutBuffer()
        out.write(note)
        out.flush()
        return 0
    }
}
