import Cedar
import CustosJSON

/// One line of the consent journal: a change, who made it and when.
public struct JournalChange: Sendable, Hashable {
    public enum Op: Sendable, Hashable {
        case grant(subject: ConsentSubject, purpose: String, grantedAt: CedarDatetime, evidence: String)
        case withdraw(subject: ConsentSubject, purpose: String)
        case holdSet(dataset: String, matter: String, reason: String)
        case holdRelease(dataset: String, matter: String, reason: String)

        public var name: String {
            switch self {
            case .grant: "consent.grant"
            case .withdraw: "consent.withdraw"
            case .holdSet: "hold.set"
            case .holdRelease: "hold.release"
            }
        }
    }

    public var seq: Int64
    /// When the change was made (the daemon's clock).
    public var at: CedarDatetime
    public var actor: String
    public var op: Op

    /// Whether this change concerns the subject (consent) or dataset (hold) `id`.
    public func concerns(_ id: String) -> Bool {
        switch op {
        case .grant(let s, _, _, _), .withdraw(let s, _): s.id.scalarEquals(id)
        case .holdSet(let d, _, _), .holdRelease(let d, _, _): d.scalarEquals(id)
        }
    }

    public var json: JSON {
        var o = JSONObject()
        o.append("seq", .int(seq))
        o.append("at", .int(at.millisecondsSinceEpoch))
        o.append("op", .string(op.name))
        o.append("actor", .string(actor))
        switch op {
        case .grant(let s, let p, let g, let e):
            o.append(s.kind, .string(s.id)); o.append("purpose", .string(p))
            o.append("granted_at", .int(g.millisecondsSinceEpoch)); o.append("evidence", .string(e))
        case .withdraw(let s, let p):
            o.append(s.kind, .string(s.id)); o.append("purpose", .string(p))
        case .holdSet(let d, let m, let r), .holdRelease(let d, let m, let r):
            o.append("dataset", .string(d)); o.append("matter", .string(m)); o.append("reason", .string(r))
        }
        return .object(o)
    }

    public init(seq: Int64, at: CedarDatetime, actor: String, op: Op) {
        self.seq = seq; self.at = at; self.actor = actor; self.op = op
    }

    /// Reads a journal line; nil when it is not a well-formed change.
    public init?(json: JSON) {
        guard let seq = json["seq"]?.intValue, let at = json["at"]?.intValue, let op = json["op"]?.stringValue,
              let actor = json["actor"]?.stringValue else { return nil }
        func subject() -> ConsentSubject? {
            if let d = json["dataset"]?.stringValue { return .dataset(d) }
            if let c = json["cohort"]?.stringValue { return .cohort(c) }
            return nil
        }
        let parsed: Op
        switch op {
        case "consent.grant":
            guard let s = subject(), let p = json["purpose"]?.stringValue, let g = json["granted_at"]?.intValue,
                  let e = json["evidence"]?.stringValue else { return nil }
            parsed = .grant(subject: s, purpose: p, grantedAt: CedarDatetime(millisecondsSinceEpoch: g), evidence: e)
        case "consent.withdraw":
            guard let s = subject(), let p = json["purpose"]?.stringValue else { return nil }
            parsed = .withdraw(subject: s, purpose: p)
        case "hold.set", "hold.release":
            guard let d = json["dataset"]?.stringValue, let m = json["matter"]?.stringValue,
                  let r = json["reason"]?.stringValue else { return nil }
            parsed = op == "hold.set" ? .holdSet(dataset: d, matter: m, reason: r) : .holdRelease(dataset: d, matter: m, reason: r)
        default: return nil
        }
        self.init(seq: seq, at: CedarDatetime(millisecondsSinceEpoch: at), actor: actor, op: parsed)
    }
}
