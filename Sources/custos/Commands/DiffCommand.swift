import AuditLog
import Conformance
import CustosDaemon
import CustosJSON
import Foundation
import Guardrails

/// `custos diff --from A --to B`: which decisions of the suites a policy change flips.
enum DiffCommand {
    static let spec = CommandSpec(
        name: "diff",
        summary: "Impact assessment: the decisions of the suites that change from one policies folder or bundle to another.",
        usage: "custos diff --from DIR|BUNDLE --to DIR|BUNDLE [--suites PATH]... [--requests FILE [--at TIME]]\n       [--audit STATE [--pubkey FILE] [--since TIME] [--until TIME]] [--json]",
        options: [
            OptionSpec(name: "from", valueName: "DIR|BUNDLE", help: "The policies in service (a folder, or a bundle file)."),
            OptionSpec(name: "to", valueName: "DIR|BUNDLE", help: "The candidate change (a folder, or a bundle file)."),
            OptionSpec(name: "suites", valueName: "PATH", help: "A suite file or a folder of suites (repeat for several; default conformance/)."),
            OptionSpec(name: "requests", valueName: "FILE", help: "Also decide every line of FILE: decide params, one JSON object a line (as custos call decide takes them)."),
            OptionSpec(name: "at", valueName: "TIME", help: "The decision time of --requests, e.g. 2026-06-01T12:00:00Z (default now)."),
            OptionSpec(name: "audit", valueName: "STATE", help: "Also replay the decisions a daemon recorded with audit.record_requests in STATE/audit (the log is verified first)."),
            OptionSpec(name: "pubkey", valueName: "FILE", help: "The audit log's verifier key line (custos audit pubkey), obtained out of band; default the state folder's own."),
            OptionSpec(name: "since", valueName: "TIME", help: "Replay entries at or after this UTC time (RFC 3339)."),
            OptionSpec(name: "until", valueName: "TIME", help: "Replay entries strictly before this UTC time."),
            OptionSpec(name: "json", valueName: nil, help: "Print the report as JSON instead of Markdown."),
        ],
        details: """
        With --requests FILE, every line of FILE (decide params) is decided too, at --at (default
        now), as one more suite named "requests". With --audit STATE, the daemon's audit log is
        verified (as custos audit verify does; a log that fails is refused) and every decision it
        recorded with audit.record_requests (docs/audit.md), between --since and --until, is
        decided again at its recorded time, as one more suite named "audit" whose cases are named
        "seq N"; decisions recorded without a request or as not replayable are counted, by why.
        Runs every case of the suites twice, answered by FROM and by TO instead of each suite's own
        policies (as custos test --policies does), and reports the cases whose decision changes,
        grouped by the policies and guardrail codes that decided differently, then the cases
        whose decision stays but whose reasons change. The Markdown report is meant to be attached
        to the change request (docs/change-control.md). A bundle's files are checked against its
        manifest; its signatures are not judged (custos bundle verify does).
        Exit status: 0 when no decision changes; 1 when some do, or a suite cannot run against
        either side; 2 on usage errors or when FROM or TO does not load; 3 when the --audit log
        does not verify (nothing is replayed).
        """)

    /// One case as one side answered it.
    struct Side {
        var decision: String
        var policies: [String]
        var codes: [String]
        var got: String
        var passed: Bool

        init(_ c: CaseResult) {
            decision = c.steps.map { s in
                if let d = s.answer["decision"]?.stringValue { return d }
                if s.answer["error"] != nil { return "error" }
                return s.got
            }.joined(separator: "; ")
            policies = c.firedPolicies
            codes = c.codes
            got = c.got
            passed = c.passed
        }

        var json: JSON {
            .object(JSONObject([.init(key: "decision", value: .string(decision)),
                                .init(key: "policies", value: .array(policies.map { .string($0) })),
                                .init(key: "codes", value: .array(codes.map { .string($0) })),
                                .init(key: "got", value: .string(got))]))
        }
    }

    struct Change {
        var suite: String
        var name: String
        var from: Side
        var to: Side
        /// `policy NAME` and `guardrail CODE` that decided on one side only; when none did, all
        /// that decided on either side.
        var because: [String]

        var json: JSON {
            .object(JSONObject([.init(key: "suite", value: .string(suite)), .init(key: "case", value: .string(name)),
                                .init(key: "from", value: from.json), .init(key: "to", value: to.json),
                                .init(key: "because", value: .array(because.map { .string($0) }))]))
        }
    }

