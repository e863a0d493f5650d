import CustosJSON
import CustosGateway
import FleetStore
import CustosServer
import Foundation
import Glibc

/// Limits that protect the daemon from one caller. Defaults suit a node-local daemon.
public struct DaemonLimits: Sendable, Equatable {
    public var maxConnections: Int = 1024
    public var maxLineBytes: Int = 1 << 20
    public var batchLimit: Int = DecisionMethods.defaultBatchLimit
    public var idleTimeoutSeconds: Int = 60
    public var writeTimeoutSeconds: Int = 10
    public var drainTimeoutSeconds: Int = 10
    // Bounds on what one caller can make the daemon hold or compute (docs/security.md, Limits).
    /// A line must be complete this long after its first byte (the idle timeout is between lines).
    public var lineTimeoutSeconds: Int = 10
    /// Connections one uid may hold at once; the admin uids are bound only by `maxConnections`.
    public var maxConnectionsPerUID: Int = 128
    /// Of `maxConnections`, slots only the admin uids may take, so `health` and `policy.reload`
    /// work while others hold every other slot (unset: at most an eighth of `maxConnections`).
    public var reservedAdminConnections: Int = 16
    /// Entities one `decide` may bring, the longest chain among them, and the entries of
    /// their ancestor sets in all.
    public var maxRequestEntities: Int = 1_000
    public var maxRequestEntityDepth: Int = 32
    public var maxRequestAncestors: Int = 100_000
    public init() {}
}

/// The `--config FILE` document (see docs/operations.md):
///
///     {
///       "socket": {"mode": "0660", "group": 1234, "spin_microseconds": 50},
///       "limits": {"max_connections": 1024, "max_line_bytes": 1048576, "batch_limit": 1000,
///                  "idle_timeout_seconds": 60, "write_timeout_seconds": 10, "drain_timeout_seconds": 10,
///                  "line_timeout_seconds": 10, "max_connections_per_uid": 128, "reserved_admin_connections": 16,
///                  "max_request_entities": 1000, "max_request_entity_depth": 32, "max_request_ancestors": 100000},
///       "access": {"admin_uids": [0], "admin_gids": [990],
///                  "methods": {"nodes.sync": {"allow_uids": [1200]}}}
///     }
///
/// Every member is optional; unknown keys are errors so a misspelt limit is never ignored.
public struct DaemonConfig: Sendable {
    public var socketMode: mode_t = 0o660
    public var socketGroup: gid_t? = nil
    /// `socket.spin_microseconds`: how long a connection polls for its next request before it
    /// sleeps (`ServerConfiguration.spinBeforeSleep`); 0 turns polling off.
    public var socketSpinMicroseconds = 50
    public var limits = DaemonLimits()
    public var access: AccessPolicy
    /// The region this daemon decides for (`region`, or `custos serve --region`); nil leaves the
    /// region of a `decide` to the caller's `context.region` (see docs/security.md).
    public var region: String? = nil
    /// The HTTP front door (`http`: listeners, limits, gateway mappings; docs/gateways.md); nil
    /// when not configured.
    public var http: HTTPConfig? = nil
    /// Where consent and holds live (`state`, docs/fleet.md): the embedded journal by default.
    public var state = StateConfig()
    /// `audit.record_requests`: each decision's audit entry keeps what is needed to decide it
    /// again (`ReplayInput`; docs/audit.md, "Recorded requests"). Off by default: it keeps
    /// more personal data in the log.
    public var recordRequests = false

    /// The methods whoever can open the socket may call when the configuration says nothing:
    /// the decisions and `health`. Everything else reads or changes consent, holds, the
    /// inventory, the audit trail or the policy state, and is for the admins only.
    public static let openMethods = ["decide", "decide.batch", "place", "transfer", "health"]

    /// Who may call what when the configuration says nothing. The fallback rule is the admin
    /// rule (the daemon's own uid, widened by `access.admin_uids`/`admin_gids`), so a method
    /// added later is closed until it is listed in `openMethods`; the socket's mode and group
    /// are the gate in front of the open ones.
    public static func defaultAccess(adminUID: UInt32 = getuid()) -> AccessPolicy {
        let admins = AccessRule(allowedUIDs: [adminUID], allowedGIDs: [])
        let open = openMethods.map { AccessPolicy.Entry(method: $0, rule: .anyone) }
        // Request entities describe the world a decision rests on: only for callers an
        // operator names (a privilege is never granted by a default rule; this says so).
        return AccessPolicy(defaultRule: admins, entries: open + [AccessPolicy.Entry(method: "entities", rule: .nobody)])
    }

