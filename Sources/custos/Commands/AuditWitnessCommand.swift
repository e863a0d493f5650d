import AuditLog
import CustosJSON
import FleetStore
import Foundation

/// `custos audit witness`: prints the checkpoints a shared state store witnessed, one JSON
/// object a line, for keeping off the database (an auditor's dump) and for `verify --witness
/// FILE` to read without reaching the database.
enum AuditWitnessCommand {
    static let spec = CommandSpec(
        name: "audit",
        summary: "Print the signed checkpoints a shared state store witnessed (docs/fleet.md).",
        usage: "custos audit witness --store URI [--log KEY]",
        options: [
            OptionSpec(name: "store", valueName: "URI",
                       help: "The shared store, a postgres:// URI as in the daemons' state.store; the password comes from PGPASSFILE or ~/.pgpass, never the URI."),
            OptionSpec(name: "log", valueName: "KEY",
                       help: "Only this log: its verifier key line (custos audit pubkey), as the witness names logs."),
        ],
        details: """
        One line per witnessed checkpoint, ordered by log and size:
          {"log", "size", "root", "daemon", "published_at", "note"}
        `note` is the signed checkpoint as the daemon published it; `custos audit verify
        --witness FILE` checks each against the log's key, so the dump needs no trust in whoever
        kept it. Exit status: 0, 2 usage error or the store cannot be read.
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        guard AuditOptions.operands(args).isEmpty, let uri = args.value("store") else {
            throw UsageError(message: "usage: \(spec.usage)")
        }
        let rows: [WitnessedCheckpoint]
        do { rows = try FleetWitness.read(conninfo: uri, log: args.value("log")) } catch {
            throw UsageError(message: "the witness table cannot be read: \(error.description)")
        }
        let out = StdoutBuffer()
        defer { out.flush() }
        for r in rows { out.write(r.json.serialized + "\n") }
        return 0
    }

    /// The witnessed checkpoints of `key`'s log: from the store when `source` is a postgres://
    /// URI, else from a file `custos audit witness` wrote.
    static func witnessed(_ source: String, key: NoteVerifierKey) throws -> [WitnessNote] {
        if source.hasPrefix("postgres://") || source.hasPrefix("postgresql://") {
            do {
                return try FleetWitness.read(conninfo: source, log: key.text).map {
                    WitnessNote(note: $0.note, source: "witness size \($0.size) from \($0.daemon) at \($0.publishedAt)")
                }
            } catch {
                throw UsageError(message: "the witness table cannot be read: \(error.description)")
            }
        }
        let text = try IO.readText(source)
        var notes: [WitnessNote] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            guard let json = try? JSON.parse(Array(line.utf8)), let w = WitnessedCheckpoint(json: json) else {
                throw UsageError(message: "\(source):\(i + 1): not a line of `custos audit witness`")
            }
            guard w.log.utf8.elementsEqual(key.text.utf8) else { continue }
            notes.append(WitnessNote(note: w.note, source: "\(source):\(i + 1) (size \(w.size) from \(w.daemon) at \(w.publishedAt))"))
        }
        return notes
    }
}
