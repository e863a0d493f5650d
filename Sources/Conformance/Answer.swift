import CustosJSON

/// What an answer says, read the same way for every method: its decision, the policies named
/// in its reasons (a `decide.batch`'s results' too), every guardrail code anywhere in it, its
/// obligations, and for `place` the allowed and rejected nodes.
struct Answer {
    var decision: String?
    var policies: [String] = []
    var codes: [String] = []
    var obligations: [JSONObject] = []
    var allowed: [String]?
    var rejected: [String: [String]] = [:]
    var error: (code: Int64, message: String)?
    var result: JSON?

    init(_ outcome: CaseOutcome) {
        switch outcome {
        case .error(let code, let message):
            error = (code, message)
        case .result(let r):
            result = r
            decision = r["decision"]?.stringValue
            for answer in [r] + (r["results"]?.arrayValue ?? []) {
                for x in answer["reasons"]?.arrayValue ?? [] {
                    if case .string(let s) = x, !policies.contains(s) { policies.append(s) }
                    if let p = x["policy"]?.stringValue, !policies.contains(p) { policies.append(p) }
                }
            }
            Self.collectCodes(r, into: &codes)
            obligations = (r["obligations"]?.arrayValue ?? []).compactMap(\.objectValue)
            allowed = r["allowed"]?.arrayValue?.compactMap(\.stringValue)
            if case .object(let ro)? = r["rejected"] {
                for m in ro.members {
                    var cs: [String] = []
                    Self.collectCodes(m.value, into: &cs)
                    rejected[m.key] = cs
                }
            }
        }
    }

    /// Every string under a `code` key, at any depth.
    static func collectCodes(_ j: JSON, into out: inout [String]) {
        switch j {
        case .object(let o):
            for m in o.members {
                if m.key == "code", case .string(let s) = m.value { out.append(s) } else { collectCodes(m.value, into: &out) }
            }
        case .array(let xs): for x in xs { collectCodes(x, into: &out) }
        default: break
        }
    }

    /// The unmet expectations, each as a line for the report.
    func check(_ e: Expectation) -> [String] {
        var f: [String] = []
        if let want = e.error {
            if let error, error.code == want { return [] }
            f.append("expected error \(want), got \(error.map { "error \($0.code): \($0.message)" } ?? "a result")")
            return f
        }
        if let error { return ["expected a result, got error \(error.code): \(error.message)"] }
        if let d = e.decision, d != decision { f.append("decision: expected \(d), got \(decision ?? "none")") }
        for r in e.reasons where !policies.contains(r) { f.append("reason \"\(r)\" missing") }
        for r in e.notReasons where policies.contains(r) { f.append("reason \"\(r)\" present but must not be") }
        for c in e.codes where !codes.contains(c) { f.append("guardrail code \(c) missing") }
        for ob in e.obligations where !obligations.contains(where: { Self.contains($0, ob) }) {
            f.append("obligation \(JSON.object(ob).serialized) missing")
        }
        if let want = e.allowed, Set(want) != Set(allowed ?? []) {
            f.append("allowed nodes: expected \(want.sorted()), got \((allowed ?? []).sorted())")
        }
        for (node, cs) in e.rejected ?? [] {
            guard let got = rejected[node] else { f.append("node \(node) expected rejected, it was not"); continue }
            for c in cs where !got.contains(c) { f.append("node \(node): code \(c) missing (got \(got))") }
        }
        if let want = e.result {
            let got = result?.objectValue ?? JSONObject()
            for m in want.members where got[m.key] != m.value {
                f.append("result.\(m.key): expected \(m.value.serialized), got \(got[m.key]?.serialized ?? "nothing")")
            }
        }
        return f
    }

    /// `actual` has every member of `expected` with an equal value.
    static func contains(_ actual: JSONObject, _ expected: JSONObject) -> Bool {
        expected.members.allSatisfy { actual[$0.key] == $0.value }
    }

    var summary: String {
        if let error { return "error \(error.code): \(error.message)" }
        var parts: [String] = []
        if let decision { parts.append(decision) }
        if !policies.isEmpty { parts.append("policies \(policies)") }
        if !codes.isEmpty { parts.append("guardrails \(codes)") }
        if let allowed { parts.append("allowed \(allowed)") }
        if parts.isEmpty, let result { parts.append(result.serialized) }
        return parts.joined(separator: ", ")
    }

    /// Members that differ on every run and say nothing about the decision.
    static let volatile: Set<String> = ["decision_id", "policy_revision"]

    /// The whole answer as it came back, for reports: the result without its run-specific
    /// members, or `{"error": {"code", "message"}}`.
    var json: JSON {
        if let error {
            return .object(JSONObject(["error": .object(JSONObject(["code": .int(error.code), "message": .string(error.message)]))]))
        }
        guard case .object(var o)? = result else { return result ?? .null }
        o.members.removeAll { Self.volatile.contains($0.key) }
        return .object(o)
    }

    /// The whole answer, one member per line (`decision: "deny"`, `guardrail_reasons: [...]`),
    /// each line prefixed with `indent`.
    func lines(indent: String) -> String {
        guard case .object(let o) = json else { return indent + json.serialized + "\n" }
        return o.members.map { "\(indent)\($0.key): \($0.value.serialized)\n" }.joined()
    }
}
