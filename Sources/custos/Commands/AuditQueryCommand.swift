import AuditLog
import CustosJSON

/// `custos audit query`: filtered reading of the log for reviews (who accessed what, when, why).
enum AuditQueryCommand {
    static let spec = CommandSpec(
        name: "audit",
        summary: "Print the audit entries that match every given filter, oldest first.",
        usage: "custos audit query [--state DIR] [filters] [--limit N] [--format jsonl|table]",
        options: [
            AuditOptions.state,
            OptionSpec(name: "principal", valueName: "P", help: "Exact principal, e.g. 'Clinician::\"alice\"'."),
            OptionSpec(name: "resource", valueName: "R", help: "Exact resource."),
            OptionSpec(name: "action", valueName: "A", help: "Exact action, e.g. 'Action::\"read\"'."),
            OptionSpec(name: "decision", valueName: "allow|deny", help: "Only allowed or only denied entries."),
            OptionSpec(name: "method", valueName: "M", help: "Exact RPC method or operation, e.g. authorize, policy.update."),
            OptionSpec(name: "decision-id", valueName: "ID", help: "The decision_id a caller received."),
            OptionSpec(name: "since", valueName: "RFC3339", help: "Entries at or after this UTC time (e.g. 2026-01-31T08:00:00Z)."),
            OptionSpec(name: "until", valueName: "RFC3339", help: "Entries strictly before this UTC time."),
            OptionSpec(name: "limit", valueName: "N", help: "Stop after N matches."),
            OptionSpec(name: "format", valueName: "jsonl|table", help: "jsonl (default): one canonical entry per line; table: aligned columns."),
        ],
        details: """
        Strings match exactly (by Unicode scalars, no case folding or normalization). The table
        shows seq, time, decision, principal, action, resource, method and decision_id; jsonl
        shows every member of each entry as it is hashed into the log.

        Speed without an index: segments are memory-mapped and scanned in order, each record is
        first tested with byte searches for the exact "member":"value" text of each filter and a
        text comparison of its fixed-width time, and only candidates are parsed and checked
        exactly. Without filters, jsonl copies the stored bytes straight to the output.

        query reads the log as it is; run 'custos audit verify' to know it can be trusted.
        Exit status: 0 (also when nothing matches), 2 usage error or unreadable log, 3 the scan
        met damaged bytes (run verify).
        """)

    enum Format: String { case jsonl, table }

    static func run(_ args: ParsedArguments) throws -> Int32 {
        guard AuditOptions.operands(args).isEmpty else { throw UsageError(message: "usage: \(spec.usage)") }
        let dir = try AuditOptions.existingLogDirectory(args)
        guard let format = Format(rawValue: args.value("format") ?? "jsonl") else {
            throw UsageError(message: "--format is jsonl or table, got '\(args.value("format")!)'")
        }
        var q = AuditQuery(principal: args.value("principal"), resource: args.value("resource"), action: args.value("action"),
                           method: args.value("method"), decisionID: args.value("decision-id"),
                           since: try AuditOptions.parseTime("since", args), until: try AuditOptions.parseTime("until", args))
        if let d = args.value("decision") {
            guard let decision = AuditDecision(rawValue: d) else { throw UsageError(message: "--decision is allow or deny, got '\(d)'") }
            q.decision = decision
        }
        if args.value("limit") != nil {
            let n = try args.int("limit", default: 0)
            guard n > 0 else { throw UsageError(message: "--limit must be a positive number") }
            q.limit = n
        }

        let out = StdoutBuffer()
        defer { out.flush() }
        do {
            if format == .jsonl && isUnfiltered(q) {
                try AuditState.forEachRecord(logDirectory: dir, limit: q.limit) { payload in
                    out.write(Array(payload) + [0x0A])
                }
                return 0
            }
            switch format {
            case .jsonl:
                // Streamed: the stored bytes are the canonical entry.
                try q.forEachMatchingRecord(stateDirectory: dir) { payload in out.write(Array(payload) + [0x0A]) }
            case .table:
                out.write(AuditTable.render(try q.run(stateDirectory: dir)))
            }
            return 0
        } catch {
            out.flush()
            IO.printError(error.description)
            if case .corruptLog = error { return 3 }
            return 2
        }
    }

    private static func isUnfiltered(_ q: AuditQuery) -> Bool {
        q.principal == nil && q.resource == nil && q.action == nil && q.method == nil && q.decisionID == nil
            && q.decision == nil && q.since == nil && q.until == nil
    }
}

/// The aligned table of `audit query --format table`.
enum AuditTable {
    static let header = ["seq", "time", "decision", "principal", "action", "resource", "method", "decision_id"]

    static func render(_ entries: [AuditEntry]) -> String {
        let rows = [header] + entries.map { e in
            [String(e.seq), e.time.rfc3339, e.decision.rawValue, e.principal, e.action, e.resource, e.method, e.decisionID].map(printable)
        }
        var widths = header.map { _ in 0 }
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.unicodeScalars.count) } }
        var s = ""
        for r in rows {
            for (i, c) in r.enumerated() {
                s += c
                if i < r.count - 1 { s += String(repeating: " ", count: widths[i] - c.unicodeScalars.count + 2) }
            }
            s += "\n"
        }
        return s
    }

    /// Control characters from a caller-supplied value must not break the columns or drive the
    /// reviewer's terminal, so they are shown escaped.
    static func printable(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || (0x80..<0xA0).contains($0.value) }) else { return s }
        var out = ""
        for u in s.unicodeScalars {
            if u.value < 0x20 || u.value == 0x7F || (0x80..<0xA0).contains(u.value) {
                out += "\\u{" + String(u.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(u)
            }
        }
        return out
    }
}
