import CustosJSON

/// The `http` member of the daemon's `--config` file: listeners, limits, and one mapping per
/// calling gateway (docs/gateways.md). Read at start only; unknown keys are refused.
public struct HTTPConfig: Sendable {
    public var listeners: [ListenerConfig] = []
    public var limits = HTTPLimits()
    public var gateways: [GatewayConfig] = []

    public init() {}

    public struct ListenerConfig: Sendable, Equatable {
        public enum Address: Sendable, Equatable {
            case unix(path: String, mode: UInt32, group: UInt32?)
            /// A numeric loopback address and port (0: the kernel picks one).
            case tcp(host: String, port: UInt16)
        }
        public var address: Address
        /// The identity given to TCP callers (none on a Unix socket: the kernel's is used).
        public var identity: HTTPIdentity
    }
}

/// What kind of caller a gateway mapping serves: its request and reply shapes.
public enum GatewayKind: String, Sendable, CaseIterable {
    /// MinIO's access management plugin: OPA data API, `policy.Args` as `input`.
    case minio
    /// Ceph RGW's OPA hook: OPA data API, RGW's request dump as `input`.
    case rgw
    /// Envoy's ext_authz filter in HTTP service mode: a copy of the client's request.
    case envoy
    /// nginx `auth_request`: a subrequest naming the original URI and method in headers.
    case nginx
    /// The Kubernetes scheduler extender's filter verb: `ExtenderArgs` in, `ExtenderFilterResult`
    /// out, onto `place`.
    case kubernetes

    var isOPA: Bool { self == .minio || self == .rgw }
}

/// Where a fact of the decision (purpose, region) comes from on this path, tried in order.
public enum FactSource: Sendable, Equatable {
    /// The same for every request of this gateway.
    case value(String)
    /// Per S3 account (access key or user): account -> value.
    case account([String: String])
    /// A claim of MinIO's `input.claims` (the STS session's JWT claims): a string, or the
    /// first string of an array.
    case claim(String)
    /// An STS session tag: `input.claims["https://aws.amazon.com/tags"].principal_tags[name]`, one string.
    case sessionTag(String)
    /// A request header the proxy in front sets (Envoy, nginx); trusted because configured.
    case header(String)
}

/// One route from what a caller asks about to the Cedar resource it means.
public struct ResourceRoute: Sendable, Equatable {
    /// S3-shaped gateways: the bucket, and a key prefix ("" matches the bucket itself too).
    public var bucket: String?
    public var prefix: String
    /// Plain HTTP gateways (`s3: false`): a prefix of the request path.
    public var pathPrefix: String?
    public var resourceType: String
    public var resourceID: String
}

public struct GatewayConfig: Sendable {
    public var name: String
    public var kind: GatewayKind
    /// OPA data path served (`POST /v1/data/<path>`); minio and rgw only.
    public var dataPath: String
    /// MinIO's reply form: `{"result": bool}` (false) or `{"result": {"allow": bool}}` (true).
    public var resultObject = false
    /// Envoy and nginx: whether the proxied requests are S3 REST calls (the action is derived
    /// from method, path and query, then mapped through `actions`) or plain HTTP (the method is
    /// the key of `actions`, the path is matched against `path_prefix` routes).
    public var s3 = false
    /// Cedar action id (of type `Action`) per S3 action (`s3:GetObject`) or HTTP method (`GET`).
    public var actions: [String: String] = [:]
    public var resources: [ResourceRoute] = []
    public var principalType = "User"
    /// Envoy and nginx: the header a trusted proxy sets to the end caller's identity.
    public var principalHeader: String?
    public var purpose: [FactSource] = []
    public var region: [FactSource] = []
    /// kubernetes: the pod annotations naming the job's principal (a Cedar reference such as
    /// `User::"carol"`), study, purpose, datasets (comma-separated ids) and GxP flag (`"true"`).
    public var podAnnotations = PodAnnotations()
    /// kubernetes: the node label giving the region of nodes sent as objects (`Nodes`); nodes
    /// sent by name (`NodeNames`, `nodeCacheCapable: true`) take theirs from the inventory.
    public var regionLabel: String?