    public init(access: AccessPolicy = DaemonConfig.defaultAccess()) { self.access = access }

    public static func load(file: String) throws(ConfigError) -> DaemonConfig {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigError(file: file, key: "", "cannot be read; check the path given to --config")
        }
        return try parse(text: String(decoding: data, as: UTF8.self), file: file)
    }

    public static func parse(text: String, file: String = "config") throws(ConfigError) -> DaemonConfig {
        let json: JSON
        do { json = try JSON.parse(text) } catch {
            throw ConfigError(file: file, key: "", "invalid JSON at \(error.line):\(error.column): \(error.message)")
        }
        return try parse(json: json, file: file)
    }

    public static func parse(json: JSON, file: String = "config") throws(ConfigError) -> DaemonConfig {
        var c = DaemonConfig()
        let r = ConfigReader(file: file)
        let root = try r.object(json, "")
        try r.onlyKeys(root, "", ["socket", "limits", "access", "region", "http", "state", "audit"])
        if let a = root["audit"] {
            let o = try r.object(a, "audit")
            try r.onlyKeys(o, "audit", ["record_requests"])
            if let v = o["record_requests"] {
                guard case .bool(let b) = v else { throw r.fail("audit.record_requests", "expected true or false, got \(v.kindName)") }
                c.recordRequests = b
            }
        }
        if let st = root["state"] {
            let o = try r.object(st, "state")
            try r.onlyKeys(o, "state", ["store", "max_staleness_ms", "witness_interval_ms"])
            if let v = o["store"] {
                guard case .string(let uri) = v else { throw r.fail("state.store", "expected \"embedded\" or a postgres:// URI, got \(v.kindName)") }
                c.state.store = try StateConfig.store(uri, file: file)
            }
            if let v = o["max_staleness_ms"] { c.state.maxStalenessMs = try r.positive(v, "state.max_staleness_ms", max: 3_600_000) }
            if let v = o["witness_interval_ms"] { c.state.witnessIntervalMs = try r.positive(v, "state.witness_interval_ms", max: 3_600_000) }
            if c.state.store == nil, o["max_staleness_ms"] != nil || o["witness_interval_ms"] != nil {
                throw r.fail(o["max_staleness_ms"] != nil ? "state.max_staleness_ms" : "state.witness_interval_ms",
                             "applies only to a shared store: set state.store to a postgres:// URI (docs/fleet.md)")
            }
        }
        if let h = root["http"] {
            do { c.http = try HTTPConfig.parse(h) } catch { throw ConfigError(file: file, key: error.key, error.message) }
        }
        if let v = root["region"] {
            guard case .string(let name) = v, !name.isEmpty else {
                throw ConfigError(file: file, key: "region", "expected the name of a region of guardrails/regions.json, got \(v.serialized)")
            }
            c.region = name
        }
        if let s = root["socket"] {
            let o = try r.object(s, "socket")
            try r.onlyKeys(o, "socket", ["mode", "group", "spin_microseconds"])
            if let m = o["mode"] { c.socketMode = try r.mode(m, "socket.mode") }
            if let g = o["group"] { c.socketGroup = try r.id(g, "socket.group") }
            if let v = o["spin_microseconds"] {
                guard case .int(let us) = v, (0...1000).contains(us) else {
                    throw r.fail("socket.spin_microseconds", "expected a whole number of microseconds from 0 (never poll) to 1000, got \(v.serialized)")
                }
                c.socketSpinMicroseconds = Int(us)
            }
        }
        if let l = root["limits"] {
            let o = try r.object(l, "limits")
            try r.onlyKeys(o, "limits", ["max_connections", "max_line_bytes", "batch_limit", "idle_timeout_seconds",
                                         "write_timeout_seconds", "drain_timeout_seconds",
                                         "line_timeout_seconds", "max_connections_per_uid", "reserved_admin_connections",
                                         "max_request_entities", "max_request_entity_depth", "max_request_ancestors"])
            if let v = o["max_connections"] { c.limits.maxConnections = try r.positive(v, "limits.max_connections", max: 1 << 20) }
            if let v = o["max_line_bytes"] { c.limits.maxLineBytes = try r.positive(v, "limits.max_line_bytes", max: 1 << 30) }
            if let v = o["batch_limit"] { c.limits.batchLimit = try r.positive(v, "limits.batch_limit", max: 1 << 20) }
            if let v = o["idle_timeout_seconds"] { c.limits.idleTimeoutSeconds = try r.positive(v, "limits.idle_timeout_seconds", max: 1 << 24) }
            if let v = o["write_timeout_seconds"] { c.limits.writeTimeoutSeconds = try r.positive(v, "limits.write_timeout_seconds", max: 1 << 24) }
            if let v = o["drain_timeout_seconds"] { c.limits.drainTimeoutSeconds = try r.positive(v, "limits.drain_timeout_seconds", max: 1 << 24) }
            if let v = o["line_timeout_seconds"] { c.limits.lineTimeoutSeconds = try r.positive(v, "limits.line_timeout_seconds", max: 1 << 24) }
            if let v = o["max_connections_per_uid"] { c.limits.maxConnectionsPerUID = try r.positive(v, "limits.max_connections_per_uid", max: 1 << 20) }
            if let v = o["reserved_admin_connections"] {
                c.limits.reservedAdminConnections = try r.count(v, "limits.reserved_admin_connections", max: c.limits.maxConnections - 1)
            } else {
                // Unset, the reserve leaves most of a small max_connections to everyone else.
                c.limits.reservedAdminConnections = min(c.limits.reservedAdminConnections, c.limits.maxConnections / 8)
            }
            if let v = o["max_request_entities"] { c.limits.maxRequestEntities = try r.positive(v, "limits.max_request_entities", max: 1 << 20) }
            if let v = o["max_request_entity_depth"] { c.limits.maxRequestEntityDepth = try r.positive(v, "limits.max_request_entity_depth", max: 1 << 20) }
            if let v = o["max_request_ancestors"] { c.limits.maxRequestAncestors = try r.positive(v, "limits.max_request_ancestors", max: 1 << 30) }
        }
        if let a = root["access"] {
            let o = try r.object(a, "access")
            if o["default"] != nil {
                // Its old meaning (the rule of every method without its own) would now open the
                // admin methods too: refuse it rather than guess what the operator meant.
                throw r.fail("access.default", "no longer read: decisions and health are open to whoever can open the socket, every other method is for admins; widen the admins with access.admin_uids/admin_gids, or give one method its own rule in access.methods")
            }
            try r.onlyKeys(o, "access", ["admin_uids", "admin_gids", "methods"])
            // Extends the admin rule (the fallback) for every admin method at once; the daemon's
            // own uid stays in it, since it owns the state folder and the signing key anyway.
            if let v = o["admin_uids"] { c.access.defaultRule.allowedUIDs = (c.access.defaultRule.allowedUIDs ?? []) + (try r.ids(v, "access.admin_uids")) }
            if let v = o["admin_gids"] { c.access.defaultRule.allowedGIDs = (c.access.defaultRule.allowedGIDs ?? []) + (try r.ids(v, "access.admin_gids")) }
            if let m = o["methods"] {
                let mo = try r.object(m, "access.methods")
                for member in mo.members {
                    let rule = try r.rule(member.value, "access.methods.\(member.key)")
                    c.access.entries.removeAll { $0.method.utf8.elementsEqual(member.key.utf8) }
                    c.access.entries.append(.init(method: member.key, rule: rule))
                }
            }
        }
        return c
    }
}

