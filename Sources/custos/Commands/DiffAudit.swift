import AuditLog
import CustosJSON
import Foundation
import Guardrails

/// `custos diff --audit STATE`: the decisions a daemon recorded with `audit.record_requests`,
/// as one suite (`audit`, one `decide` case per replayable entry, at its recorded time) that
/// both sides answer like any other, and what could not be replayed, by why.
struct AuditReplay {
    enum Outcome {
        case loaded(AuditReplay)
        /// The log does not verify (or cannot be read): nothing is replayed.
        case refused(String)
    }

    /// Most decisions one run replays: all are held in memory as one suite.
    static let maxReplayed = 100_000
    /// The methods whose entries are decisions (every other entry is an event, not counted).
    static let decisionMethods: Set<String> = ["decide", "decide.batch", "place", "transfer"]
    static let notRecorded = "no recorded request (audit.record_requests was off)"

    var state: String
    /// The scratch folder holding the suite; nil when nothing was replayable.
    var scratch: String?
    var suite: String?
    /// The daemon's consent journal, which the replay starts from (as it is now).
    var consentJournal: String
    var decisionsRead = 0
    var replayed = 0
    /// Replayed entries whose context had members the allow-list left out.
    var unrecordedContext = 0
    var skipped: [String: Int] = [:]
    /// The recorded answer of each replayed case (`seq N`): its decision and revision.
    var recorded: [String: (decision: String, revision: String)] = [:]
    /// Replayed decisions recorded under FROM's revision, and those of them FROM decided
    /// otherwise than recorded (set by `check`).
    var checked = 0
    var disagreeing: [String] = []

