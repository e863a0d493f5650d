import CustosJSON
import CustosServer
import Metrics
import Glibc
import Synchronization

/// The HTTP front door: every endpoint translates onto a method of the daemon's dispatcher
/// (`decide`, `health`, `metrics`), called in-process with the HTTP caller's identity, so the
/// access rules, the params validation, the audit log and its commit-before-answer are the
/// JSON-RPC socket's own (docs/gateways.md).
public final class Gateway: Sendable {
    public let config: HTTPConfig
    let dispatcher: Dispatcher
    let stats = GatewayStats()
    private let listeners = Mutex<[HTTPListener]>([])

    /// The longest end-caller identity (principal id, `on_behalf_of`) a request may carry; a
    /// longer one is refused, never cut, so the audit entry names exactly who asked.
    public static let maxIdentityBytes = 256

    public init(config: HTTPConfig, dispatcher: Dispatcher) {
        self.config = config
        self.dispatcher = dispatcher
    }

    // MARK: listeners

    /// Binds every configured listener and starts serving; on a failure the ones already
    /// started are stopped again.
    public func start() throws(SocketError) {
        var started: [HTTPListener] = []
        for l in config.listeners {
            do throws(SocketError) {
                let socket: BoundSocket
                let name: String
                switch l.address {
                case .unix(let path, let mode, let group):
                    socket = try BoundSocket.unix(path: path, mode: mode_t(mode), group: group.map { gid_t($0) })
                    name = "unix:" + path
                case .tcp(let host, let port):
                    socket = try BoundSocket.loopbackTCP(host: host, port: port)
                    name = "tcp:" + (host.contains(":") ? "[\(host)]" : host) + ":" + String(socket.port ?? port)
                }
                let listener = HTTPListener(name: name, socket: socket, identity: l.identity, limits: config.limits) {
                    [self] request, caller in self.handle(request, &caller)
                }
                do { try listener.start() } catch {
                    socket.removeFile()
                    throw error
                }
                started.append(listener)
            } catch {
                for s in started { s.stop(drain: .zero) }
                throw error
            }
        }
        listeners.withLock { $0 = started }
    }

    /// Where each listener serves (`unix:PATH`, `tcp:127.0.0.1:PORT` with the bound port).
    public var listenerNames: [String] { listeners.withLock { $0.map(\.name) } }

    /// Stops accepting, lets requests in flight finish (at most `drain`), closes connections.
    public func stop(drain: Duration) {
        let all = listeners.withLock { $0 }
        for l in all { l.stop(drain: drain) }
    }

    public var families: [MetricFamily] {
        let all = listeners.withLock { $0 }
        let labels = all.map { [MetricLabel(name: "listener", value: $0.name)] }
        return [
            stats.requests.family,
            .gauge("custos_http_connections", "Open connections of each HTTP listener.",
                   zip(all, labels).map { MetricSample(labels: $1, value: .int(UInt64(max(0, $0.openConnections)))) }),
            MetricFamily(name: "custos_http_connections_accepted_total", help: "Connections each HTTP listener accepted.",
                         kind: .counter, samples: zip(all, labels).map { MetricSample(labels: $1, value: .int($0.acceptedConnections)) }),
        ]
    }

    // MARK: routing

    public func handle(_ r: HTTPRequest, _ caller: inout HTTPCaller) -> HTTPResponse {
        let (endpoint, response) = route(r, &caller)
        stats.count(endpoint, response.status)
        return response
    }