/// The `state` member: where consent and holds live (docs/fleet.md).
public struct StateConfig: Sendable, Equatable {
    /// libpq URI of the shared store; nil for the embedded journal in `STATE/guardrails`.
    public var store: String? = nil
    public var maxStalenessMs = FleetOptions.defaultMaxStalenessMs
    public var witnessIntervalMs = FleetOptions.defaultWitnessIntervalMs

    public init() {}

    /// `"embedded"` (nil) or a `postgres://` / `postgresql://` URI libpq accepts and that holds
    /// no password: the configuration file is often readable by more people than the database
    /// should be, so credentials come from libpq's password file or peer authentication.
    static func store(_ text: String, file: String) throws(ConfigError) -> String? {
        if text.utf8.elementsEqual("embedded".utf8) { return nil }
        guard text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") else {
            throw ConfigError(file: file, key: "state.store", "expected \"embedded\" or a postgres:// URI such as postgres:///custos?host=/run/postgresql")
        }
        let options: [String: String]
        do { options = try PGConnInfo.options(text) } catch {
            throw ConfigError(file: file, key: "state.store", "libpq does not accept this URI: \(error.message)")
        }
        if let p = options["password"], !p.isEmpty {
            throw ConfigError(file: file, key: "state.store",
                              "holds a password; keep it out of the configuration: give the daemon's user a password file (PGPASSFILE or ~/.pgpass, mode 0600) or use peer authentication over the Unix socket (docs/fleet.md)")
        }
        return text
    }
}

/// A configuration file that cannot be used: the file, the key, and what to change.
public struct ConfigError: Error, Sendable, CustomStringConvertible, Equatable {
    public var file: String
    public var key: String
    public var message: String