    static func load(state: String, pubkey: String?, since: AuditTimestamp?, until: AuditTimestamp?) throws -> Outcome {
        let dir = AuditState.logDirectory(state: state)
        guard IO.isDirectory(dir) else {
            throw UsageError(message: "--audit \(state): no audit log at \(dir); pass the daemon's state folder")
        }
        let key: NoteVerifierKey
        if let pubkey {
            key = try AuditOptions.publicKey(file: pubkey)
        } else {
            let path = AuditState.verifierKeyPath(state: state)
            do { key = try AuditState.readVerifierKey(path: path) } catch {
                throw UsageError(message: "--audit \(state): \(error.description); pass the log's verifier key with --pubkey FILE")
            }
            IO.printError("warning: no --pubkey given, the audit log is verified with \(path) from the state folder itself: this shows the folder is consistent, not that it is the original log")
        }
        // Replay input is only as good as the log: every entry's leaf is recomputed and checked
        // against the signed checkpoints before one request is read.
        let report = AuditVerifier.verify(stateDirectory: dir, publicKey: key)
        if let f = report.failure {
            return .refused("the audit log does not verify (FAIL: \(AuditVerifyCommand.label(f.kind))\(f.entryIndex.map { " at entry \($0)" } ?? ""): \(f.message))")
        }
        var r = AuditReplay(state: state, consentJournal: state + "/" + GuardrailConfig.folderName + "/" + ConsentStore.fileName)
        var cases: [JSON] = []
        var first: String? = nil
        var tooMany = false
        do {
            try AuditQuery(since: since, until: until).forEachMatch(stateDirectory: dir) { e, _ in
                guard decisionMethods.contains(e.method) else { return }
                r.decisionsRead += 1
                guard let request = e.request else { r.skipped[notRecorded, default: 0] += 1; return }
                switch Self.params(request) {
                case .failure(let refusal):
                    r.skipped[refusal.why, default: 0] += 1
                case .success(let (method, params, at, unrecorded)):
                    guard cases.count < maxReplayed else { tooMany = true; return }
                    if unrecorded { r.unrecordedContext += 1 }
                    if first == nil { first = at }
                    r.recorded["seq \(e.seq)"] = (e.decision.rawValue, e.policyRevision)
                    cases.append(.object(JSONObject([
                        .init(key: "name", value: .string("seq \(e.seq)")), .init(key: "method", value: .string(method)),
                        .init(key: "params", value: params), .init(key: "at", value: .string(at)),
                        // The runner needs an expectation; diff compares the two answers only.
                        .init(key: "expect", value: .object(JSONObject([.init(key: "decision", value: .string("allow"))]))),
                    ])))
                }
            }
        } catch {
            return .refused("the audit log cannot be read: \(error.description)")
        }
        if tooMany {
            throw UsageError(message: "--audit \(state): more than \(maxReplayed) replayable decisions; narrow them with --since and --until")
        }
        r.replayed = cases.count
        guard let first else { return .loaded(r) }
        var template = Array((FileManager.default.temporaryDirectory.path + "/custos-replay-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw UsageError(message: "cannot create a scratch folder for --audit") }
        let scratch = String(cString: made)
        r.scratch = scratch
        let suite = JSON.object(JSONObject([.init(key: "suite", value: .string("audit")), .init(key: "policies", value: .string(".")),
                                            .init(key: "time", value: .string(first)), .init(key: "cases", value: .array(cases))]))
        let file = scratch + "/audit.json"
        do { try (suite.serialized + "\n").write(toFile: file, atomically: true, encoding: .utf8) } catch {
            try? FileManager.default.removeItem(atPath: scratch)
            throw UsageError(message: "cannot write a scratch suite for --audit: \(error.localizedDescription)")
        }
        r.suite = file
        return .loaded(r)
    }

    /// The method and params to call again for a recorded request, its decision time and
    /// whether context members went unrecorded; or why it cannot be replayed.
    static func params(_ request: JSON) -> Result<(String, JSON, String, Bool), ReplayRefusal> {
        guard case .object(let o) = request else { return .failure(ReplayRefusal("the recorded request is not an object")) }
        guard o["format"] == .int(1) else { return .failure(ReplayRefusal("the recorded request has an unknown format")) }
        if let why = o["not_replayable"]?.stringValue { return .failure(ReplayRefusal(why)) }
        if o["method"] == .string("transfer") {
            guard let at = o["at"]?.stringValue, case .object? = o["params"] else {
                return .failure(ReplayRefusal("the recorded transfer lacks its params or time"))
            }
            return .success(("transfer", o["params"]!, at, false))
        }
        guard let at = o["at"]?.stringValue, let p = o["principal"], let a = o["action"], let res = o["resource"],
              case .object? = o["context"] else {
            return .failure(ReplayRefusal("the recorded request lacks principal, action, resource, context or time"))
        }
        var members: [JSONObject.Member] = [.init(key: "principal", value: p), .init(key: "action", value: a),
                                            .init(key: "resource", value: res), .init(key: "context", value: o["context"]!)]
        if let e = o["entities"] { members.append(.init(key: "entities", value: e)) }
        return .success(("decide", .object(JSONObject(members)), at, (o["context_unrecorded"]?.intValue ?? 0) > 0))
    }

    struct ReplayRefusal: Error {
        var why: String
        init(_ why: String) { self.why = why }
    }

    /// Where FROM is the revision that made a recorded decision, its replay must give the
    /// recorded answer; one that does not shows what the recording missed (context members
    /// off the allow-list, holds changed since, ...), so the report says so.
    mutating func check(_ answers: [(name: String, decision: String)], fromRevision: String) {
        for a in answers {
            guard let rec = recorded[a.name], rec.revision.utf8.elementsEqual(fromRevision.utf8) else { continue }
            checked += 1
            if !a.decision.utf8.elementsEqual(rec.decision.utf8) { disagreeing.append(a.name) }
        }
    }

    var skippedTotal: Int { skipped.values.reduce(0, +) }

    /// Largest count first, then by reason.
    var skippedOrdered: [(key: String, value: Int)] {
        skipped.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
    }

    var json: JSON {
        .object(JSONObject([
            .init(key: "state", value: .string(state)),
            .init(key: "decisions_read", value: .int(Int64(decisionsRead))),
            .init(key: "replayed", value: .int(Int64(replayed))),
            .init(key: "replayed_without_unrecorded_context", value: .int(Int64(unrecordedContext))),
            .init(key: "checked_against_recorded", value: .int(Int64(checked))),
            .init(key: "disagree_with_recorded", value: .array(disagreeing.map { .string($0) })),
            .init(key: "skipped", value: .array(skippedOrdered.map { s in
                .object(JSONObject([.init(key: "reason", value: .string(s.key)), .init(key: "count", value: .int(Int64(s.value)))]))
            })),
        ]))
    }

    var markdown: String {
        var s = "\n## Recorded traffic (\(DiffCommand.cell(state)))\n\n"
        s += "\(decisionsRead) recorded decisions: \(replayed) replayed at their recorded time (suite `audit`, cases `seq N`), \(skippedTotal) not replayable.\n"
        if unrecordedContext > 0 {
            s += "\n\(unrecordedContext) replayed decisions had context members the audit allow-list does not record; they were decided without them.\n"
        }
        if checked > 0 {
            s += "\n\(checked) replayed decisions were recorded under the FROM revision: "
            s += disagreeing.isEmpty ? "FROM gives each the recorded answer.\n"
                : "\(disagreeing.count) of them FROM decides otherwise than recorded (the recording missed something they rest on, such as context off the allow-list or holds changed since): \(disagreeing.joined(separator: ", ")).\n"
        }
        if !skipped.isEmpty {
            s += "\n| not replayed because | decisions |\n|---|---|\n"
            for (why, n) in skippedOrdered { s += "| \(DiffCommand.cell(why)) | \(n) |\n" }
        }
        return s
    }
}
