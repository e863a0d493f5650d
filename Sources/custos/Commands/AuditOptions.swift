import Foundation
import AuditLog

/// Options and lookups the audit subcommands share, so they agree on defaults and messages.
enum AuditOptions {
    static let state = OptionSpec(name: "state", valueName: "DIR",
                                  help: "State folder (default ./state, as for 'custos serve'); the log is in DIR/audit/.")

    static func stateDirectory(_ args: ParsedArguments) -> String {
        args.value("state") ?? AuditState.defaultStateDirectory
    }

    /// The log folder of an existing state folder; a missing one is the user's error, not damage.
    static func existingLogDirectory(_ args: ParsedArguments) throws -> String {
        let state = stateDirectory(args)
        let dir = AuditState.logDirectory(state: state)
        guard IO.isDirectory(dir) else {
            throw UsageError(message: "no audit log at \(dir): pass the daemon's state folder with --state DIR")
        }
        return dir
    }

    /// The verifier key from `--pubkey FILE` (a file holding the verifier key line).
    static func publicKey(file: String) throws -> NoteVerifierKey {
        do { return try NoteVerifierKey(parsing: try IO.readText(file).trimmingCharacters(in: .whitespacesAndNewlines)) } catch let e as AuditError {
            throw UsageError(message: "\(file): \(e.description)")
        }
    }

    /// The subcommand's positionals after its name.
    static func operands(_ args: ParsedArguments) -> ArraySlice<String> { args.positionals.dropFirst() }

    static func parseTime(_ option: String, _ args: ParsedArguments) throws -> AuditTimestamp? {
        guard let text = args.value(option) else { return nil }
        guard let t = AuditTimestamp(rfc3339: text) else {
            throw UsageError(message: "--\(option) expects an RFC 3339 UTC time such as 2026-01-31T08:00:00Z or 2026-01-31T08:00:00.250Z, got '\(text)'")
        }
        return t
    }
}
