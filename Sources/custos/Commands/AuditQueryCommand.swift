import AuditLog
import CustosJSON

/// `custos audit query`: filtered reading of the log for reviews (who accessed what, when, why).
enum AuditQueryCommand {
    static let spec = CommandSpec(
        name: "audit",
        summary: "Print the audit entries that match every given filter, oldest first.",
        usage: "custos audit query [--state DIR]... [filters] [--limit N] [--format jsonl|table]",
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

        Several --state (a fleet, one folder per daemon; docs/fleet.md): the matches of every
        log, merged by time (ties in the order the folders were given, then log order), --limit
        applied to the merged list. jsonl lines are then {"log": DIR, "entry": <the canonical
        entry>}, and the table starts with a log column. The matches are held in memory to be
        merged: narrow a broad question with filters or --since/--until.

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

        let states = args.all("state")
        if states.count > 1 { return try fleet(states, q, format: format) }

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

    /// One match of a fleet query: where it came from, for the merge and the output.
    struct FleetMatch {
        var time: AuditTimestamp
        var log: Int
        var entry: AuditEntry
        var canonical: [UInt8]
    }

    /// The matches of several logs merged by time, so "who accessed this dataset anywhere" is
    /// one answer. Each log is read in full (the limit cuts the merged list): the first N by
    /// time overall need not be among the first N of each log when clocks differ.
    static func fleet(_ states: [String], _ query: AuditQuery, format: Format) throws -> Int32 {
        var q = query
        let limit = q.limit
        q.limit = nil
        var matches: [FleetMatch] = []
        for (i, state) in states.enumerated() {
            let dir = AuditState.logDirectory(state: state)
            guard IO.isDirectory(dir) else {
                throw UsageError(message: "no audit log at \(dir): pass each daemon's state folder with --state DIR")
            }
            do {
                try q.forEachMatch(stateDirectory: dir) { e, payload in
                    matches.append(FleetMatch(time: e.time, log: i, entry: e, canonical: Array(payload)))
                }
            } catch {
                IO.printError("\(state): \(error.description)")
                if case .corruptLog = error { return 3 }
                return 2
            }
        }
        // Stable: equal times keep folder order, then log order.
        let merged = matches.enumerated().sorted {
            ($0.element.time, $0.element.log, $0.offset) < ($1.element.time, $1.element.log, $1.offset)
        }.map(\.element).prefix(limit ?? Int.max)
        let out = StdoutBuffer()
        defer { out.flush() }
        switch format {
        case .jsonl:
            let names = states.map { Array(JSON.string($0).serialized.utf8) }
            for m in merged {
                out.write(Array("{\"log\":".utf8) + names[m.log] + Array(",\"entry\":".utf8) + m.canonical + Array("}\n".utf8))
            }
        case .table:
            out.write(AuditTable.render(merged.map(\.entry), logs: merged.map { states[$0.log] }))
        }
        return 0
    }

    private static func isUnfiltered(_ q: AuditQuery) -> Bool {
        q.principal == nil && q.resource == nil && q.action == nil && q.method == nil && q.decisionID == nil
            && q.decision == nil && q.since == nil && q.until == nil
    }
}

/// The aligned table of `audit query --format table`.
enum AuditTable {
    static let header = ["seq", "time", "decision", "principal", "action", "resource", "method", "decision_id"]

    /// `logs`, when given, names each entry's log in a first column (a fleet query).
    static func render(_ entries: [AuditEntry], logs: [String]? = nil) -> String {
        let header = logs == nil ? Self.header : ["log"] + Self.header
        let rows = [header] + entries.enumerated().map { i, e in
            ((logs.map { [$0[i]] } ?? []) + [String(e.seq), e.time.rfc3339, e.decision.rawValue, e.principal, e.action, e.resource,
                                             e.method, e.decisionID]).map(printable)
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
