import CustosJSON
import CustosServer

/// `health`, `policy.status` and `policy.reload`.
public enum StatusMethods {
    /// JSON-RPC code of a reload that failed (the previous policies stay in service).
    public static let reloadFailedCode: Int64 = -32004

    public static func register(into table: inout MethodTable, _ services: DaemonServices) {
        table.register("health") { params, _ throws(RPCError) in
            try params.none(method: "health")
            return health(services)
        }
        table.register("policy.status") { params, _ throws(RPCError) in
            try params.none(method: "policy.status")
            return status(services.store)
        }
        table.register("policy.reload") { params, caller throws(RPCError) in
            try params.none(method: "policy.reload")
            let before = services.store.snapshot?.revision
            switch services.reload(caller) {
            case .success(let s):
                return .object(JSONObject([
                    "reloaded": .bool(true),
                    "revision": .string(s.revision),
                    "previous_revision": before.map { .string($0) } ?? .null,
                    "changed": .bool(before != s.revision),
                    "policies": .int(Int64(s.policyCount)),
                    "entities": .int(Int64(s.entityCount)),
                ]))
            case .failure(let e):
                let kept = before.map { "still serving \($0)" } ?? "no policies are loaded"
                throw RPCError(code: reloadFailedCode, message: "reload failed, \(kept): \(e.message)",
                               data: .object(JSONObject(["revision": before.map { .string($0) } ?? .null,
                                                         "error": .string(e.message)])))
            }
        }
    }

    /// Live whenever it answers; ready once a policy set is loaded and the recorder (the audit
    /// log) can keep records.
    public static func health(_ services: DaemonServices) -> JSON {
        let store = services.store
        var reasons: [JSON] = []
        var ready = store.snapshot != nil
        if !ready {
            reasons.append(.string(store.lastReloadFailure.map { "policies not loaded: \($0.error.message)" }
                                   ?? "policies not loaded yet"))
        }
        if let why = services.recorder?.unavailable() {
            ready = false
            reasons.append(.string("audit log unavailable: \(why)"))
        }
        return .object(JSONObject(["live": .bool(true), "ready": .bool(ready), "reasons": .array(reasons)]))
    }

    public static func status(_ store: PolicyStore) -> JSON {
        let s = store.snapshot
        let failure: JSON = store.lastReloadFailure.map {
            .object(JSONObject(["at": .string($0.at.rfc3339), "message": .string($0.error.message)]))
        } ?? .null
        let guardrails: String
        if let s, case .active(let files) = s.guardrails.status {
            guardrails = "active (\(files.joined(separator: ", ")))"
        } else {
            guardrails = "inactive (no configuration)"
        }
        return .object(JSONObject([
            "ready": .bool(s != nil),
            "directory": .string(store.directory),
            "revision": s.map { .string($0.revision) } ?? .null,
            "loaded_at": s.map { .string($0.loadedAt.rfc3339) } ?? .null,
            "policies": .int(Int64(s?.policyCount ?? 0)),
            "entities": .int(Int64(s?.entityCount ?? 0)),
            "files": .array((s?.files ?? []).map { .string($0) }),
            "guardrails": .string(guardrails),
            "last_reload_error": failure,
        ]))
    }
}