    private func route(_ r: HTTPRequest, _ caller: inout HTTPCaller) -> (GatewayStats.Endpoint, HTTPResponse) {
        let path = r.path
        switch path {
        case "/healthz", "/readyz":
            guard r.method == "GET" || r.method == "HEAD" else { return (.other, Self.methodNotAllowed("GET, HEAD")) }
            return (path == "/healthz" ? .healthz : .readyz, health(ready: path == "/readyz", &caller))
        case "/metrics":
            guard r.method == "GET" || r.method == "HEAD" else { return (.other, Self.methodNotAllowed("GET, HEAD")) }
            return (.metrics, metrics(&caller))
        default:
            break
        }
        if path.hasPrefix("/v1/data/") {
            var dataPath = Substring(path.utf8.dropFirst(9))
            while dataPath.hasSuffix("/") { dataPath = dataPath.dropLast() }
            guard let g = config.gateways.first(where: { $0.kind.isOPA && $0.dataPath.utf8.elementsEqual(dataPath.utf8) }) else {
                return (.other, Self.json(404, ["code": .string("not_found"), "message": .string("no gateway serves the data path \(dataPath)"),
                                              "result": .bool(false)]))
            }
            guard r.method == "POST" else { return (.opa, Self.methodNotAllowed("POST")) }
            return (.opa, opa(g, r, &caller))
        }
        if path.hasPrefix("/authz/") {
            let rest = path.utf8.dropFirst(7)
            let nameEnd = rest.firstIndex(of: UInt8(ascii: "/")) ?? rest.endIndex
            let name = Substring(rest[..<nameEnd])
            guard let g = config.gateways.first(where: { ($0.kind == .envoy || $0.kind == .nginx) && $0.name.utf8.elementsEqual(name.utf8) }) else {
                return (.authz, Self.authzRefusal("no gateway named \(name) is configured"))
            }
            return (.authz, authz(g, r, original: String(Substring(rest[nameEnd...])), &caller))
        }
        if path.hasPrefix("/scheduler/") {
            let parts = path.split(separator: "/")
            guard parts.count == 3, parts[2] == "filter" || parts[2] == "prioritize",
                  let g = config.gateways.first(where: { $0.kind == .kubernetes && $0.name.utf8.elementsEqual(parts[1].utf8) }) else {
                return (.scheduler, Self.extenderError("no scheduler extender gateway serves \(path) (POST /scheduler/<gateway>/filter or /prioritize)", nodes: []))
            }
            guard r.method == "POST" else { return (.scheduler, Self.methodNotAllowed("POST")) }
            return (.scheduler, parts[2] == "filter" ? extenderFilter(g, r, &caller) : extenderPrioritize(g, r, &caller))
        }
        return (.other, Self.json(404, ["code": .string("not_found"),
                                        "message": .string("no endpoint \(path); endpoints: /v1/data/<path>, /authz/<gateway>, /scheduler/<gateway>/filter, /scheduler/<gateway>/prioritize, /healthz, /readyz, /metrics")]))
    }

    // MARK: probes and metrics

    func health(ready: Bool, _ caller: inout HTTPCaller) -> HTTPResponse {
        let h: JSON
        do { h = try dispatcher.call("health", params: Params(nil), context: caller.context, cache: &caller.cache) } catch {
            return Self.json(error.code == RPCError.forbiddenCode ? 403 : 503, ["error": Self.errorJSON(error)])
        }
        let isReady = h.objectValue?["ready"] == .bool(true)
        return Self.json(ready && !isReady ? 503 : 200, h)
    }

    func metrics(_ caller: inout HTTPCaller) -> HTTPResponse {
        let m: JSON
        do {
            m = try dispatcher.call("metrics", params: Params(.object(JSONObject(["format": .string("prometheus")]))),
                                    context: caller.context, cache: &caller.cache)
        } catch {
            return Self.json(error.code == RPCError.forbiddenCode ? 403 : 503, ["error": Self.errorJSON(error)])
        }
        guard case .string(let text)? = m.objectValue?["text"] else {
            return Self.json(503, ["error": .string("the metrics method answered without text")])
        }
        return HTTPResponse(status: 200, contentType: PrometheusText.contentType, body: Array(text.utf8))
    }

    // MARK: decisions

    /// What a gateway's request asks, ready for `decide`.
    struct Question {
        var params: JSONObject
        var onBehalfOf: String
    }

    /// Why a request never became a decision; `status` is for OPA callers (Envoy and nginx
    /// always get 403).
    struct Refusal: Error {
        var status: UInt32
        var message: String
    }

    /// The `decide` answer as the daemon wrote it (its audit entry already durable).
    func decideBytes(_ q: Question, _ caller: inout HTTPCaller) -> Result<[UInt8], RPCError> {
        var context = caller.context
        context.onBehalfOf = q.onBehalfOf
        var w = JSONWriter(capacity: 512)
        do {
            try dispatcher.write("decide", params: Params(.object(q.params)), context: context, cache: &caller.cache, into: &w)
            return .success(w.bytes)
        } catch {
            return .failure(error)
        }
    }

