import AuditLog

/// `custos audit generate`: synthetic entries through the real writer, so integration tests,
/// benchmarks and demos get logs with the daemon's exact on-disk format without a daemon.
enum AuditGenerateCommand {
    static let spec = CommandSpec(
        name: "audit",
        summary: "For tests and demos only: append synthetic entries to a state folder's audit log.",
        usage: "custos audit generate --state DIR --entries N [--mode off|always] [--start RFC3339] [--key-name NAME] [--checkpoint-every N] [--segment-bytes N]",
        options: [
            OptionSpec(name: "state", valueName: "DIR", help: "State folder (required; created with a new signing key when it has none)."),
            OptionSpec(name: "entries", valueName: "N", help: "Entries to append (required)."),
            OptionSpec(name: "mode", valueName: "off|always", help: "off (default): fsync only at close; always: fsync before each append returns."),
            OptionSpec(name: "start", valueName: "RFC3339", help: "Time of the first new entry (default now); each next one is 1 ms later."),
            OptionSpec(name: "key-name", valueName: "NAME", help: "Key name (log origin) when a new key is created (default custos/<hostname>)."),
            OptionSpec(name: "checkpoint-every", valueName: "N", help: "Add a checkpoint to checkpoints.log after N new entries (default 1024; also every second and at close)."),
            OptionSpec(name: "segment-bytes", valueName: "N", help: "Start a new segment file beyond N bytes (default 64 MiB, at least 4096)."),
        ],
        details: """
        Not for production state folders: it writes decisions nobody made. Entry i (its seq) has
        decision_id d-i, principal Clinician::"c<i mod 7>", action Action::"write" when i mod 3 = 0
        else Action::"read", resource Record::"r<i mod 50>", method policy.update when i mod 10 = 0
        else authorize, decision deny when i mod 4 = 0 else allow, reasons [policy<i mod 5>].
        Identical arguments on an empty folder give identical entries (only the key differs).
        Closes the writer, which signs a final checkpoint covering every entry.
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        guard AuditOptions.operands(args).isEmpty else { throw UsageError(message: "usage: \(spec.usage)") }
        let state = try args.required("state")
        let count = try args.int("entries", default: -1)
        guard count >= 0 else { throw UsageError(message: "--entries N is required and must not be negative") }
        let mode: AuditDurability
        switch args.value("mode") ?? "off" {
        case "off": mode = .off
        case "always": mode = .always
        case let m: throw UsageError(message: "--mode is off or always, got '\(m)'")
        }
        let start = try AuditOptions.parseTime("start", args) ?? .now()
        let every = try args.int("checkpoint-every", default: 1024)
        let segmentBytes = try args.int("segment-bytes", default: 64 << 20)
        guard every > 0, segmentBytes > 0 else { throw UsageError(message: "--checkpoint-every and --segment-bytes must be positive") }

        do {
            let signer = try AuditState.loadOrCreateSigner(state: state, name: args.value("key-name"))
            let dir = AuditState.logDirectory(state: state)
            let writer = try AuditWriter.open(stateDirectory: dir, mode: mode,
                                              checkpointEvery: CheckpointPolicy(entries: every, milliseconds: 1000),
                                              signer: signer, segmentBytes: segmentBytes)
            let first = writer.count
            for k in 0..<count {
                let i = first + UInt64(k)
                try writer.append(entry(i, time: AuditTimestamp(millisecondsSinceEpoch: start.millisecondsSinceEpoch + Int64(k))))
            }
            try writer.close()
            print("appended \(count) entries (seq \(first)..<\(first + UInt64(count))) to \(dir), signed by \(signer.verifierKey.text)")
            return 0
        } catch {
            throw UsageError(message: error.description)
        }
    }

    static func entry(_ i: UInt64, time: AuditTimestamp) -> AuditEntry {
        AuditEntry(
            time: time, decisionID: "d-\(i)",
            caller: AuditCaller(uid: 1000, gid: 1000, pid: 4242, user: "ehr-gateway"),
            method: i % 10 == 0 ? "policy.update" : "authorize",
            principal: "Clinician::\"c\(i % 7)\"",
            action: i % 3 == 0 ? "Action::\"write\"" : "Action::\"read\"",
            resource: "Record::\"r\(i % 50)\"",
            purpose: "treatment", basis: "GDPR-9-2-h",
            decision: i % 4 == 0 ? .deny : .allow,
            reasons: ["policy\(i % 5)"],
            policyRevision: "rev-1",
            requestSHA256: SHA256Digest.hash("synthetic request \(i)").hex)
    }
}
