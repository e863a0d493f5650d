import Cedar
import CustosJSON

/// What `audit.record_requests` keeps of one decision in its audit entry (`request`), so
/// `custos diff --audit` can decide it again under other policies (docs/audit.md, "Recorded
/// requests"). Either the inputs of a replayable decision:
///
///     {"format": 1, "method": "decide", "at": "2026-06-01T12:00:00.250Z",
///      "principal": {"type","id"}, "action": {...}, "resource": {...},
///      "context": {...}, "context_unrecorded": 2, "region_from": "daemon",
///      "entities": [{"uid","attrs","parents","tags"}, ...]}
///
/// a `transfer`'s params, every one the caller's (`{"format": 1, "method": "transfer", "at": ...,
/// "params": {"principal", "dataset", "from", "to", "kind", "basis"?}}`), or why not:
/// `{"format": 1, "method": "place", "at": ..., "not_replayable": "..."}`.
///
/// `context` holds the allow-listed members of the context the decision used, that is after
/// the daemon put its own region in (`region_from`: `daemon` when `context.region` is the
/// bound region or an inventory node's, which is then recorded whether or not it is on the
/// allow-list; `caller` when the caller asserted it). `context_unrecorded` counts the members
/// the allow-list left out: a replay decides without them. `entities` are the caller's
/// request entities, whole, since a decision cannot be made again from their ids alone.
public enum ReplayInput {
    public static let format: Int64 = 1
    /// The largest replay input kept, in canonical JSON bytes. A bigger one is recorded as not
    /// replayable with its size, never cut: a shortened request would be another request.
    public static let maxBytes = 64 << 10

    /// The methods whose decisions replay (`decide`, each request of a `decide.batch`, `transfer`).
    public static func isReplayable(method: String) -> Bool {
        method.utf8.elementsEqual("decide".utf8) || method.utf8.elementsEqual("decide.batch".utf8)
            || method.utf8.elementsEqual("transfer".utf8)
    }

    /// The `request` member for `r`, with `allowList` naming the context members kept.
    public static func make(_ r: DecisionRecord, allowList: [String]) -> JSON {
        let at = r.decidedAt.rfc3339
        guard isReplayable(method: r.method) else {
            let why = r.method.utf8.elementsEqual("place".utf8)
                ? "place is not replayable: it rests on the node inventory of the time, which the log does not keep"
                : "\(r.method) is not replayable: custos diff --audit re-decides decide, decide.batch and transfer requests only"
            return notReplayable(r.method, at, why)
        }
        if r.method.utf8.elementsEqual("transfer".utf8) { return bounded(transfer(r, at), r.method, at) }
        if r.namedNode {
            return notReplayable(r.method, at, "the request names an inventory node (context.node), whose region the log does not keep")
        }
        var context: [JSONObject.Member] = []
        var unrecorded: Int64 = 0
        for f in r.request.context.fields {
            let isRegion = f.key.utf8.elementsEqual("region".utf8)
            if (isRegion && r.regionFromDaemon) || allowList.contains(where: { $0.utf8.elementsEqual(f.key.utf8) }) {
                context.append(.init(key: f.key, value: f.value.json))
            } else {
                unrecorded &+= 1
            }
        }
        var members: [JSONObject.Member] = [
            .init(key: "format", value: .int(format)),
            .init(key: "method", value: .string(r.method)),
            .init(key: "at", value: .string(at)),
            .init(key: "principal", value: r.request.principal.json),
            .init(key: "action", value: r.request.action.json),
            .init(key: "resource", value: r.request.resource.json),
            .init(key: "context", value: .object(JSONObject(context))),
        ]
        if unrecorded > 0 { members.append(.init(key: "context_unrecorded", value: .int(unrecorded))) }
        if r.request.context["region"] != nil {
            members.append(.init(key: "region_from", value: .string(r.regionFromDaemon ? "daemon" : "caller")))
        }
        if !r.requestEntities.isEmpty {
            members.append(.init(key: "entities", value: .array(r.requestEntities.map(entityJSON))))
        }
        return bounded(.object(JSONObject(members)), r.method, at)
    }

    /// `input` when its canonical JSON fits `maxBytes`, else a not-replayable record with its size.
    static func bounded(_ input: JSON, _ method: String, _ at: String) -> JSON {
        var w = JSONWriter(capacity: 512)
        w.value(input)
        if w.bytes.count > maxBytes {
            var o = notReplayable(method, at, "the request is over the \(maxBytes)-byte bound of a recorded request")
            if case .object(var m) = o { m.append("bytes", .int(Int64(w.bytes.count))); o = .object(m) }
            return o
        }
        return input
    }

    /// A transfer's params as the caller sent them: the daemon puts every one of them, and
    /// nothing of its own, into the request it decides (`GuardrailMethods.transfer`).
    static func transfer(_ r: DecisionRecord, _ at: String) -> JSON {
        var params: [JSONObject.Member] = [.init(key: "principal", value: .string(r.request.principal.description)),
                                           .init(key: "dataset", value: .string(r.request.resource.id.value))]
        for key in ["from", "to", "kind", "basis"] {
            if case .string(let s)? = r.request.context[key] { params.append(.init(key: key, value: .string(s.description))) }
        }
        return .object(JSONObject([.init(key: "format", value: .int(format)), .init(key: "method", value: .string(r.method)),
                                   .init(key: "at", value: .string(at)), .init(key: "params", value: .object(JSONObject(params)))]))
    }

    static func notReplayable(_ method: String, _ at: String, _ why: String) -> JSON {
        .object(JSONObject([.init(key: "format", value: .int(format)), .init(key: "method", value: .string(method)),
                            .init(key: "at", value: .string(at)), .init(key: "not_replayable", value: .string(why))]))
    }

    /// Cedar's entities JSON form of one entity (what `decide` takes in `entities`).
    static func entityJSON(_ e: Entity) -> JSON {
        .object(JSONObject([.init(key: "uid", value: e.uid.json),
                            .init(key: "attrs", value: .object(e.attrs.json)),
                            .init(key: "parents", value: .array(e.parents.map(\.json))),
                            .init(key: "tags", value: .object(e.tags.json))]))
    }
}