    public init(file: String, key: String, _ message: String) {
        self.file = file; self.key = key; self.message = message
    }

    public var description: String { key.isEmpty ? "\(file): \(message)" : "\(file): \(key): \(message)" }
}

private struct ConfigReader {
    let file: String

    func fail(_ key: String, _ message: String) -> ConfigError { ConfigError(file: file, key: key, message) }

    func object(_ j: JSON, _ key: String) throws(ConfigError) -> JSONObject {
        guard case .object(let o) = j else { throw fail(key, "expected an object, got \(j.kindName)") }
        return o
    }

    func onlyKeys(_ o: JSONObject, _ key: String, _ known: [String]) throws(ConfigError) {
        for k in o.keys where !known.contains(where: { $0.utf8.elementsEqual(k.utf8) }) {
            throw fail(key.isEmpty ? k : "\(key).\(k)", "unknown key; known keys here: \(known.joined(separator: ", "))")
        }
    }

    func positive(_ j: JSON, _ key: String, max: Int) throws(ConfigError) -> Int {
        guard case .int(let v) = j else { throw fail(key, "expected a whole number, got \(j.kindName)") }
        guard v >= 1, v <= Int64(max) else { throw fail(key, "must be between 1 and \(max), got \(v)") }
        return Int(v)
    }

    func count(_ j: JSON, _ key: String, max: Int) throws(ConfigError) -> Int {
        guard case .int(let v) = j else { throw fail(key, "expected a whole number, got \(j.kindName)") }
        guard v >= 0, v <= Int64(max) else { throw fail(key, "must be between 0 and \(max) (below limits.max_connections), got \(v)") }
        return Int(v)
    }

    func id(_ j: JSON, _ key: String) throws(ConfigError) -> UInt32 {
        guard case .int(let v) = j, v >= 0, v <= Int64(UInt32.max) else {
            throw fail(key, "expected a numeric uid/gid (0...\(UInt32.max)), got \(j.serialized)")
        }
        return UInt32(v)
    }

    func ids(_ j: JSON, _ key: String) throws(ConfigError) -> [UInt32] {
        guard case .array(let items) = j else { throw fail(key, "expected an array of numeric ids, got \(j.kindName)") }
        var out: [UInt32] = []
        for (i, item) in items.enumerated() { out.append(try id(item, "\(key)[\(i)]")) }
        return out
    }

    /// Octal in a string ("0660"), since JSON has no octal numbers and 660 decimal is a trap.
    func mode(_ j: JSON, _ key: String) throws(ConfigError) -> mode_t {
        guard case .string(let s) = j, let v = parseOctalMode(s) else {
            throw fail(key, "expected an octal mode string such as \"0660\", got \(j.serialized)")
        }
        return v
    }

    /// "anyone", "nobody", or {allow_uids, allow_gids, deny_uids, deny_gids}.
    func rule(_ j: JSON, _ key: String) throws(ConfigError) -> AccessRule {
        switch j {
        case .string("anyone"): return .anyone
        case .string("nobody"): return .nobody
        case .object(let o):
            try onlyKeys(o, key, ["allow_uids", "allow_gids", "deny_uids", "deny_gids"])
            var r = AccessRule()
            if let v = o["allow_uids"] { r.allowedUIDs = try ids(v, "\(key).allow_uids") }
            if let v = o["allow_gids"] { r.allowedGIDs = try ids(v, "\(key).allow_gids") }
            if let v = o["deny_uids"] { r.deniedUIDs = try ids(v, "\(key).deny_uids") }
            if let v = o["deny_gids"] { r.deniedGIDs = try ids(v, "\(key).deny_gids") }
            // Naming one allow list means "only these": the other list must not default to "all".
            if r.allowedUIDs != nil || r.allowedGIDs != nil {
                r.allowedUIDs = r.allowedUIDs ?? []
                r.allowedGIDs = r.allowedGIDs ?? []
            }
            return r
        default:
            throw fail(key, "expected \"anyone\", \"nobody\" or {allow_uids, allow_gids, deny_uids, deny_gids}, got \(j.kindName)")
        }
    }
}

/// "0660", "660" or "0o660" to a mode; nil when not octal or above 0777.
public func parseOctalMode(_ text: String) -> mode_t? {
    var s = Substring(text)
    if s.hasPrefix("0o") { s = s.dropFirst(2) }
    guard !s.isEmpty, s.count <= 4 else { return nil }
    var v: mode_t = 0
    for c in s.utf8 {
        guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "7") else { return nil }
        v = v * 8 + mode_t(c - UInt8(ascii: "0"))
    }
    return v <= 0o777 ? v : nil
}