    func decide(_ q: Question, _ caller: inout HTTPCaller) -> Result<JSONObject, RPCError> {
        switch decideBytes(q, &caller) {
        case .success(let bytes):
            guard case .object(let o)? = try? JSON.parse(bytes) else { return .failure(.internalError("decide answered something that is not an object")) }
            return .success(o)
        case .failure(let e):
            return .failure(e)
        }
    }

    /// Decision and id of a `decide` answer, read off the bytes the daemon writes
    /// (`{"decision":"allow"|"deny",...,"decision_id":"<uuid>",...}`, `DecideAnswer.write`)
    /// without building a tree; any other shape is parsed in full.
    static func verdict(_ bytes: [UInt8]) -> (allow: Bool, id: String?)? {
        let allow = Array(#"{"decision":"allow","#.utf8), deny = Array(#"{"decision":"deny","#.utf8)
        let isAllow = bytes.starts(with: allow)
        if isAllow || bytes.starts(with: deny) {
            let key = Array(#","decision_id":""#.utf8)
            var i = 0
            while i + key.count < bytes.count {
                if bytes[i] == key[0] && bytes[i..<(i + key.count)].elementsEqual(key) {
                    let start = i + key.count
                    if let end = bytes[start...].firstIndex(of: UInt8(ascii: "\"")),
                       !bytes[start..<end].contains(UInt8(ascii: "\\")) {
                        return (isAllow, String(decoding: bytes[start..<end], as: UTF8.self))
                    }
                    break
                }
                i += 1
            }
        }
        guard case .object(let o)? = try? JSON.parse(bytes), case .string(let d)? = o["decision"] else { return nil }
        return (d == "allow", o["decision_id"]?.stringValue)
    }

    func opa(_ g: GatewayConfig, _ r: HTTPRequest, _ caller: inout HTTPCaller) -> HTTPResponse {
        func result(_ allow: Bool) -> JSON {
            g.resultObject ? .object(JSONObject(["allow": .bool(allow)])) : .bool(allow)
        }
        func refuse(_ status: UInt32, _ message: String, code: String) -> HTTPResponse {
            Self.json(status, ["result": result(false), "code": .string(code), "message": .string(message)])
        }
        let input: JSONObject
        do throws(JSONParseError) {
            let body = try JSON.parse(r.body)
            guard case .object(let envelope) = body else { return refuse(400, "expected {\"input\": {...}}, got \(body.kindName)", code: "invalid_parameter") }
            if let extra = envelope.members.first(where: { !$0.key.utf8.elementsEqual("input".utf8) }) {
                return refuse(400, "\(extra.key): unknown member (an OPA data API request has input only)", code: "invalid_parameter")
            }
            guard case .object(let i)? = envelope["input"] else { return refuse(400, "input: missing or not an object", code: "invalid_parameter") }
            input = i
        } catch {
            return refuse(400, "the body is not JSON: \(error.description)", code: "invalid_parameter")
        }
        let question: Question
        do {
            question = try g.kind == .minio ? minioQuestion(g, input) : rgwQuestion(g, input)
        } catch {
            return refuse(error.status, error.message, code: error.status == 400 ? "invalid_parameter" : "unmapped")
        }
        switch decideBytes(question, &caller) {
        case .success(let bytes):
            guard let (allow, id) = Self.verdict(bytes) else {
                return Self.json(500, ["result": result(false), "code": .string("custos_error"),
                                       "error": .string("decide answered without a decision")])
            }
            // Written directly: this is every storage request's answer.
            var w = JSONWriter(capacity: 96)
            w.raw("{\"decision_id\":")
            if let id { w.string(id) } else { w.null() }
            w.raw(",\"result\":")
            if g.resultObject { w.raw(allow ? "{\"allow\":true}" : "{\"allow\":false}") } else { w.raw(allow ? "true" : "false") }
            w.raw("}\n")
            return HTTPResponse(status: 200, headers: id.map { [("x-custos-decision-id", $0)] } ?? [], body: w.bytes)
        case .failure(let e):
            return Self.json(Self.status(of: e), ["result": result(false), "code": .string("custos_error"), "error": Self.errorJSON(e)])
        }
    }

    func authz(_ g: GatewayConfig, _ r: HTTPRequest, original: String, _ caller: inout HTTPCaller) -> HTTPResponse {
        let question: Question
        do { question = try httpQuestion(g, r, original: original) } catch {
            return Self.authzRefusal(error.message)
        }
        switch decide(question, &caller) {
        case .success(let answer):
            var headers: [(String, String)] = []
            if case .string(let id)? = answer["decision_id"] { headers.append(("x-custos-decision-id", id)) }
            if answer["decision"] == .string("allow") {
                if case .array(let obligations)? = answer["obligations"], !obligations.isEmpty {
                    headers.append(("x-custos-obligations", Self.asciiJSON(.array(obligations))))
                }
                return Self.json(200, ["decision": .string("allow"), "decision_id": answer["decision_id"] ?? .null,
                                       "obligations": answer["obligations"] ?? .array([])], headers: headers)
            }
            return Self.json(403, ["decision": .string("deny"), "decision_id": answer["decision_id"] ?? .null,
                                   "reasons": answer["reasons"] ?? .array([]),
                                   "guardrail_reasons": answer["guardrail_reasons"] ?? .array([]),
                                   "errors": answer["errors"] ?? .array([])], headers: headers)
        case .failure(let e):
            // Never 5xx: a proxy may be told to let requests through when its authorizer fails.
            return Self.json(403, ["decision": .string("deny"), "error": Self.errorJSON(e)])
        }
    }

    // MARK: questions

    func minioQuestion(_ g: GatewayConfig, _ input: JSONObject) throws(Refusal) -> Question {
        // One pass over MinIO's policy.Args, keys compared by bytes (this runs for every request).
        var account: JSON?, action: JSON?, bucket: JSON?, object: JSON?, conditions: JSON?, claims: JSON?
        for m in input.members {
            switch Self.memberIndex(m.key, Self.minioMemberBytes) {
            case 0?: account = m.value
            case 1?: action = m.value
            case 2?: bucket = m.value
            case 3?: object = m.value
            case 4?: conditions = m.value
            case 5?: claims = m.value
            case _?: break
            case nil:
                throw Refusal(status: 400, message: "input.\(m.key): unknown member (MinIO's policy.Args has \(Self.minioMembers.joined(separator: ", ")))")
            }
        }
        let who = try identity(account, "input.account")
        guard case .string(let s3Action)? = action else { throw Refusal(status: 400, message: "input.action: missing or not a string") }
        let b = try optionalString(bucket, "input.bucket")
        var key = try optionalString(object, "input.object")
        if key.isEmpty && Self.listingActions.contains(s3Action) { key = try Self.minioListingPrefix(conditions) }
        return try question(g, action: s3Action, bucket: b, key: key, principal: who,
                            onBehalfOf: "account:" + who, facts: FactInput(account: who, claims: claims?.objectValue))
    }

    /// The position of `key` in `table`, by bytes.
    @inline(__always) static func memberIndex(_ key: String, _ table: [[UInt8]]) -> Int? {
        var k = key
        return k.withUTF8 { kb in
            guard kb.count > 0 else { return nil }
            for (i, t) in table.enumerated() where t.count == kb.count {
                if t.withUnsafeBytes({ memcmp($0.baseAddress!, kb.baseAddress!, kb.count) }) == 0 { return i }
            }
            return nil
        }
    }

    static let minioMembers = ["account", "action", "bucket", "object", "conditions", "claims", "groups", "originalAction", "owner", "denyOnly"]
    static let minioMemberBytes = minioMembers.map { Array($0.utf8) }

    func rgwQuestion(_ g: GatewayConfig, _ input: JSONObject) throws(Refusal) -> Question {
        let known = ["method", "relative_uri", "decoded_uri", "params", "request_uri_aws4", "object_name", "subuser", "user_info", "bucket_info"]
        if let m = input.members.first(where: { k in !known.contains { $0.utf8.elementsEqual(k.key.utf8) } }) {
            throw Refusal(status: 400, message: "input.\(m.key): unknown member (RGW's OPA request has \(known.joined(separator: ", ")))")
        }
        guard case .string(let method)? = input["method"] else { throw Refusal(status: 400, message: "input.method: missing or not a string") }
        guard case .object(let user)? = input["user_info"] else { throw Refusal(status: 400, message: "input.user_info: missing or not an object") }
        let account = try identity(user["user_id"], "input.user_info.user_id")
        let path: String
        if case .string(let d)? = input["decoded_uri"] { path = d }
        else if case .string(let u)? = input["relative_uri"], let d = URLText.decode(Substring(u)) { path = d }
        else { throw Refusal(status: 400, message: "input.relative_uri: missing, not a string, or badly escaped") }
        guard URLText.isNormalized(path) else { throw Refusal(status: 400, message: "input.relative_uri: . or .. segments are refused") }
        let paramText = try optionalString(input["params"], "input.params")
        guard let args = URLText.arguments(Substring(paramText)) else { throw Refusal(status: 400, message: "input.params: badly escaped") }
        guard let (bucket, key) = S3Request.split(path: path) else {
            throw Refusal(status: 403, message: "the service root names no bucket; no resource is mapped to it")
        }
        guard let action = S3Request.action(method: method, key: key, arguments: args, copySource: false) else {
            throw Refusal(status: 403, message: "\(method) \(path) with \(paramText.isEmpty ? "no query" : "?" + paramText) is not an S3 call the front door maps")
        }
        var onBehalfOf = "account:" + account
        if case .string(let sub)? = input["subuser"], !sub.isEmpty { onBehalfOf += ":" + sub }
        let listKey = key.isEmpty && Self.listingActions.contains(action) ? try Self.listingPrefix(args) : key
        return try question(g, action: action, bucket: bucket, key: listKey, principal: account, onBehalfOf: onBehalfOf,
                            facts: FactInput(account: account, claims: nil))
    }

    func httpQuestion(_ g: GatewayConfig, _ r: HTTPRequest, original: String) throws(Refusal) -> Question {
        var method = r.method
        var path = original
        var args = r.arguments
        if g.kind == .nginx {
            guard let uri = try Self.single(r, "X-Original-URI") else {
                throw Refusal(status: 403, message: "X-Original-URI header missing: set proxy_set_header X-Original-URI $request_uri in the auth_request location")
            }
            // No default: a PUT or DELETE whose method did not reach the front door must not be
            // decided as a read.
            guard let m = try Self.single(r, "X-Original-Method") else {
                throw Refusal(status: 403, message: "X-Original-Method header missing: set proxy_set_header X-Original-Method $request_method in the auth_request location")
            }
            method = m
            let q = uri.firstIndex(of: "?")
            guard let p = URLText.decode(uri[..<(q ?? uri.endIndex)]) else { throw Refusal(status: 403, message: "X-Original-URI is badly escaped") }
            path = p
            if let q {
                guard let a = URLText.arguments(uri[uri.index(after: q)...]) else { throw Refusal(status: 403, message: "X-Original-URI's query is badly escaped") }
                args = a
            } else {
                args = []
            }
        }
        if path.isEmpty { path = "/" }
        // libmicrohttpd decodes the path and arguments Envoy sends; `%00` is left as text
        // (custos_mhd_unescape), since a NUL would cut them short of what the server behind
        // reads (`/b/de/public/x%00/../../clinical/y`). No caller has a reason to send one.
        if g.kind != .nginx, path.contains("%00") || args.contains(where: { $0.0.contains("%00") || ($0.1?.contains("%00") ?? false) }) {
            throw Refusal(status: 403, message: "the request's URL holds %00 (a NUL byte), which is refused")
        }
        guard URLText.isNormalized(path) else { throw Refusal(status: 403, message: "the path has . or .. segments; normalise paths in the proxy") }
        guard let header = g.principalHeader, let who = try Self.single(r, header) else {
            throw Refusal(status: 403, message: "the identity header \(g.principalHeader ?? "") is missing")
        }
        let principal = try identity(.string(who), "header \(header)")
        let onBehalfOf = "header \(header.lowercased()):" + principal
        let facts = FactInput(account: nil, claims: nil, request: r)
        if g.s3 {
            guard let (bucket, key) = S3Request.split(path: path) else { throw Refusal(status: 403, message: "the service root names no bucket") }
            guard let action = S3Request.action(method: method, key: key, arguments: args, copySource: try Self.single(r, "x-amz-copy-source") != nil) else {
                throw Refusal(status: 403, message: "\(method) \(path) is not an S3 call the front door maps (copies, ACLs and policies are refused)")
            }
            let listKey = key.isEmpty && Self.listingActions.contains(action) ? try Self.listingPrefix(args) : key
            return try question(g, action: action, bucket: bucket, key: listKey, principal: principal, onBehalfOf: onBehalfOf, facts: facts)
        }
        guard let action = g.actions[method] else { throw Refusal(status: 403, message: "no Cedar action is mapped to \(method)") }
        // Routes compare bytes: a path canonically equivalent to a route's prefix is not under it.
        guard let route = g.resources.first(where: { r in r.pathPrefix.map { path.utf8.starts(with: $0.utf8) } ?? false }) else {
            throw Refusal(status: 403, message: "no resource is mapped to \(path)")
        }
        return try assemble(g, action: action, route: route, principal: principal, onBehalfOf: onBehalfOf, facts: facts)
    }

    struct FactInput {
        var account: String?
        var claims: JSONObject?
        var request: HTTPRequest? = nil
    }

    func question(_ g: GatewayConfig, action s3Action: String, bucket: String, key: String, principal: String,
                  onBehalfOf: String, facts: FactInput) throws(Refusal) -> Question {
        guard let action = g.actions[s3Action] else { throw Refusal(status: 403, message: "no Cedar action is mapped to \(s3Action)") }
        // Routes compare bytes: a key canonically equivalent to a route's prefix is not under it.
        let inBucket = g.resources.filter { r in r.bucket.map { $0.utf8.elementsEqual(bucket.utf8) } ?? false }
        guard let route = inBucket.first(where: { key.utf8.starts(with: $0.prefix.utf8) }) else {
            throw Refusal(status: 403, message: "no resource is mapped to bucket \(bucket) key \(key)")
        }
        // A listing shows the names of every key under its prefix: one that reaches into a
        // route of another resource (the bucket's root, listed while `de/clinical/` is mapped
        // apart) would show that resource's key names under this one's decision.
        if Self.listingActions.contains(s3Action),
           let other = inBucket.first(where: { r in r.prefix.utf8.starts(with: key.utf8)
               && !(r.resourceType.utf8.elementsEqual(route.resourceType.utf8) && r.resourceID.utf8.elementsEqual(route.resourceID.utf8)) }) {
            throw Refusal(status: 403, message: "a listing of bucket \(bucket) prefix \"\(key)\" would show keys under \"\(other.prefix)\", mapped to another resource; list within one route")
        }
        return try assemble(g, action: action, route: route, principal: principal, onBehalfOf: onBehalfOf, facts: facts)
    }

    func assemble(_ g: GatewayConfig, action: String, route: ResourceRoute, principal: String, onBehalfOf: String,
                  facts: FactInput) throws(Refusal) -> Question {
        var context = JSONObject()
        if let p = try fact(g.purpose, facts, "purpose") { context.append("purpose", .string(p)) }
        if let r = try fact(g.region, facts, "region") { context.append("region", .string(r)) }
        let params = JSONObject([
            "principal": .object(JSONObject(["type": .string(g.principalType), "id": .string(principal)])),
            "action": .object(JSONObject(["type": .string("Action"), "id": .string(action)])),
            "resource": .object(JSONObject(["type": .string(route.resourceType), "id": .string(route.resourceID)])),
            "context": .object(context),
        ])
        guard onBehalfOf.utf8.count <= Self.maxIdentityBytes else {
            throw Refusal(status: 400, message: "the end caller's identity is over \(Self.maxIdentityBytes) bytes")
        }
        return Question(params: params, onBehalfOf: onBehalfOf)
    }

    /// The first source that has a value; nil when none has (the guardrails then see no purpose
    /// or region, and deny personal-data use for it).
    func fact(_ sources: [FactSource], _ f: FactInput, _ what: String) throws(Refusal) -> String? {
        for s in sources {
            var v: String? = nil
            switch s {
            case .value(let x): v = x
            case .account(let map): v = f.account.flatMap { a in map.first { $0.key.utf8.elementsEqual(a.utf8) }?.value }
            case .claim(let name): v = try Self.claimValue(f.claims?[name], "the claim \(name)")
            case .sessionTag(let name):
                v = try Self.claimValue(f.claims?["https://aws.amazon.com/tags"]?.objectValue?["principal_tags"]?.objectValue?[name],
                                        "the session tag \(name)")
            case .header(let name): v = try f.request.flatMap { r throws(Refusal) in try Self.single(r, name) }
            }
            if let v { return try identity(.string(v), what) }
        }
        return nil
    }

    /// A header a decision rests on (the end caller, a purpose or region, nginx's original
    /// request): nil when absent, refused when it appears more than once. Taking the first
    /// would let a client's own copy speak for the caller whenever the proxy adds its header
    /// beside the client's instead of replacing it (Envoy's `request_headers_to_add` with
    /// `APPEND_IF_EXISTS_OR_ADD`, its default `append_action`).
    static func single(_ r: HTTPRequest, _ name: String) throws(Refusal) -> String? {
        let values = r.headerValues(name)
        guard values.count <= 1 else {
            throw Refusal(status: 403, message: "the header \(name.lowercased()) appears \(values.count) times; the proxy must set it once, replacing what the client sent")
        }
        return values.first
    }

    /// The S3 actions that list a bucket: only these are routed by `prefix`, the part of the
    /// bucket they show. Every other bucket-level call acts on the bucket as a whole (a
    /// multi-object delete names its keys in a body the front door does not see), so it is
    /// routed by the bucket alone, whatever `prefix` the client adds to it.
    static let listingActions: Set<String> = ["s3:ListBucket", "s3:ListBucketVersions", "s3:ListBucketMultipartUploads"]

    /// The prefix of a MinIO listing. MinIO's `conditions` hold the query's arguments under
    /// their own names (`prefix`, which the listing uses) and the request's headers under
    /// their canonical names, so `Prefix` can be a header the client sent: it is never the
    /// prefix, and one that disagrees with it is refused.
    static func minioListingPrefix(_ conditions: JSON?) throws(Refusal) -> String {
        guard case .object(let conds)? = conditions else { return "" }
        var prefix = ""
        if let p = conds["prefix"] {
            guard case .array(let values) = p, values.allSatisfy({ $0.stringValue != nil }) else {
                throw Refusal(status: 400, message: "input.conditions.prefix: expected an array of strings")
            }
            // More than one is refused, as on the other S3 routes (`listingPrefix`).
            guard values.count <= 1 else {
                throw Refusal(status: 403, message: "the query argument prefix appears \(values.count) times; a listing is routed by its one prefix")
            }
            prefix = values.first?.stringValue ?? ""
        }
        if let p = conds["Prefix"] {
            guard case .array(let values) = p, values.allSatisfy({ $0.stringValue?.utf8.elementsEqual(prefix.utf8) ?? false }) else {
                throw Refusal(status: 403, message: "input.conditions.Prefix (a request header) disagrees with the listing's prefix \"\(prefix)\"")
            }
        }
        return prefix
    }

    /// The `prefix` of a bucket listing, which routes it to a resource: refused when the query
    /// gives it more than once. The front door would route by one copy while the store might
    /// list by another: which copy of a repeated argument wins differs between HTTP stacks.
    static func listingPrefix(_ args: [(String, String?)]) throws(Refusal) -> String {
        let values = args.filter { $0.0 == "prefix" }
        guard values.count <= 1 else {
            throw Refusal(status: 403, message: "the query argument prefix appears \(values.count) times; a listing is routed by its one prefix")
        }
        return values.first?.1 ?? ""
    }

    /// A purpose or region from the STS session's claims: nil when absent; a string, or an
    /// array of exactly one string (session tags come as such arrays). Anything else that is
    /// present is refused rather than skipped: with several values the front door would pick
    /// the purpose the decision rests on, and skipping a malformed claim would let the next
    /// source (an account's default, a fixed value) speak where the identity provider said
    /// something else.
    static func claimValue(_ j: JSON?, _ what: String) throws(Refusal) -> String? {
        switch j {
        case nil: return nil
        case .string(let s)?: return s
        case .array(let a)? where a.count == 1: if let s = a[0].stringValue { return s }
        case .array(let a)? where a.count > 1:
            throw Refusal(status: 403, message: "\(what) holds \(a.count) values; a decision rests on one")
        default: break
        }
        throw Refusal(status: 403, message: "\(what) is neither a string nor an array of one string")
    }

    /// A caller-supplied name: a non-empty string of at most `maxIdentityBytes` bytes with no
    /// control characters.
    func identity(_ j: JSON?, _ field: String) throws(Refusal) -> String {
        guard case .string(let s)? = j, !s.isEmpty else { throw Refusal(status: 400, message: "\(field): missing or not a non-empty string") }
        guard s.utf8.count <= Self.maxIdentityBytes else {
            throw Refusal(status: 400, message: "\(field): \(s.utf8.count) bytes, over the limit of \(Self.maxIdentityBytes)")
        }
        guard !s.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { throw Refusal(status: 400, message: "\(field): control characters are refused") }
        return s
    }

    func optionalString(_ j: JSON?, _ field: String) throws(Refusal) -> String {
        switch j {
        case nil, .null?: return ""
        case .string(let s)?: return s
        case let other?: throw Refusal(status: 400, message: "\(field): expected a string, got \(other.kindName)")
        }
    }

    // MARK: replies

    static func json(_ status: UInt32, _ body: KeyValuePairs<String, JSON>, headers: [(String, String)] = []) -> HTTPResponse {
        json(status, .object(JSONObject(body)), headers: headers)
    }

    static func json(_ status: UInt32, _ body: JSON, headers: [(String, String)] = []) -> HTTPResponse {
        var w = JSONWriter(capacity: 256)
        w.value(body)
        w.byte(0x0A)
        return HTTPResponse(status: status, headers: headers, body: w.bytes)
    }

    static func methodNotAllowed(_ allow: String) -> HTTPResponse {
        json(405, ["code": .string("method_not_allowed"), "message": .string("use \(allow)")], headers: [("Allow", allow)])
    }

    static func authzRefusal(_ message: String) -> HTTPResponse {
        json(403, ["decision": .string("deny"), "error": .object(JSONObject(["message": .string(message)]))])
    }

    static func errorJSON(_ e: RPCError) -> JSON {
        .object(JSONObject(["code": .int(e.code), "message": .string(e.message)]))
    }

    /// OPA callers: the status that says why no decision was given (the body still says false).
    static func status(of e: RPCError) -> UInt32 {
        switch e.code {
        case RPCError.forbiddenCode: 403
        case RPCError.invalidParamsCode: 400
        case RPCError.notReadyCode, RPCError.overloadedCode: 503
        default: 500
        }
    }

    /// Compact JSON with every non-ASCII character escaped, for a header value.
    public static func asciiJSON(_ v: JSON) -> String {
        var w = JSONWriter(capacity: 128)
        w.value(v)
        var out = ""
        for u in w.text.unicodeScalars {
            if u.value < 0x80 { out.unicodeScalars.append(u); continue }
            for unit in String(u).utf16 {
                let h = String(unit, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            }
        }
        return out
    }
}

/// Requests by endpoint and status class, counted with one atomic add each.
final class GatewayStats: Sendable {
    enum Endpoint: Int, CaseIterable {
        case opa, authz, scheduler, healthz, readyz, metrics, other
        var label: String { ["opa", "authz", "scheduler", "healthz", "readyz", "metrics", "other"][rawValue] }
    }
    static let classes = ["2xx", "3xx", "4xx", "5xx"]
    let requests: CounterFamily

    init() {
        var series: [[String]] = []
        for e in Endpoint.allCases { for c in Self.classes { series.append([e.label, c]) } }
        requests = CounterFamily(name: "custos_http_requests_total", help: "HTTP requests answered by the front door, by endpoint and status class.",
                                 labelNames: ["endpoint", "code"], series: series)
    }

    func count(_ e: Endpoint, _ status: UInt32) {
        let c = min(3, max(0, Int(status / 100) - 2))
        requests.add(e.rawValue * Self.classes.count + c)
    }
}
