import Cedar
import CustosJSON

/// Cedar's answer as the daemon gives it.
///
/// Cedar skips a policy whose evaluation errors, so a `forbid` with a misspelt attribute
/// (`resource.data_stat`) stops protecting anything without a sound. The daemon differs from
/// Cedar here on purpose (docs/cedar.md, "Where the daemon differs from Cedar"): unless the
/// folder's `custos.json` says `"forbid_errors": "skip"`, a forbid that errors denies as if it
/// were satisfied, is named in `reasons`, and its `errors` entry carries the code
/// `policy.forbid_error`. `custos authorize` stays exactly Cedar.
public struct CedarVerdict: Sendable {
    public var decision: Decision
    /// Indices into the policy set, ascending: Cedar's reasons, plus the failed forbids.
    public var reasons: [Int]
    public var errors: [(policy: Int, error: EvalError)]
    /// The forbids among `errors` that made the decision deny (empty under `skip`).
    public var failedForbids: [Int]

    /// The code an `errors` entry of a failed forbid carries.
    public static let forbidErrorCode = "policy.forbid_error"
}

extension PolicySnapshot {
    /// Cedar's authorization with this folder's `forbid_errors` rule applied. No extra work
    /// unless some policy errored.
    @inline(__always)
    public func authorize(_ request: Request, entities: EntityStore) -> CedarVerdict {
        let r = policies.authorize(request, entities: entities)
        var v = CedarVerdict(decision: r.decision, reasons: r.reasons, errors: r.errors, failedForbids: [])
        if r.errors.isEmpty || settings.forbidErrors == .skip { return v }
        applyForbidErrors(&v)
        return v
    }

    private func applyForbidErrors(_ v: inout CedarVerdict) {
        for e in v.errors where policies.policies[e.policy].effect == .forbid { v.failedForbids.append(e.policy) }
        guard !v.failedForbids.isEmpty else { return }
        // Cedar's reasons for a deny are its satisfied forbids (none for a default deny); for
        // an allow they are permits, which no longer determine the answer.
        let satisfiedForbids = v.decision == .deny ? v.reasons : []
        v.decision = .deny
        v.reasons = (satisfiedForbids + v.failedForbids).sorted()
    }

    /// The `errors` entries of an answer: `{"policy", "message"}`, plus `"code":
    /// "policy.forbid_error"` for a forbid that denied because it failed.
    func failures(_ v: CedarVerdict) -> [PolicyFailure] {
        v.errors.map { e in
            let failed = v.failedForbids.contains(e.policy)
            return PolicyFailure(policy: policyNames[e.policy],
                                 message: failed ? PolicyFailure.forbidMessage(e.error) : e.error.description,
                                 forbidError: failed)
        }
    }
}

/// One entry of an answer's `errors`.
public struct PolicyFailure: Sendable, Equatable {
    public var policy: String
    public var message: String
    /// A forbid that failed to evaluate and therefore denied (`policy.forbid_error`).
    public var forbidError: Bool

    static func forbidMessage(_ e: EvalError) -> String {
        "this forbid failed to evaluate, so the request is denied (custos.json forbid_errors: deny): \(e.description)"
    }

    var json: JSON {
        var o = JSONObject([JSONObject.Member(key: "policy", value: .string(policy))])
        if forbidError { o.append("code", .string(CedarVerdict.forbidErrorCode)) }
        o.append("message", .string(message))
        return .object(o)
    }

    func write(into w: inout JSONWriter) {
        w.raw("{\"policy\":")
        w.string(policy)
        if forbidError { w.raw(",\"code\":\"policy.forbid_error\"") }
        w.raw(",\"message\":")
        w.string(message)
        w.byte(UInt8(ascii: "}"))
    }
}

extension Array where Element == PolicyFailure {
    /// `[{"policy", "code"?, "message"}, ...]`.
    func write(into w: inout JSONWriter) {
        w.byte(UInt8(ascii: "["))
        for (i, f) in enumerated() {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            f.write(into: &w)
        }
        w.byte(UInt8(ascii: "]"))
    }

    /// Names of the forbids that denied because they failed, for the audit record.
    var forbidErrors: [String] { filter(\.forbidError).map(\.policy) }
}