    static func run(_ args: ParsedArguments) throws -> Int32 {
        guard args.positionals.isEmpty else { throw UsageError(message: "unexpected \(args.positionals[0]); usage: \(spec.usage)") }
        let from = try args.required("from"), to = try args.required("to")
        let requests = args.value("requests")
        let audit = args.value("audit")
        let paths = args.all("suites").isEmpty ? (requests == nil && audit == nil ? ["conformance"] : []) : args.all("suites")
        var files: [String] = []
        for p in paths {
            let found = ConformanceRunner.suiteFiles(under: p)
            if found.isEmpty { throw UsageError(message: "--suites \(p): no such file or folder, or no *.json suites in it") }
            files += found
        }
        if args.value("at") != nil, requests == nil { throw UsageError(message: "--at applies to --requests only") }
        for o in ["pubkey", "since", "until"] where args.value(o) != nil && audit == nil {
            throw UsageError(message: "--\(o) applies to --audit only")
        }
        var scratch: String? = nil
        defer { if let scratch { try? FileManager.default.removeItem(atPath: scratch) } }
        var replay: AuditReplay? = nil
        defer { if let dir = replay?.scratch { try? FileManager.default.removeItem(atPath: dir) } }
        if let audit {
            switch try AuditReplay.load(state: audit, pubkey: args.value("pubkey"),
                                        since: try AuditOptions.parseTime("since", args), until: try AuditOptions.parseTime("until", args)) {
            case .refused(let why):
                IO.printError("--audit \(audit): \(why); nothing was replayed")
                return 3
            case .loaded(let r):
                replay = r
                if let suite = r.suite { files.append(suite) }
            }
        }
        let journal = replay?.consentJournal, replaySuite = replay?.suite
        if let requests {
            let (dir, suite) = try requestsSuite(requests, at: args.value("at") ?? String(WallTime.now().rfc3339.prefix(19)) + "Z")
            scratch = dir
            files.append(suite)
        }
        var revisions: [String] = []
        for (option, path) in [("from", from), ("to", to)] {
            guard FileManager.default.fileExists(atPath: path) else { throw UsageError(message: "--\(option) \(path): no such folder or bundle") }
            switch PolicyStore(source: PolicySource.candidate(path)).reload() {
            case .success(let s): revisions.append(s.revision)
            case .failure(let e):
                IO.printError("--\(option) \(path) does not load: \(e.message)")
                return 2
            }
        }
        let codes = DenialCode.allCases.map(\.rawValue)
        let before = ConformanceRunner.run(files: files, knownCodes: codes) { (s: Suite) throws(SuiteError) -> SuiteEnvironment in
            try SuiteHarness.prepare(s, policies: from, consentJournal: s.file == replaySuite ? journal : nil)
        }
        let after = ConformanceRunner.run(files: files, knownCodes: codes) { (s: Suite) throws(SuiteError) -> SuiteEnvironment in
            try SuiteHarness.prepare(s, policies: to, consentJournal: s.file == replaySuite ? journal : nil)
        }
        if let suite = replaySuite {
            replay?.check(before.cases.filter { $0.file == suite }.map { ($0.name, Side($0).decision) }, fromRevision: revisions[0])
        }
        var decisions: [Change] = [], reasons: [Change] = []
        var errors = before.suiteErrors.map { "from: " + $0.description } + after.suiteErrors.map { "to: " + $0.description }
        var index: [String: CaseResult] = [:]
        for c in before.cases { index[c.file + "\u{0}" + c.suite + "\u{0}" + c.name] = c }
        for b in after.cases {
            guard let a = index[b.file + "\u{0}" + b.suite + "\u{0}" + b.name] else {
                errors.append("\(b.file): case \"\(b.name)\" ran against --to only")
                continue
            }
            let x = Side(a), y = Side(b)
            guard x.got != y.got || x.decision != y.decision else { continue }
            let lost = Set(x.policies).symmetricDifference(y.policies).map { "policy " + $0 }
                + Set(x.codes).symmetricDifference(y.codes).map { "guardrail " + $0 }
            let because = lost.isEmpty
                ? Array(Set(x.policies + y.policies).map { "policy " + $0 } + Set(x.codes + y.codes).map { "guardrail " + $0 })
                : lost
            let change = Change(suite: b.suite, name: b.name, from: x, to: y, because: because.sorted())
            if x.decision != y.decision { decisions.append(change) } else { reasons.append(change) }
        }
        // Grouped by what changed, the largest group first, then by name.
        var groups: [String: [Change]] = [:]
        for c in decisions { for k in (c.because.isEmpty ? ["(no policy or guardrail code)"] : c.because) { groups[k, default: []].append(c) } }
        let ordered = groups.sorted { $0.value.count != $1.value.count ? $0.value.count > $1.value.count : $0.key < $1.key }
        let total = after.cases.count
        let out = StdoutBuffer()
        if args.flag("json") {
            let report = JSON.object(JSONObject([
                .init(key: "from", value: .object(JSONObject([.init(key: "policies", value: .string(from)), .init(key: "revision", value: .string(revisions[0]))]))),
                .init(key: "to", value: .object(JSONObject([.init(key: "policies", value: .string(to)), .init(key: "revision", value: .string(revisions[1]))]))),
                .init(key: "suites", value: .array(files.map { .string($0 == replaySuite ? "audit " + (audit ?? "") : $0) })),
                .init(key: "cases", value: .int(Int64(total))),
                .init(key: "decisions_changed", value: .array(decisions.map(\.json))),
                .init(key: "groups", value: .array(ordered.map { g in
                    .object(JSONObject([.init(key: "because", value: .string(g.key)),
                                        .init(key: "cases", value: .array(g.value.map { .string($0.suite + "/" + $0.name) }))]))
                })),
                .init(key: "reasons_changed", value: .array(reasons.map(\.json))),
                .init(key: "suite_errors", value: .array(errors.map { .string($0) })),
            ] + (replay.map { [.init(key: "audit", value: $0.json)] } ?? [])))
            out.write(report.serialized + "\n")
        } else {
            out.write(markdown(from: from, to: to, revisions: revisions, files: files, total: total,
                               decisions: decisions, groups: ordered, reasons: reasons, errors: errors)
                      + (replay?.markdown ?? ""))
        }
        out.flush()
        return decisions.isEmpty && errors.isEmpty ? 0 : 1
    }

