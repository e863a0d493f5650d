import CustosJSON
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
///       "socket": {"mode": "0660", "group": 1234},
///       "limits": {"max_connections": 1024, "max_line_bytes": 1048576, "batch_limit": 1000,
///                  "idle_timeout_seconds": 60, "write_timeout_seconds": 10, "drain_timeout_seconds": 10,
///                  "line_timeout_seconds": 10, "max_connections_per_uid": 128, "reserved_admin_connections": 16,
///                  "max_request_entities": 1000, "max_request_entity_depth": 32, "max_request_ancestors": 100000},
///       "access": {"default": "anyone",
///                  "methods": {"policy.reload": {"allow_uids": [0], "allow_gids": [990]}}}
///     }
///
/// Every member is optional; unknown keys are errors so a misspelt limit is never ignored.
public struct DaemonConfig: Sendable {
    public var socketMode: mode_t = 0o660
    public var socketGroup: gid_t? = nil
    public var limits = DaemonLimits()
    public var access: AccessPolicy

    /// Who may call what when the configuration says nothing: everything is open to whoever can
    /// open the socket (the socket's mode and group are the first gate), except `policy.reload`
    /// and the audit methods (the log says who read which patient's data), which only the
    /// daemon's own uid may call.
    public static func defaultAccess(adminUID: UInt32 = getuid()) -> AccessPolicy {
        // Changes of state and the audit trail are for the daemon's own user unless the
        // configuration names others; decisions and status are for anyone who can open the socket.
        AccessPolicy(defaultRule: .anyone, entries: ["policy.reload", "audit.query", "audit.checkpoint",
                                                     "consent.grant", "consent.withdraw", "hold.set", "hold.release",
                                                     // The inventory decides where named jobs may run.
                                                     "nodes.sync", "nodes.remove"].map {
            .init(method: $0, rule: AccessRule(allowedUIDs: [adminUID]))
        })
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
        try r.onlyKeys(root, "", ["socket", "limits", "access"])
        if let s = root["socket"] {
            let o = try r.object(s, "socket")
            try r.onlyKeys(o, "socket", ["mode", "group"])
            if let m = o["mode"] { c.socketMode = try r.mode(m, "socket.mode") }
            if let g = o["group"] { c.socketGroup = try r.id(g, "socket.group") }
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
            try r.onlyKeys(o, "access", ["default", "methods"])
            if let d = o["default"] { c.access.defaultRule = try r.rule(d, "access.default") }
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