    public struct PodAnnotations: Sendable, Equatable {
        public var principal = "custos.io/principal"
        public var study = "custos.io/study"
        public var purpose = "custos.io/purpose"
        public var datasets = "custos.io/datasets"
        public var gxp = "custos.io/gxp"
    }
}

/// A configuration that cannot be used: the key (`http.gateways.minio.actions`) and what to change.
public struct GatewayConfigError: Error, Sendable, CustomStringConvertible, Equatable {
    public var key: String
    public var message: String
    public init(key: String, _ message: String) { self.key = key; self.message = message }
    public var description: String { "\(key): \(message)" }
}

extension HTTPConfig {
    /// Reads the `http` member; `key` is its path for messages.
    public static func parse(_ json: JSON, key root: String = "http") throws(GatewayConfigError) -> HTTPConfig {
        var c = HTTPConfig()
        let o = try object(json, root)
        try onlyKeys(o, root, ["listeners", "limits", "gateways"])
        if let l = o["listeners"] {
            guard case .array(let items) = l else { throw GatewayConfigError(key: "\(root).listeners", "expected an array of listeners") }
            for (i, item) in items.enumerated() { c.listeners.append(try listener(item, "\(root).listeners[\(i)]")) }
        }
        if let l = o["limits"] {
            let k = "\(root).limits"
            let lo = try object(l, k)
            try onlyKeys(lo, k, ["max_connections", "max_connections_per_address", "max_header_bytes", "max_body_bytes", "timeout_seconds"])
            if let v = lo["max_connections"] { c.limits.maxConnections = try positive(v, "\(k).max_connections", max: 1 << 16) }
            if let v = lo["max_connections_per_address"] { c.limits.maxConnectionsPerAddress = try positive(v, "\(k).max_connections_per_address", max: 1 << 16) }
            if let v = lo["max_header_bytes"] { c.limits.maxHeaderBytes = try positive(v, "\(k).max_header_bytes", max: 1 << 20, min: 4096) }
            if let v = lo["max_body_bytes"] { c.limits.maxBodyBytes = try positive(v, "\(k).max_body_bytes", max: 1 << 26) }
            if let v = lo["timeout_seconds"] { c.limits.timeoutSeconds = try positive(v, "\(k).timeout_seconds", max: 3600) }
        }
        if let g = o["gateways"] {
            let go = try object(g, "\(root).gateways")
            for m in go.members { c.gateways.append(try gateway(m.key, m.value, "\(root).gateways.\(m.key)")) }
        }
        var paths: [String] = []
        for g in c.gateways where g.kind.isOPA {
            if paths.contains(g.dataPath) {
                throw GatewayConfigError(key: "\(root).gateways.\(g.name).path", "data path \(g.dataPath) is served by another gateway already")
            }
            paths.append(g.dataPath)
        }
        if !c.gateways.isEmpty && c.listeners.isEmpty {
            throw GatewayConfigError(key: "\(root).listeners", "gateways are configured but no listener serves them; add {\"unix\": PATH} or {\"tcp\": \"127.0.0.1:PORT\", \"uid\": N, \"gid\": N}")
        }
        return c
    }