    static let maxRequestsBytes = 64 << 20

    /// The requests file as a suite of its own (in a scratch folder, returned to remove): one
    /// `decide` case per non-blank line, named `FILE:LINE`, so that both sides answer it exactly
    /// as the daemon would at `at`. The runner needs every case to expect something; diff
    /// compares the two answers and never looks at whether that expectation held.
    static func requestsSuite(_ path: String, at: String) throws -> (dir: String, suite: String) {
        guard let data = FileManager.default.contents(atPath: path) else { throw UsageError(message: "--requests \(path): cannot be read") }
        guard data.count <= maxRequestsBytes else { throw UsageError(message: "--requests \(path): larger than \(maxRequestsBytes) bytes") }
        var cases: [JSON] = []
        for (i, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            guard line.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") && $0 != UInt8(ascii: "\r") }) else { continue }
            let params: JSON
            do { params = try JSON.parse(Array(line)) } catch {
                throw UsageError(message: "\(path):\(i + 1):\(error.column): invalid JSON: \(error.redactedMessage)")
            }
            guard case .object = params else { throw UsageError(message: "\(path):\(i + 1): expected decide params, a JSON object") }
            cases.append(.object(JSONObject([.init(key: "name", value: .string("\(path):\(i + 1)")), .init(key: "method", value: .string("decide")),
                                             .init(key: "params", value: params), .init(key: "expect", value: .object(JSONObject([.init(key: "decision", value: .string("allow"))])))])))
        }
        guard !cases.isEmpty else { throw UsageError(message: "--requests \(path): no requests in it") }
        var template = Array((FileManager.default.temporaryDirectory.path + "/custos-diff-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw UsageError(message: "cannot create a scratch folder for --requests") }
        let dir = String(cString: made)
        let suite = JSON.object(JSONObject([.init(key: "suite", value: .string("requests")), .init(key: "policies", value: .string(".")),
                                            .init(key: "time", value: .string(at)), .init(key: "cases", value: .array(cases))]))
        let file = dir + "/requests.json"
        do { try (suite.serialized + "\n").write(toFile: file, atomically: true, encoding: .utf8) } catch {
            try? FileManager.default.removeItem(atPath: dir)
            throw UsageError(message: "cannot write a scratch suite for --requests: \(error.localizedDescription)")
        }
        return (dir, file)
    }

    /// A table cell: one line, no `|` that would split it.
    static func cell(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "|", with: "\\|")
            .replacingOccurrences(of: "\n", with: " ")
    }

    static func markdown(from: String, to: String, revisions: [String], files: [String], total: Int, decisions: [Change],
                         groups: [(key: String, value: [Change])], reasons: [Change], errors: [String]) -> String {
        var s = "# Impact assessment\n\n"
        s += "| | policies | revision |\n|---|---|---|\n"
        s += "| from | \(cell(from)) | `\(revisions[0])` |\n| to | \(cell(to)) | `\(revisions[1])` |\n\n"
        s += "\(files.count) suite files, \(total) cases: **\(decisions.count) decisions change**, \(reasons.count) cases keep their decision with other reasons"
        s += errors.isEmpty ? ".\n" : ", \(errors.count) suite errors.\n"
        if !decisions.isEmpty {
            s += "\n## Decisions that change, by policy and guardrail code\n"
            for g in groups {
                s += "\n### \(cell(g.key)) (\(g.value.count))\n\n| suite | case | from | to |\n|---|---|---|---|\n"
                for c in g.value { s += "| \(cell(c.suite)) | \(cell(c.name)) | \(cell(c.from.got)) | \(cell(c.to.got)) |\n" }
            }
        }
        if !reasons.isEmpty {
            s += "\n## Same decision, other reasons\n\n| suite | case | from | to |\n|---|---|---|---|\n"
            for c in reasons { s += "| \(cell(c.suite)) | \(cell(c.name)) | \(cell(c.from.got)) | \(cell(c.to.got)) |\n" }
        }
        if !errors.isEmpty {
            s += "\n## Suites that could not run\n\n"
            for e in errors { s += "- \(cell(e))\n" }
        }
        return s
    }
}
