import Cedar
import CustosJSON
import CustosServer
import Guardrails

/// `retention.status` (one dataset, now) and `retention.due` (every dataset due for disposal as
/// of a date). Both report; neither decides, so `as_of` may be any date.
extension GuardrailMethods {
    static func registerRetention(into table: inout MethodTable, _ services: DaemonServices, _ state: GuardrailState) {
        table.register("retention.status") { params, _ throws(RPCError) in
            try params.only(["dataset"], method: "retention.status")
            let id = try params.string("dataset")
            let snapshot = try services.readySnapshot()
            let found: DatasetAttributes?
            do throws(Denial) { found = try dataset(id, in: snapshot.entities) } catch {
                throw .invalidParams(field: "params.dataset", error.description)
            }
            guard let data = found else {
                throw .invalidParams(field: "params.dataset", "no data entity Dataset::\"\(id)\" in entities.json")
            }
            let consent = try state.reportableSnapshot()
            let now = CedarDatetime.daemonNow(services.clock())
            let st = RetentionCheck.status(data, config: snapshot.guardrails, holds: consent.holdMatters(dataset: id, at: now),
                                           now: now)
            return try json(st)
        }
        table.register("retention.due") { params, _ throws(RPCError) in
            var asOf = CedarDatetime.daemonNow(services.clock())
            try params.only(["as_of"], method: "retention.due")
            if let j = try params.optional("as_of"), !j.isNull {
                guard case .string(let s) = j, let d = try? CedarDatetime.parse(s) else {
                    throw .invalidParams(field: "params.as_of", "expected a date \"YYYY-MM-DD\" or an RFC 3339 UTC time")
                }
                asOf = d
            }
            let snapshot = try services.readySnapshot()
            let consent = try state.reportableSnapshot()
            var datasets: [DatasetAttributes] = []
            var invalid: [JSON] = []
            // Sorted so the listing is stable across reloads of the same folder.
            for e in snapshot.entities.all.sorted(by: { $0.uid < $1.uid }) where e.uid.type == EntityType(datasetType) {
                do throws(Denial) {
                    if let d = try DatasetAttributes(entity: e) { datasets.append(d) }
                } catch {
                    invalid.append(error.json)
                }
            }
            let due = RetentionCheck.dueForDisposal(datasets, config: snapshot.guardrails,
                                                    holds: { consent.holdMatters(dataset: $0, at: asOf) }, asOf: asOf)
            var out: [JSON] = []
            for st in due { out.append(try json(st)) }
            return .object(JSONObject(["as_of": .string(asOf.description), "due": .array(out),
                                       "invalid": .array(invalid)]))
        }
    }

    /// The library writes the status; parsed back to hand the table a value.
    static func json(_ st: RetentionStatus) throws(RPCError) -> JSON {
        var w = JSONWriter()
        w.retentionStatus(st)
        do { return try JSON.parse(w.bytes) } catch {
            throw RPCError(code: -32603, message: "internal error: retention status did not serialise: \(error)")
        }
    }
}