    static func listener(_ j: JSON, _ key: String) throws(GatewayConfigError) -> ListenerConfig {
        let o = try object(j, key)
        if let u = o["unix"] {
            try onlyKeys(o, key, ["unix", "mode", "group"])
            guard case .string(let path) = u, !path.isEmpty else { throw GatewayConfigError(key: "\(key).unix", "expected a socket path") }
            var mode: UInt32 = 0o660
            if let m = o["mode"] {
                guard case .string(let s) = m, let v = octal(s) else {
                    throw GatewayConfigError(key: "\(key).mode", "expected an octal mode string such as \"0660\", got \(m.serialized)")
                }
                mode = v
            }
            var group: UInt32? = nil
            if let g = o["group"] { group = try id(g, "\(key).group") }
            return ListenerConfig(address: .unix(path: path, mode: mode, group: group), identity: .peerCredentials)
        }
        if let t = o["tcp"] {
            try onlyKeys(o, key, ["tcp", "uid", "gid"])
            guard case .string(let addr) = t, let colon = addr.utf8.lastIndex(of: UInt8(ascii: ":")) else {
                throw GatewayConfigError(key: "\(key).tcp", "expected \"127.0.0.1:PORT\" or \"[::1]:PORT\"")
            }
            var host = String(addr[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard let port = UInt16(addr[addr.index(after: colon)...]) else {
                throw GatewayConfigError(key: "\(key).tcp", "expected a port number after the colon, got \(addr)")
            }
            guard host.hasPrefix("127.") || host == "::1" else {
                throw GatewayConfigError(key: "\(key).tcp", "\(host) is not a loopback address: TCP callers have no kernel identity, so only 127.0.0.0/8 and ::1 may be served (put a TLS-terminating proxy on the same machine in front for remote callers)")
            }
            guard let u = o["uid"], let g = o["gid"] else {
                throw GatewayConfigError(key: key, "a TCP listener needs \"uid\" and \"gid\": the identity its callers get for the access rules and the audit log (the kernel cannot tell who connects over TCP)")
            }
            return ListenerConfig(address: .tcp(host: host, port: port),
                                  identity: .configured(uid: try id(u, "\(key).uid"), gid: try id(g, "\(key).gid")))
        }
        throw GatewayConfigError(key: key, "expected {\"unix\": PATH, \"mode\"?, \"group\"?} or {\"tcp\": \"127.0.0.1:PORT\", \"uid\", \"gid\"}")
    }

    static func gateway(_ name: String, _ j: JSON, _ key: String) throws(GatewayConfigError) -> GatewayConfig {
        let o = try object(j, key)
        guard case .string(let k)? = o["kind"], let kind = GatewayKind(rawValue: k) else {
            throw GatewayConfigError(key: "\(key).kind", "expected one of \(GatewayKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var known = ["kind", "actions", "resources", "principal_type", "purpose", "region"]
        switch kind {
        case .minio: known += ["path", "result"]
        case .rgw: known += ["path"]
        case .envoy, .nginx: known += ["s3", "principal_header"]
        case .kubernetes: known = ["kind", "annotations", "region_label"]
        }
        try onlyKeys(o, key, known)
        if kind == .kubernetes { return try kubernetes(name, o, key) }
        guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") }) else {
            throw GatewayConfigError(key: key, "a gateway name is printable ASCII without spaces or slashes")
        }
        var g = GatewayConfig(name: name, kind: kind, dataPath: name)
        if let p = o["path"] {
            guard case .string(var s) = p else { throw GatewayConfigError(key: "\(key).path", "expected the OPA data path, such as \"minio/authz\"") }
            while s.hasPrefix("/") { s.removeFirst() }
            while s.hasSuffix("/") { s.removeLast() }
            guard !s.isEmpty else { throw GatewayConfigError(key: "\(key).path", "the data path is empty") }
            g.dataPath = s
        }
        if let r = o["result"] {
            switch r {
            case .string("bool"): g.resultObject = false
            case .string("object"): g.resultObject = true
            default: throw GatewayConfigError(key: "\(key).result", "expected \"bool\" ({\"result\": true}) or \"object\" ({\"result\": {\"allow\": true}})")
            }
        }
        if let s = o["s3"] {
            guard case .bool(let b) = s else { throw GatewayConfigError(key: "\(key).s3", "expected true or false") }
            g.s3 = b
        }
        if kind.isOPA { g.s3 = true }
        if let t = o["principal_type"] {
            guard case .string(let s) = t, !s.isEmpty else { throw GatewayConfigError(key: "\(key).principal_type", "expected a Cedar entity type such as \"User\"") }
            g.principalType = s
        }
        if let h = o["principal_header"] {
            guard case .string(let s) = h, !s.isEmpty else { throw GatewayConfigError(key: "\(key).principal_header", "expected a header name") }
            g.principalHeader = s
        }
        if !kind.isOPA && g.principalHeader == nil {
            throw GatewayConfigError(key: "\(key).principal_header", "required: the header a trusted proxy sets to the end caller (such as x-forwarded-user); it names the principal and on_behalf_of")
        }
        guard let a = o["actions"] else { throw GatewayConfigError(key: "\(key).actions", "required: which Cedar action each \(g.s3 ? "S3 action" : "HTTP method") means") }
        let ao = try object(a, "\(key).actions")
        for m in ao.members {
            guard case .string(let v) = m.value, !v.isEmpty else { throw GatewayConfigError(key: "\(key).actions.\(m.key)", "expected a Cedar action id such as \"read\"") }
            if g.s3 {
                guard m.key.hasPrefix("s3:") else { throw GatewayConfigError(key: "\(key).actions.\(m.key)", "expected an S3 action name such as s3:GetObject") }
            } else {
                guard ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"].contains(m.key) else {
                    throw GatewayConfigError(key: "\(key).actions.\(m.key)", "expected an HTTP method in capitals (GET, HEAD, PUT, POST, DELETE, PATCH, OPTIONS)")
                }
            }
            g.actions[m.key] = v
        }
        guard let rs = o["resources"], case .array(let items) = rs, !items.isEmpty else {
            throw GatewayConfigError(key: "\(key).resources", "required: a non-empty array of routes to Cedar resources")
        }
        for (i, item) in items.enumerated() {
            let rk = "\(key).resources[\(i)]"
            let ro = try object(item, rk)
            try onlyKeys(ro, rk, g.s3 ? ["bucket", "prefix", "resource"] : ["path_prefix", "resource"])
            guard let res = ro["resource"], case .object(let resO) = res, case .string(let t)? = resO["type"],
                  case .string(let rid)? = resO["id"], resO.count == 2, !t.isEmpty else {
                throw GatewayConfigError(key: "\(rk).resource", "expected {\"type\": \"Dataset\", \"id\": \"...\"}")
            }
            var route = ResourceRoute(bucket: nil, prefix: "", pathPrefix: nil, resourceType: t, resourceID: rid)
            if g.s3 {
                guard case .string(let b)? = ro["bucket"], !b.isEmpty else { throw GatewayConfigError(key: "\(rk).bucket", "required: the bucket name") }
                route.bucket = b
                if let p = ro["prefix"] {
                    guard case .string(let s) = p else { throw GatewayConfigError(key: "\(rk).prefix", "expected a key prefix") }
                    route.prefix = s
                }
            } else {
                guard case .string(let p)? = ro["path_prefix"], p.hasPrefix("/") else {
                    throw GatewayConfigError(key: "\(rk).path_prefix", "required: a path prefix starting with /")
                }
                route.pathPrefix = p
            }
            // First match wins, so a route under an earlier one's prefix would never be reached:
            // its keys would be decided as the earlier, broader resource's.
            if let (j, earlier) = g.resources.enumerated().first(where: { _, e in
                if g.s3 {
                    return (e.bucket ?? "").utf8.elementsEqual((route.bucket ?? "").utf8) && route.prefix.utf8.starts(with: e.prefix.utf8)
                }
                return (route.pathPrefix ?? "").utf8.starts(with: (e.pathPrefix ?? "\u{0}").utf8)
            }) {
                let what = g.s3 ? "prefix \"\(route.prefix)\" of bucket \(route.bucket ?? "")" : "path_prefix \(route.pathPrefix ?? "")"
                throw GatewayConfigError(key: rk, "\(what) is under resources[\(j)] (\(g.s3 ? "\"" + earlier.prefix + "\"" : earlier.pathPrefix ?? "")), which matches first: list the longer prefix first")
            }
            g.resources.append(route)
        }
        if let p = o["purpose"] { g.purpose = try sources(p, "\(key).purpose", kind: kind) }
        if let r = o["region"] { g.region = try sources(r, "\(key).region", kind: kind) }
        return g
    }

    static func kubernetes(_ name: String, _ o: JSONObject, _ key: String) throws(GatewayConfigError) -> GatewayConfig {
        var g = GatewayConfig(name: name, kind: .kubernetes, dataPath: name)
        if let a = o["annotations"] {
            let ao = try object(a, "\(key).annotations")
            try onlyKeys(ao, "\(key).annotations", ["principal", "study", "purpose", "datasets", "gxp"])
            func text(_ k: String) throws(GatewayConfigError) -> String? {
                guard let v = ao[k] else { return nil }
                guard case .string(let s) = v, !s.isEmpty else { throw GatewayConfigError(key: "\(key).annotations.\(k)", "expected an annotation key") }
                return s
            }
            if let v = try text("principal") { g.podAnnotations.principal = v }
            if let v = try text("study") { g.podAnnotations.study = v }
            if let v = try text("purpose") { g.podAnnotations.purpose = v }
            if let v = try text("datasets") { g.podAnnotations.datasets = v }
            if let v = try text("gxp") { g.podAnnotations.gxp = v }
        }
        if let r = o["region_label"] {
            guard case .string(let s) = r, !s.isEmpty else { throw GatewayConfigError(key: "\(key).region_label", "expected a node label key") }
            g.regionLabel = s
        }
        return g
    }

    static func sources(_ j: JSON, _ key: String, kind: GatewayKind) throws(GatewayConfigError) -> [FactSource] {
        guard case .array(let items) = j else { throw GatewayConfigError(key: key, "expected an array of sources, tried in order") }
        var out: [FactSource] = []
        for (i, item) in items.enumerated() {
            let k = "\(key)[\(i)]"
            let o = try object(item, k)
            guard o.count == 1, let m = o.members.first else {
                throw GatewayConfigError(key: k, "expected exactly one of value, account, claim, session_tag, header")
            }
            func text() throws(GatewayConfigError) -> String {
                guard case .string(let s) = m.value, !s.isEmpty else { throw GatewayConfigError(key: "\(k).\(m.key)", "expected a non-empty string") }
                return s
            }
            switch m.key {
            case "value": out.append(.value(try text()))
            case "claim", "session_tag":
                guard kind == .minio else { throw GatewayConfigError(key: "\(k).\(m.key)", "only MinIO sends claims (STS session claims and tags)") }
                out.append(m.key == "claim" ? .claim(try text()) : .sessionTag(try text()))
            case "header":
                guard !kind.isOPA else { throw GatewayConfigError(key: "\(k).header", "MinIO and RGW send no headers of the end caller's request; use value, account or claims") }
                out.append(.header(try text()))
            case "account":
                guard kind.isOPA else { throw GatewayConfigError(key: "\(k).account", "only MinIO and RGW name an S3 account") }
                let ao = try object(m.value, "\(k).account")
                var map: [String: String] = [:]
                for am in ao.members {
                    guard case .string(let v) = am.value, !v.isEmpty else { throw GatewayConfigError(key: "\(k).account.\(am.key)", "expected a non-empty string") }
                    map[am.key] = v
                }
                out.append(.account(map))
            default:
                throw GatewayConfigError(key: "\(k).\(m.key)", "unknown source; known: value, account, claim, session_tag, header")
            }
        }
        return out
    }

    static func object(_ j: JSON, _ key: String) throws(GatewayConfigError) -> JSONObject {
        guard case .object(let o) = j else { throw GatewayConfigError(key: key, "expected an object, got \(j.kindName)") }
        return o
    }

    static func onlyKeys(_ o: JSONObject, _ key: String, _ known: [String]) throws(GatewayConfigError) {
        for k in o.keys where !known.contains(where: { $0.utf8.elementsEqual(k.utf8) }) {
            throw GatewayConfigError(key: "\(key).\(k)", "unknown key; known keys here: \(known.joined(separator: ", "))")
        }
    }

    static func positive(_ j: JSON, _ key: String, max: Int, min: Int = 1) throws(GatewayConfigError) -> Int {
        guard case .int(let v) = j else { throw GatewayConfigError(key: key, "expected a whole number, got \(j.kindName)") }
        guard v >= Int64(min), v <= Int64(max) else { throw GatewayConfigError(key: key, "must be between \(min) and \(max), got \(v)") }
        return Int(v)
    }

    static func id(_ j: JSON, _ key: String) throws(GatewayConfigError) -> UInt32 {
        guard case .int(let v) = j, v >= 0, v <= Int64(UInt32.max) else {
            throw GatewayConfigError(key: key, "expected a numeric uid/gid, got \(j.serialized)")
        }
        return UInt32(v)
    }

    static func octal(_ text: String) -> UInt32? {
        var s = Substring(text)
        if s.hasPrefix("0o") { s = s.dropFirst(2) }
        guard !s.isEmpty, s.count <= 4 else { return nil }
        var v: UInt32 = 0
        for c in s.utf8 {
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "7") else { return nil }
            v = v * 8 + UInt32(c - UInt8(ascii: "0"))
        }
        return v <= 0o777 ? v : nil
    }
}
