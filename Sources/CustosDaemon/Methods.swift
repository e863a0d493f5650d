import AuditLog
import CustosJSON
import CustosServer
import CustosVersion

/// `health`, `policy.status` and `policy.reload`.
public enum StatusMethods {
    /// JSON-RPC code of a reload that failed (the previous policies stay in service).
    public static let reloadFailedCode: Int64 = -32004

    public static func register(into table: inout MethodTable, _ services: DaemonServices) {
        table.register("health") { params, caller throws(RPCError) in
            try params.none(method: "health")
            return health(services, caller: caller)
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
    /// log) can keep records. Anyone who can open the socket may ask, so a load error (which
    /// can quote the folder's files) is named only to a caller that may read `policy.status`;
    /// nil is an in-process caller.
    public static func health(_ services: DaemonServices, caller: CallContext? = nil) -> JSON {
        let store = services.store
        let snapshot = store.snapshot
        var reasons: [JSON] = []
        var ready = snapshot != nil
        if !ready {
            let detailed = caller.map {
                services.access.rule(for: "policy.status").permits(uid: $0.uid, gid: $0.gid, groups: $0.groups)
            } ?? true
            reasons.append(.string(store.lastReloadFailure.map {
                detailed ? "policies not loaded: \($0.error.message)" : "policies not loaded (policy.status has the error)"
            } ?? "policies not loaded yet"))
        }
        if let why = services.recorder?.unavailable() {
            ready = false
            reasons.append(.string("audit log unavailable: \(why)"))
        }
        var members: [JSONObject.Member] = [
            .init(key: "live", value: .bool(true)), .init(key: "ready", value: .bool(ready)),
            .init(key: "reasons", value: .array(reasons)),
            .init(key: "revision", value: snapshot.map { .string($0.revision) } ?? .null),
            .init(key: "version", value: .string(CustosVersion.string)),
            // A stale shared store leaves the daemon ready: decisions that depend on neither
            // consent nor holds go on, and those that do deny `state.stale` (docs/fleet.md).
            .init(key: "state", value: GuardrailState.forStateDirectory(services.stateDirectory).healthJSON)]
        if let measure = services.auditDiskUsage {
            members.append(.init(key: "audit_disk", value: measure().map(diskJSON) ?? .null))
        }
        return .object(JSONObject(members))
    }

    /// `health.audit_disk`: the audit log's room (see `AuditDiskUsage`); null when the folder
    /// cannot be measured. The same figures suit a metrics exporter, one gauge per member.
    public static func diskJSON(_ u: AuditDiskUsage) -> JSON {
        .object(JSONObject([
            "bytes": .int(Int64(clamping: u.bytes)),
            "segments": .int(Int64(u.segments)),
            "sealed_segments": .int(Int64(u.sealedSegments)),
            "first_entry": .int(Int64(clamping: u.firstEntry)),
            "archived_through": u.archivedThrough.map { .int(Int64(clamping: $0)) } ?? .null,
            "unarchived_sealed_segments": .int(Int64(u.unarchivedSealedSegments)),
            "filesystem_bytes": .int(Int64(clamping: u.filesystemBytes)),
            "filesystem_available_bytes": .int(Int64(clamping: u.filesystemAvailableBytes)),
        ]))
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
            "guardrails_disabled": s?.disabledReason.map { .string($0) } ?? .null,
            "schema": s?.files.first(where: PolicyFolder.isSchemaFile).map { .string($0) } ?? .null,
            "validate_requests": .bool(s?.requestSchema != nil),
            "templates": .int(Int64(s?.templates.count ?? 0)),
            "links": .int(Int64(s?.policies.policies.count(where: { $0.link != nil }) ?? 0)),
            "warnings": .array((s?.warnings ?? []).map { .string($0) }),
            "last_reload_error": failure,
            "source": .string(store.sourceKind),
            "bundle": s?.bundle?.json ?? .null,
            "bundle_rejections": .array(store.bundleRejections.map(\.json)),
        ]))
    }
}
