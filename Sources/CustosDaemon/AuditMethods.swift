import AuditLog
import CustosJSON
import CustosServer

/// `audit.query` and `audit.checkpoint`: the audit log for tools on the socket. Both read the
/// files under `<state>/audit` as `custos audit query` and `custos audit checkpoint` do; they
/// are restricted to the daemon's own uid by default (`DaemonConfig.defaultAccess`), because
/// the log says who looked at which patient's data.
public enum AuditMethods {
    /// Matches returned when `limit` is not given, and the most one call may ask for.
    public static let defaultQueryLimit = 100
    public static let maxQueryLimit = 10_000

    public static func register(into table: inout MethodTable, _ services: DaemonServices) {
        table.register("audit.query") { params, _ throws(RPCError) in
            try query(params, logDirectory: try logDirectory(services))
        }
        table.register("audit.checkpoint") { params, _ throws(RPCError) in
            try params.none(method: "audit.checkpoint")
            return try checkpoint(logDirectory: try logDirectory(services))
        }
    }

    private static func logDirectory(_ services: DaemonServices) throws(RPCError) -> String {
        guard let state = services.stateDirectory else {
            throw .notReady("the daemon runs without a state folder, so it keeps no audit log")
        }
        return AuditState.logDirectory(state: state)
    }

    private static let filterKeys = ["principal", "resource", "action", "method", "decision_id", "decision",
                                     "since", "until", "limit"]

    /// `{principal?, resource?, action?, method?, decision_id?, decision?, since?, until?, limit?}`
    /// to `{"entries": [...], "count": n, "truncated": bool}`; entries oldest first.
    public static func query(_ params: Params, logDirectory: String) throws(RPCError) -> JSON {
        var q = AuditQuery()
        try params.only(filterKeys, method: "audit.query")
        if let o = params.object {
            func str(_ k: String) throws(RPCError) -> String? {
                guard let v = o[k], !v.isNull else { return nil }
                guard case .string(let s) = v else { throw .invalidParams(field: "params.\(k)", "expected a string, got \(v.kindName)") }
                return s
            }
            func time(_ k: String) throws(RPCError) -> AuditTimestamp? {
                guard let s = try str(k) else { return nil }
                guard let t = AuditTimestamp(rfc3339: s) else {
                    throw .invalidParams(field: "params.\(k)", "expected an RFC 3339 UTC time such as 2026-01-31T08:00:00Z, got \"\(s)\"")
                }
                return t
            }
            q.principal = try str("principal")
            q.resource = try str("resource")
            q.action = try str("action")
            q.method = try str("method")
            q.decisionID = try str("decision_id")
            if let d = try str("decision") {
                guard let v = AuditDecision(rawValue: d) else { throw .invalidParams(field: "params.decision", "expected \"allow\" or \"deny\", got \"\(d)\"") }
                q.decision = v
            }
            q.since = try time("since")
            q.until = try time("until")
            if let l = o["limit"], !l.isNull {
                guard case .int(let n) = l, n >= 1, n <= Int64(maxQueryLimit) else {
                    throw .invalidParams(field: "params.limit", "expected a whole number from 1 to \(maxQueryLimit), got \(l.serialized)")
                }
                q.limit = Int(n)
            }
        }
        let limit = q.limit ?? defaultQueryLimit
        // One more than asked, to tell the caller whether there is more.
        q.limit = limit + 1
        var found: [AuditEntry]
        do { found = try q.run(stateDirectory: logDirectory) } catch {
            throw .internalError("audit log could not be read: \(error.description)")
        }
        let truncated = found.count > limit
        if truncated { found.removeLast(found.count - limit) }
        var entries: [JSON] = []
        entries.reserveCapacity(found.count)
        for e in found {
            do { entries.append(try JSON.parse(e.canonicalJSON())) } catch {
                throw .internalError("audit entry \(e.seq) could not be re-read: \(error)")
            }
        }
        return .object(JSONObject([
            "entries": .array(entries),
            "count": .int(Int64(entries.count)),
            "truncated": .bool(truncated),
        ]))
    }

    /// `{"checkpoint": note text, "size": entries covered}`, both null before the first one.
    public static func checkpoint(logDirectory: String) throws(RPCError) -> JSON {
        let note: String?
        do { note = try AuditState.latestCheckpointNote(logDirectory: logDirectory) } catch {
            throw .internalError("audit checkpoints could not be read: \(error.description)")
        }
        guard let note else { return .object(JSONObject(["checkpoint": .null, "size": .null])) }
        // The note's body is origin, size, root hash: one per line.
        let lines = note.split(separator: "\n", maxSplits: 3, omittingEmptySubsequences: false)
        guard lines.count >= 3, let size = Int64(lines[1]) else {
            throw .internalError("the newest audit checkpoint is malformed; run `custos audit verify`")
        }
        return .object(JSONObject(["checkpoint": .string(note), "size": .int(size)]))
    }
}
