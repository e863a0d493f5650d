import CustosJSON
import CustosServer
import Foundation
import Guardrails
import Synchronization
import Testing
import CustosGateway

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

func fixture(_ name: String) throws -> [UInt8] {
    try #require(FileManager.default.contents(atPath: fixtures + "/" + name).map { [UInt8]($0) }, "missing fixture \(name)")
}

/// The mapping the tests use: every kind of gateway over the example study's DE clinical data.
let gatewayConfigText = #"""
{"listeners": [{"unix": "/tmp/unused.sock"}],
 "gateways": {
  "minio": {"kind": "minio", "path": "minio/authz",
            "actions": {"s3:GetObject": "read", "s3:ListBucket": "read", "s3:PutObject": "write"},
            "resources": [{"bucket": "onc301", "prefix": "de/clinical/", "resource": {"type": "Dataset", "id": "onc301-de-clinical"}}],
            "purpose": [{"session_tag": "purpose"}, {"claim": "purpose"}, {"account": {"alice": "primary_research"}}],
            "region": [{"session_tag": "region"}, {"value": "eu-central-1"}]},
  "minio-object": {"kind": "minio", "result": "object",
            "actions": {"s3:GetObject": "read"},
            "resources": [{"bucket": "onc301", "resource": {"type": "Dataset", "id": "onc301-de-clinical"}}]},
  "rgw": {"kind": "rgw", "path": "ceph/authz",
          "actions": {"s3:GetObject": "read", "s3:ListBucket": "read", "s3:PutObject": "write"},
          "resources": [{"bucket": "onc301", "prefix": "de/clinical/", "resource": {"type": "Dataset", "id": "onc301-de-clinical"}}],
          "purpose": [{"value": "primary_research"}], "region": [{"value": "eu-central-1"}]},
  "envoy": {"kind": "envoy", "s3": true, "principal_header": "x-forwarded-user",
            "actions": {"s3:GetObject": "read", "s3:GetObjectVersion": "read", "s3:ListBucket": "read"},
            "resources": [{"bucket": "onc301", "prefix": "de/clinical/", "resource": {"type": "Dataset", "id": "onc301-de-clinical"}}],
            "purpose": [{"header": "x-custos-purpose"}], "region": [{"value": "eu-central-1"}]},
  "k8s": {"kind": "kubernetes", "region_label": "node-restriction.kubernetes.io/region"},
  "files": {"kind": "nginx", "principal_header": "x-forwarded-user",
            "actions": {"GET": "read", "HEAD": "read"},
            "resources": [{"path_prefix": "/files/onc301-de/", "resource": {"type": "Dataset", "id": "onc301-de-clinical"}}],
            "purpose": [{"header": "x-custos-purpose"}]}
 }}
"""#

/// A dispatcher whose `decide` allows alice and denies everyone else, remembering what it was asked.
final class FakeState: Sendable {
    let asked = Mutex<[(JSON, CallContext)]>([])
    /// The typed `place` questions (the scheduler extender's).
    let placements = Mutex<[(PlacementQuery, CallContext)]>([])
    /// The typed place gives its rejections last to first, each naming its node, and says
    /// they are one ordered run: the extender must still pair each with its node.
    let shuffled = Mutex(false)
    let failure = Mutex<RPCError?>(nil)
}

final class FakeDaemon: Sendable {
    let state = FakeState()
    let dispatcher: Dispatcher
    func fail(with error: RPCError?) { state.failure.withLock { $0 = error } }

    init() throws {
        var table = MethodTable()
        let state = self.state
        table.register("decide") { params, caller throws(RPCError) in
            if let e = state.failure.withLock({ $0 }) { throw e }
            state.asked.withLock { $0.append((params.json ?? .null, caller)) }
            let allow = params.json?.objectValue?["principal"]?.objectValue?["id"] == .string("alice")
            return .object(JSONObject([
                "decision": .string(allow ? "allow" : "deny"),
                "reasons": .array([.string(allow ? "scientist-analyses-own-study" : "")]),
                "guardrail_reasons": .array(allow ? [] : [.object(JSONObject(["guardrail": .string("isolation"), "code": .string("isolation.not_member"), "message": .string("not a member")]))]),
                "obligations": .array(allow ? [.object(JSONObject(["kind": .string("legal_basis"), "purpose": .string("primary_research"), "basis": .string("public_task")]))] : []),
                "errors": .array([]),
                "decision_id": .string("019ab5c0-4f1e-7a3b-8c2d-1e5f7a9b0c3d"),
                "policy_revision": .string("sha256:00"),
            ]))
        }
        // The first node is allowed, every other one rejected.
        table.register("place") { params, caller throws(RPCError) in
            if let e = state.failure.withLock({ $0 }) { throw e }
            state.asked.withLock { $0.append((params.json ?? .null, caller)) }
            let names = (params.json?.objectValue?["nodes"]?.arrayValue ?? []).compactMap { $0.stringValue ?? $0.objectValue?["name"]?.stringValue }
            let denial = JSON.object(JSONObject(["guardrail": .string("residency"), "code": .string("residency.cross_border"), "message": .string("EU data outside the EEA")]))
            return .object(JSONObject([
                "allowed": .array(names.prefix(1).map { .string($0) }),
                "rejected": .object(JSONObject(names.dropFirst().map { JSONObject.Member(key: $0, value: .array([denial])) })),
                "decision_id": .string("019ab5c0-4f1e-7a3b-8c2d-1e5f7a9b0c3e"),
            ]))
        }
        // The same in typed form, as the scheduler extender calls it.
        table.registerTyped("place") { input, caller, _ throws(RPCError) -> Any in
            if let e = state.failure.withLock({ $0 }) { throw e }
            guard let q = input as? PlacementQuery else { throw .internalError("not a PlacementQuery") }
            state.placements.withLock { $0.append((q, caller)) }
            var result = PlacementResult()
            result.allowed = q.nodes.prefix(1).map(\.name)
            result.rejected = q.nodes.dropFirst().map { ($0.name, [Denial(.residencyCrossBorder, "EU data outside the EEA")]) }
            if state.shuffled.withLock({ $0 }) {
                result.rejected = q.nodes.dropFirst().reversed().map { ($0.name, [Denial(.residencyCrossBorder, "about " + $0.name)]) }
            }
            return PlacementAnswer(result: result, decisionID: "019ab5c0-4f1e-7a3b-8c2d-1e5f7a9b0c3e", laterRejections: result.rejected.count)
        }
        table.register("health") { _, _ throws(RPCError) in
            .object(JSONObject(["live": .bool(true), "ready": .bool(state.failure.withLock { $0 } == nil)]))
        }
        dispatcher = try Dispatcher(methods: table)
    }

    var lastParams: JSONObject? { state.asked.withLock { $0.last?.0.objectValue } }
    var lastCaller: CallContext? { state.asked.withLock { $0.last?.1 } }
    var count: Int { state.asked.withLock { $0.count } + state.placements.withLock { $0.count } }
    var lastPlacement: (query: PlacementQuery, caller: CallContext)? { state.placements.withLock { $0.last } }
}

func makeGateway() throws -> (Gateway, FakeDaemon) {
    let config = try HTTPConfig.parse(try JSON.parse(gatewayConfigText))
    let fake = try FakeDaemon()
    return (Gateway(config: config, dispatcher: fake.dispatcher), fake)
}

func body(_ r: HTTPResponse) throws -> JSONObject {
    try #require(try JSON.parse(r.body).objectValue)
}

func send(_ g: Gateway, _ r: HTTPRequest, uid: UInt32 = 1000) -> HTTPResponse {
    var caller = HTTPCaller(context: CallContext(uid: uid, gid: uid, pid: 42, connectionID: 7))
    return g.handle(r, &caller)
}

func opaRequest(_ path: String, _ body: [UInt8]) -> HTTPRequest {
    HTTPRequest(method: "POST", path: path, headers: [("Content-Type", "application/json")], body: body)
}

/// An HTTP request as a fixture file describes it (`{method, path, arguments, headers}`).
func fixtureRequest(_ name: String, headers extra: [(String, String)] = [], before: [(String, String)] = [],
                    without: String? = nil) throws -> HTTPRequest {
    let o = try #require(try JSON.parse(try fixture(name)).objectValue)
    let headers = before + (o["headers"]?.arrayValue ?? []).compactMap { h -> (String, String)? in
        guard let a = h.arrayValue, a.count == 2, let k = a[0].stringValue, let v = a[1].stringValue else { return nil }
        return (k, v)
    }.filter { $0.0 != without } + extra
    let args = (o["arguments"]?.arrayValue ?? []).compactMap { h -> (String, String?)? in
        guard let a = h.arrayValue, let k = a.first?.stringValue else { return nil }
        return (k, a.count > 1 ? a[1].stringValue : nil)
    }
    return HTTPRequest(method: o["method"]?.stringValue ?? "GET", path: o["path"]?.stringValue ?? "/", headers: headers, arguments: args)
}

@Suite struct OPADataAPITests {
    @Test func minioInputBecomesTheDecideOfItsAccountWithPurposeAndRegionFromTheMapping() throws {
        let (g, fake) = try makeGateway()
        let r = send(g, opaRequest("/v1/data/minio/authz", try fixture("minio-input.json")))
        #expect(r.status == 200)
        #expect(try body(r)["result"] == .bool(true))
        #expect(try body(r)["decision_id"] == .string("019ab5c0-4f1e-7a3b-8c2d-1e5f7a9b0c3d"))
        #expect(r.header("x-custos-decision-id") == "019ab5c0-4f1e-7a3b-8c2d-1e5f7a9b0c3d")
        let p = try #require(fake.lastParams)
        #expect(p["principal"] == .object(JSONObject(["type": .string("User"), "id": .string("alice")])))
        #expect(p["action"] == .object(JSONObject(["type": .string("Action"), "id": .string("read")])))
        #expect(p["resource"] == .object(JSONObject(["type": .string("Dataset"), "id": .string("onc301-de-clinical")])))
        // No session tag or claim: the account's purpose, the gateway's region.
        #expect(p["context"] == .object(JSONObject(["purpose": .string("primary_research"), "region": .string("eu-central-1")])))
        #expect(fake.lastCaller?.onBehalfOf == "account:alice")
        #expect(fake.lastCaller?.uid == 1000)
    }

    @Test func stsSessionTagsGivePurposeAndRegionBeforeTheAccountsDefault() throws {
        let (g, fake) = try makeGateway()
        _ = send(g, opaRequest("/v1/data/minio/authz", try fixture("minio-sts-input.json")))
        #expect(fake.lastParams?["context"] == .object(JSONObject(["purpose": .string("ml_model_training"), "region": .string("eu-central-1")])))
    }

    /// The STS input with `claims` edited: `purpose` and `region` session tags replaced (nil
    /// removes them), and a `purpose` claim added when given.
    func stsInput(tags: [String: JSON?], claim: JSON? = nil) throws -> [UInt8] {
        let sts = try JSON.parse(try fixture("minio-sts-input.json"))
        var input = try #require(sts["input"]?.objectValue)
        var claims = try #require(input["claims"]?.objectValue)
        let tagsKey = "https://aws.amazon.com/tags"
        var tagClaim = try #require(claims[tagsKey]?.objectValue)
        var principalTags = try #require(tagClaim["principal_tags"]?.objectValue)
        for (name, value) in tags {
            principalTags.members.removeAll { $0.key == name }
            if let value { principalTags.append(name, value) }
        }
        tagClaim.members.removeAll { $0.key == "principal_tags" }
        tagClaim.append("principal_tags", .object(principalTags))
        claims.members.removeAll { $0.key == tagsKey }
        claims.append(tagsKey, .object(tagClaim))
        if let claim { claims.append("purpose", claim) }
        input.members.removeAll { $0.key == "claims" }
        input.append("claims", .object(claims))
        return Array(JSON.object(JSONObject(["input": .object(input)])).serialized.utf8)
    }

    /// A purpose or region taken from the session's claims must be one string (or an array of
    /// one, as session tags come). Several values, or a value of another kind, are refused and
    /// nothing is decided: neither the first value nor the next source (here the account's
    /// default purpose) may stand in for what the identity provider said.
    @Test(arguments: [
        (["purpose": .array([.string("ml_model_training"), .string("primary_research")])], nil, "session tag purpose holds 2 values"),
        (["purpose": .array([.string("primary_research"), .string("ml_model_training")])], nil, "session tag purpose holds 2 values"),
        (["region": .array([.string("eu-central-1"), .string("us-east-1")])], nil, "session tag region holds 2 values"),
        (["purpose": .array([])], nil, "session tag purpose is neither"),
        (["purpose": .array([.int(7)])], nil, "session tag purpose is neither"),
        (["purpose": .null], nil, "session tag purpose is neither"),
        (["purpose": nil], .array([.string("primary_research"), .string("ml_model_training")]), "claim purpose holds 2 values"),
        (["purpose": nil], .int(7), "claim purpose is neither"),
        (["purpose": nil], .object(JSONObject(["id": .string("primary_research")])), "claim purpose is neither"),
        (["purpose": nil], .bool(true), "claim purpose is neither"),
    ] as [([String: JSON?], JSON?, String)])
    func aPurposeOrRegionClaimThatIsNotOneStringIsRefusedWithoutADecision(tags: [String: JSON?], claim: JSON?, message: String) throws {
        let (g, fake) = try makeGateway()
        let r = send(g, opaRequest("/v1/data/minio/authz", try stsInput(tags: tags, claim: claim)))
        #expect(r.status == 403)
        #expect(try body(r)["result"] == .bool(false))
        #expect(try body(r)["message"]?.stringValue?.contains(message) == true, "\(String(decoding: r.body, as: UTF8.self))")
        #expect(fake.count == 0)
    }

    @Test(arguments: [JSON.string("ml_model_training"), .array([.string("ml_model_training")])])
    func aPurposeClaimOfOneStringIsTheRequestsPurpose(claim: JSON) throws {
        let (g, fake) = try makeGateway()
        let r = send(g, opaRequest("/v1/data/minio/authz", try stsInput(tags: ["purpose": nil], claim: claim)))
        #expect(r.status == 200)
        #expect(fake.lastParams?["context"]?.objectValue?["purpose"] == .string("ml_model_training"))
    }

    @Test func aListingIsRoutedByItsPrefixCondition() throws {
        let (g, fake) = try makeGateway()
        let r = send(g, opaRequest("/v1/data/minio/authz", try fixture("minio-list-input.json")))
        #expect(try body(r)["result"] == .bool(true))
        #expect(fake.lastParams?["resource"]?.objectValue?["id"] == .string("onc301-de-clinical"))
    }

    @Test func minioObjectFormAnswersResultAllow() throws {
        let (g, _) = try makeGateway()
        let r = send(g, opaRequest("/v1/data/minio-object", try fixture("minio-input.json")))
        #expect(try body(r)["result"] == .object(JSONObject(["allow": .bool(true)])))
        var denied = try fixture("minio-input.json")
        denied = Array(String(decoding: denied, as: UTF8.self).replacingOccurrences(of: "\"alice\"", with: "\"bob\"").utf8)
        #expect(try body(send(g, opaRequest("/v1/data/minio-object", denied)))["result"] == .object(JSONObject(["allow": .bool(false)])))
    }

    @Test func rgwRequestDerivesItsS3ActionFromMethodPathAndParams() throws {
        let (g, fake) = try makeGateway()
        let r = send(g, opaRequest("/v1/data/ceph/authz", try fixture("rgw-input.json")))
        #expect(try body(r)["result"] == .bool(true))
        #expect(fake.lastParams?["action"]?.objectValue?["id"] == .string("read"))
        #expect(fake.lastCaller?.onBehalfOf == "account:alice")
        _ = send(g, opaRequest("/v1/data/ceph/authz", try fixture("rgw-multipart-input.json")))
        #expect(fake.lastParams?["action"]?.objectValue?["id"] == .string("write"))
    }

    /// A listing is routed to a resource by its `prefix`; given twice, the front door could
    /// route by one and the store list by the other, so it is refused.
    @Test func aListingWhosePrefixIsGivenTwiceIsRefusedWithoutADecision() throws {
        let (g, fake) = try makeGateway()
        let rgw = #"{"input": {"method": "GET", "relative_uri": "/onc301", "decoded_uri": "/onc301", "params": "PARAMS", "user_info": {"user_id": "alice"}}}"#
        let single = send(g, opaRequest("/v1/data/ceph/authz", Array(rgw.replacingOccurrences(of: "PARAMS", with: "prefix=de/clinical/").utf8)))
        #expect(single.status == 200 && fake.count == 1, "one prefix routes the listing")
        for params in ["prefix=de/clinical/&prefix=fr/genomic/", "prefix=fr/genomic/&prefix=de/clinical/"] {
            let r = send(g, opaRequest("/v1/data/ceph/authz", Array(rgw.replacingOccurrences(of: "PARAMS", with: params).utf8)))
            #expect(r.status == 403)
            #expect(try body(r)["result"] == .bool(false))
            #expect(try body(r)["message"]?.stringValue?.contains("prefix appears 2 times") == true)
        }
        // MinIO hands over the query's values of prefix as its Prefix condition.
        let minio = try JSON.parse(try fixture("minio-list-input.json"))
        var input = try #require(minio["input"]?.objectValue)
        var conditions = try #require(input["conditions"]?.objectValue)
        let key = conditions.keys.first { $0 == "prefix" || $0 == "Prefix" } ?? "prefix"
        conditions.members.removeAll { $0.key == key }
        conditions.append(key, .array([.string("de/clinical/"), .string("fr/genomic/")]))
        input.members.removeAll { $0.key == "conditions" }
        input.append("conditions", .object(conditions))
        let twice = send(g, opaRequest("/v1/data/minio/authz", Array(JSON.object(JSONObject(["input": .object(input)])).serialized.utf8)))
        #expect(twice.status == 403)
        #expect(try body(twice)["result"] == .bool(false))
        #expect(fake.count == 1)
        let envoySingle = send(g, HTTPRequest(method: "GET", path: "/authz/envoy/onc301", headers: [("x-forwarded-user", "alice")],
                                              arguments: [("prefix", "de/clinical/")]))
        #expect(envoySingle.status == 200 && fake.count == 2, "one prefix routes the listing")
        let envoy = send(g, HTTPRequest(method: "GET", path: "/authz/envoy/onc301", headers: [("x-forwarded-user", "alice")],
                                        arguments: [("prefix", "de/clinical/"), ("prefix", "fr/genomic/")]))
        #expect(envoy.status == 403)
        #expect(fake.count == 2, "nothing decided for the repeated prefixes")
    }

    /// Every refusal still says `false`, so MinIO and RGW deny whatever they make of the status.
    @Test(arguments: [
        ("{\"input\":", 400, "the body is not JSON"),
        ("[1]", 400, "expected {\"input\""),
        ("{\"input\":{}, \"extra\": 1}", 400, "extra: unknown member"),
        ("{\"input\":{\"account\":\"alice\",\"action\":\"s3:GetObject\",\"bucket\":\"onc301\",\"object\":\"de/clinical/x\",\"acount\":\"x\"}}", 400, "input.acount: unknown member"),
        ("{\"input\":{\"account\":\"alice\",\"action\":\"s3:DeleteObject\",\"bucket\":\"onc301\",\"object\":\"de/clinical/x\"}}", 403, "no Cedar action is mapped to s3:DeleteObject"),
        ("{\"input\":{\"account\":\"alice\",\"action\":\"s3:GetObject\",\"bucket\":\"onc401\",\"object\":\"x\"}}", 403, "no resource is mapped to bucket onc401"),
        ("{\"input\":{\"account\":\"\",\"action\":\"s3:GetObject\",\"bucket\":\"onc301\",\"object\":\"de/clinical/x\"}}", 400, "input.account"),
        ("{\"input\":{\"account\":\"al\\nice\",\"action\":\"s3:GetObject\",\"bucket\":\"onc301\",\"object\":\"de/clinical/x\"}}", 400, "control characters"),
    ] as [(String, Int, String)])
    func badInputIsRefusedWithFalseAndNeverDecided(body text: String, status: Int, message: String) throws {
        let (g, fake) = try makeGateway()
        let r = send(g, opaRequest("/v1/data/minio/authz", Array(text.utf8)))
        #expect(r.status == UInt32(status))
        let b = try body(r)
        #expect(b["result"] == .bool(false))
        #expect(b["message"]?.stringValue?.contains(message) == true, "\(b)")
        #expect(fake.count == 0)
    }

    @Test func anAccountOverTheIdentityBoundIsRefusedNotCut() throws {
        let (g, fake) = try makeGateway()
        let long = String(repeating: "a", count: Gateway.maxIdentityBytes + 1)
        let r = send(g, opaRequest("/v1/data/minio/authz", Array("{\"input\":{\"account\":\"\(long)\",\"action\":\"s3:GetObject\",\"bucket\":\"onc301\",\"object\":\"de/clinical/x\"}}".utf8)))
        #expect(r.status == 400)
        #expect(fake.count == 0)
    }

    @Test(arguments: [(RPCError.notReady("policies not loaded yet"), UInt32(503)),
                      (RPCError.forbidden(method: "decide", uid: 1000, gid: 1000), UInt32(403)),
                      (RPCError.internalError("bug"), UInt32(500))])
    func aDaemonThatGivesNoDecisionIsFalseForMinIOAndRGW(error: RPCError, status: UInt32) throws {
        let (g, fake) = try makeGateway()
        fake.fail(with: error)
        for path in ["/v1/data/minio/authz", "/v1/data/ceph/authz"] {
            let input = path.contains("ceph") ? "rgw-input.json" : "minio-input.json"
            let r = send(g, opaRequest(path, try fixture(input)))
            #expect(r.status == status)
            #expect(try body(r)["result"] == .bool(false))
        }
        let o = send(g, opaRequest("/v1/data/minio-object", try fixture("minio-input.json")))
        #expect(try body(o)["result"] == .object(JSONObject(["allow": .bool(false)])))
    }

    @Test func onlyPostReachesTheDataAPIAndUnknownPathsAre404() throws {
        let (g, fake) = try makeGateway()
        #expect(send(g, HTTPRequest(method: "GET", path: "/v1/data/minio/authz")).status == 405)
        #expect(send(g, opaRequest("/v1/data/nothing/here", try fixture("minio-input.json"))).status == 404)
        #expect(send(g, HTTPRequest(method: "GET", path: "/v2/anything")).status == 404)
        #expect(fake.count == 0)
    }
}

@Suite struct AuthzTests {
    @Test func envoyCheckOfAnS3GetIsAllowedWithDecisionIdAndObligationHeaders() throws {
        let (g, fake) = try makeGateway()
        let r = send(g, try fixtureRequest("envoy-check.json"))
        #expect(r.status == 200)
        #expect(r.header("x-custos-decision-id") == "019ab5c0-4f1e-7a3b-8c2d-1e5f7a9b0c3d")
        #expect(r.header("x-custos-obligations") == #"[{"kind":"legal_basis","purpose":"primary_research","basis":"public_task"}]"#)
        let p = try #require(fake.lastParams)
        #expect(p["action"]?.objectValue?["id"] == .string("read"))  // s3:GetObjectVersion (versionId)
        #expect(p["context"] == .object(JSONObject(["purpose": .string("primary_research"), "region": .string("eu-central-1")])))
        #expect(fake.lastCaller?.onBehalfOf == "header x-forwarded-user:alice")
    }

    @Test func aDenyIs403WithTheReasonsInTheBody() throws {
        let (g, _) = try makeGateway()
        let r = send(g, try fixtureRequest("envoy-check.json", headers: [("x-forwarded-user", "bob")], without: "x-forwarded-user"))
        #expect(r.status == 403)
        #expect(r.header("x-custos-decision-id") != nil)
        let b = try body(r)
        #expect(b["decision"] == .string("deny"))
        #expect(b["guardrail_reasons"]?.arrayValue?.first?.objectValue?["code"] == .string("isolation.not_member"))
    }

    @Test func nginxSubrequestIsDecidedOnTheOriginalURI() throws {
        let (g, fake) = try makeGateway()
        let r = send(g, try fixtureRequest("nginx-subrequest.json"))
        #expect(r.status == 200)
        #expect(fake.lastParams?["resource"]?.objectValue?["id"] == .string("onc301-de-clinical"))
        #expect(fake.lastParams?["context"] == .object(JSONObject(["purpose": .string("primary_research")])))
    }

    /// Envoy and nginx read anything but 200 as a refusal, but a 5xx can be configured to let
    /// requests through (failure_mode_allow): every failure here is 403.
    @Test(arguments: [
        ("x-original-uri", "/files/onc301-de/../card201/ehr.csv", "the path has . or .. segments"),
        ("x-original-uri", "/files/onc301-de/%2e%2e/card201/ehr.csv", "the path has . or .. segments"),
        ("x-original-uri", "/files/onc301-de/%zz", "badly escaped"),
        ("x-original-uri", "/files/card201/ehr.csv", "no resource is mapped to /files/card201/ehr.csv"),
        ("x-original-method", "DELETE", "no Cedar action is mapped to DELETE"),
        ("x-forwarded-user", "", "missing or not a non-empty string"),
    ] as [(String, String, String)])
    func nginxRefusalsAre403AndNeverDecided(header: String, value: String, message: String) throws {
        let (g, fake) = try makeGateway()
        let r = send(g, try fixtureRequest("nginx-subrequest.json", headers: [(header, value)], without: header))
        #expect(r.status == 403)
        #expect(try body(r)["error"]?.objectValue?["message"]?.stringValue?.contains(message) == true)
        #expect(fake.count == 0)
    }

    /// A proxy that appends its header to one the client sent leaves the client's first: a
    /// header a decision rests on that appears twice is refused, whichever copy comes first,
    /// and nothing is decided.
    @Test(arguments: [
        ("envoy-check.json", "x-forwarded-user", "mallory"),
        ("envoy-check.json", "x-forwarded-user", "alice"),
        ("envoy-check.json", "x-custos-purpose", "ml_model_training"),
        ("nginx-subrequest.json", "x-forwarded-user", "mallory"),
        ("nginx-subrequest.json", "X-Forwarded-User", "alice"),
        ("nginx-subrequest.json", "x-original-uri", "/files/card201/ehr.csv"),
        ("nginx-subrequest.json", "x-original-method", "DELETE"),
    ] as [(String, String, String)])
    func aDecisionHeaderSentTwiceIsRefusedWithoutADecision(fixture: String, header: String, value: String) throws {
        let (g, fake) = try makeGateway()
        for request in [try fixtureRequest(fixture, before: [(header, value)]), try fixtureRequest(fixture, headers: [(header, value)])] {
            let r = send(g, request)
            #expect(r.status == 403)
            #expect(try body(r)["error"]?.objectValue?["message"]?.stringValue?.contains("appears 2 times") == true)
        }
        #expect(fake.count == 0)
    }

    /// Without `X-Original-Method` the front door cannot tell a read from a write: refused,
    /// never decided as a GET.
    @Test func anNginxSubrequestWithoutItsOriginalMethodIsRefusedWithoutADecision() throws {
        let (g, fake) = try makeGateway()
        #expect(send(g, try fixtureRequest("nginx-subrequest.json")).status == 200, "the control")
        let r = send(g, try fixtureRequest("nginx-subrequest.json", without: "x-original-method"))
        #expect(r.status == 403)
        #expect(try body(r)["error"]?.objectValue?["message"]?.stringValue?.contains("X-Original-Method header missing") == true)
        #expect(fake.count == 1)
    }

    @Test func aMissingIdentityHeaderOrUnknownGatewayIs403() throws {
        let (g, fake) = try makeGateway()
        #expect(send(g, try fixtureRequest("envoy-check.json", without: "x-forwarded-user")).status == 403)
        #expect(send(g, HTTPRequest(method: "GET", path: "/authz/nope/x", headers: [("x-forwarded-user", "alice")])).status == 403)
        // A copy reads its source too, which one decision would not cover.
        #expect(send(g, HTTPRequest(method: "PUT", path: "/authz/envoy/onc301/de/clinical/x",
                                    headers: [("x-forwarded-user", "alice"), ("x-amz-copy-source", "/card201/ehr.csv")])).status == 403)
        #expect(fake.count == 0)
    }

    @Test(arguments: [RPCError.notReady("policies not loaded yet"), .internalError("bug"), .forbidden(method: "decide", uid: 1, gid: 1)])
    func aDaemonThatGivesNoDecisionIs403NeverA5xx(error: RPCError) throws {
        let (g, fake) = try makeGateway()
        fake.fail(with: error)
        #expect(send(g, try fixtureRequest("envoy-check.json")).status == 403)
        #expect(send(g, try fixtureRequest("nginx-subrequest.json")).status == 403)
    }

    @Test func readyzIs503WhenNotReadyAndHealthzStays200() throws {
        let (g, fake) = try makeGateway()
        #expect(send(g, HTTPRequest(method: "GET", path: "/readyz")).status == 200)
        fake.fail(with: .notReady("x"))
        #expect(send(g, HTTPRequest(method: "GET", path: "/readyz")).status == 503)
        #expect(send(g, HTTPRequest(method: "GET", path: "/healthz")).status == 200)
        #expect(send(g, HTTPRequest(method: "POST", path: "/healthz")).status == 405)
    }

    @Test func obligationHeadersEscapeEverythingButASCII() {
        #expect(Gateway.asciiJSON(.array([.string("Zürich 🧬")])) == #"["Z\u00fcrich \ud83e\uddec"]"#)
    }
}

@Suite struct S3ActionTests {
    @Test(arguments: [
        ("GET", "k", [], "s3:GetObject"), ("HEAD", "k", [], "s3:GetObject"),
        ("GET", "k", [("versionId", "v1")], "s3:GetObjectVersion"), ("GET", "k", [("tagging", nil)], "s3:GetObjectTagging"),
        ("PUT", "k", [], "s3:PutObject"), ("PUT", "k", [("partNumber", "2"), ("uploadId", "u")], "s3:PutObject"),
        ("POST", "k", [("uploads", nil)], "s3:PutObject"), ("POST", "k", [("uploadId", "u")], "s3:PutObject"),
        ("DELETE", "k", [("uploadId", "u")], "s3:AbortMultipartUpload"), ("DELETE", "k", [], "s3:DeleteObject"),
        ("DELETE", "k", [("versionId", "v")], "s3:DeleteObjectVersion"),
        ("GET", "", [], "s3:ListBucket"), ("GET", "", [("versions", nil)], "s3:ListBucketVersions"),
        ("PUT", "", [("replication", nil)], "s3:PutReplicationConfiguration"), ("POST", "", [("delete", nil)], "s3:DeleteObject"),
    ] as [(String, String, [(String, String?)], String)])
    func restCallsMapToTheirIAMAction(method: String, key: String, args: [(String, String?)], action: String) {
        #expect(S3Request.action(method: method, key: key, arguments: args, copySource: false) == action)
    }

    @Test func callsTheFrontDoorDoesNotKnowAreNotGuessed() {
        #expect(S3Request.action(method: "PUT", key: "k", arguments: [], copySource: true) == nil)
        #expect(S3Request.action(method: "GET", key: "", arguments: [("policy", nil)], copySource: false) == nil)
        #expect(S3Request.action(method: "PATCH", key: "k", arguments: [], copySource: false) == nil)
    }
}

@Suite struct HTTPConfigTests {
    @Test func theTestMappingParses() throws {
        let c = try HTTPConfig.parse(try JSON.parse(gatewayConfigText))
        #expect(c.gateways.count == 6)
        #expect(c.limits == HTTPLimits())
    }

    @Test(arguments: [
        (#"{"listners": []}"#, "http.listners"),
        (#"{"limits": {"max_body": 1}}"#, "http.limits.max_body"),
        (#"{"limits": {"max_header_bytes": 100}}"#, "http.limits.max_header_bytes"),
        (#"{"listeners": [{"tcp": "0.0.0.0:8181", "uid": 1, "gid": 1}]}"#, "http.listeners[0].tcp"),
        (#"{"listeners": [{"tcp": "10.1.2.3:8181", "uid": 1, "gid": 1}]}"#, "http.listeners[0].tcp"),
        (#"{"listeners": [{"tcp": "127.0.0.1:8181"}]}"#, "http.listeners[0]"),
        (#"{"listeners": [{"unix": "/x", "mode": 660}]}"#, "http.listeners[0].mode"),
        (#"{"gateways": {"m": {"kind": "opa"}}}"#, "http.gateways.m.kind"),
        (#"{"listeners": [{"unix": "/x"}], "gateways": {"m": {"kind": "minio", "actions": {}, "resources": [{"bucket": "b", "resource": {"type": "D", "id": "x"}}], "principal_header": "x"}}}"#, "http.gateways.m.principal_header"),
        (#"{"listeners": [{"unix": "/x"}], "gateways": {"m": {"kind": "minio", "actions": {"GetObject": "read"}, "resources": [{"bucket": "b", "resource": {"type": "D", "id": "x"}}]}}}"#, "http.gateways.m.actions.GetObject"),
        (#"{"listeners": [{"unix": "/x"}], "gateways": {"m": {"kind": "minio", "actions": {}, "resources": [{"bucket": "b", "resource": {"type": "D", "id": "x"}, "prefx": "a"}]}}}"#, "http.gateways.m.resources[0].prefx"),
        (#"{"listeners": [{"unix": "/x"}], "gateways": {"m": {"kind": "nginx", "actions": {}, "resources": [{"path_prefix": "/a", "resource": {"type": "D", "id": "x"}}]}}}"#, "http.gateways.m.principal_header"),
        (#"{"listeners": [{"unix": "/x"}], "gateways": {"m": {"kind": "rgw", "actions": {}, "resources": [{"bucket": "b", "resource": {"type": "D", "id": "x"}}], "purpose": [{"header": "x-p"}]}}}"#, "http.gateways.m.purpose[0].header"),
        (#"{"listeners": [{"unix": "/x"}], "gateways": {"m": {"kind": "minio", "actions": {}, "resources": [{"bucket": "b", "resource": {"type": "D", "id": "x"}}], "purpose": [{"valu": "x"}]}}}"#, "http.gateways.m.purpose[0].valu"),
        (#"{"gateways": {"m": {"kind": "minio", "actions": {}, "resources": [{"bucket": "b", "resource": {"type": "D", "id": "x"}}]}}}"#, "http.listeners"),
        // First match wins: a route under an earlier one's prefix would never be reached.
        (#"{"listeners": [{"unix": "/x"}], "gateways": {"m": {"kind": "rgw", "actions": {}, "resources": [{"bucket": "b", "resource": {"type": "D", "id": "all"}}, {"bucket": "b", "prefix": "de/", "resource": {"type": "D", "id": "de"}}]}}}"#, "http.gateways.m.resources[1]"),
        (#"{"listeners": [{"unix": "/x"}], "gateways": {"m": {"kind": "rgw", "actions": {}, "resources": [{"bucket": "b", "prefix": "de/", "resource": {"type": "D", "id": "de"}}, {"bucket": "b", "prefix": "de/clinical/", "resource": {"type": "D", "id": "c"}}]}}}"#, "http.gateways.m.resources[1]"),
        (#"{"listeners": [{"unix": "/x"}], "gateways": {"m": {"kind": "nginx", "principal_header": "x", "actions": {}, "resources": [{"path_prefix": "/files/", "resource": {"type": "D", "id": "f"}}, {"path_prefix": "/files/de/", "resource": {"type": "D", "id": "de"}}]}}}"#, "http.gateways.m.resources[1]"),
    ] as [(String, String)])
    func aMistakeNamesItsKey(text: String, key: String) throws {
        #expect(throws: GatewayConfigError.self) { try HTTPConfig.parse(try JSON.parse(text)) }
        do { _ = try HTTPConfig.parse(try JSON.parse(text)) } catch let e as GatewayConfigError { #expect(e.key == key, "\(e)") }
    }
}

/// How S3 calls are routed to resources when a bucket holds more than one: a bucket with its
/// clinical data mapped apart and everything else under one bucket-wide dataset.
@Suite struct S3RoutingTests {
    static let config = #"""
    {"listeners": [{"unix": "/tmp/unused.sock"}],
     "gateways": {
      "rgw": {"kind": "rgw", "path": "ceph/authz",
              "actions": {"s3:GetObject": "read", "s3:ListBucket": "read", "s3:DeleteObject": "delete", "s3:PutReplicationConfiguration": "write"},
              "resources": [{"bucket": "onc301", "prefix": "de/clinical/", "resource": {"type": "Dataset", "id": "onc301-de-clinical"}},
                            {"bucket": "onc301", "resource": {"type": "Dataset", "id": "onc301-other"}},
                            {"bucket": "caf\u00e9", "prefix": "r\u00e9sum\u00e9s/", "resource": {"type": "Dataset", "id": "cafe-resumes"}}],
              "purpose": [{"value": "primary_research"}], "region": [{"value": "eu-central-1"}]},
      "envoy": {"kind": "envoy", "s3": true, "principal_header": "x-forwarded-user",
              "actions": {"s3:ListBucket": "read", "s3:DeleteObject": "delete"},
              "resources": [{"bucket": "onc301", "prefix": "de/clinical/", "resource": {"type": "Dataset", "id": "onc301-de-clinical"}}],
              "purpose": [{"value": "primary_research"}], "region": [{"value": "eu-central-1"}]},
      "minio": {"kind": "minio", "path": "minio/authz",
              "actions": {"s3:ListBucket": "read", "s3:PutReplicationConfiguration": "write"},
              "resources": [{"bucket": "onc301", "prefix": "de/clinical/", "resource": {"type": "Dataset", "id": "onc301-de-clinical"}}],
              "purpose": [{"value": "primary_research"}], "region": [{"value": "eu-central-1"}]}}}
    """#

    func gateway() throws -> (Gateway, FakeDaemon) {
        let fake = try FakeDaemon()
        return (Gateway(config: try HTTPConfig.parse(try JSON.parse(Self.config)), dispatcher: fake.dispatcher), fake)
    }

    func rgw(_ method: String, _ uri: String, _ params: String) -> HTTPRequest {
        let input = JSONObject(["method": .string(method), "relative_uri": .string(uri), "params": .string(params),
                                "user_info": .object(JSONObject(["user_id": .string("alice")]))])
        return opaRequest("/v1/data/ceph/authz", Array(JSON.object(JSONObject(["input": .object(input)])).serialized.utf8))
    }

    func minio(_ action: String, conditions: JSONObject) -> HTTPRequest {
        let input = JSONObject(["account": .string("alice"), "action": .string(action), "bucket": .string("onc301"), "object": .string(""),
                                "conditions": .object(conditions)])
        return opaRequest("/v1/data/minio/authz", Array(JSON.object(JSONObject(["input": .object(input)])).serialized.utf8))
    }

    /// The resource a request was decided on, or nil when it was refused undecided.
    func decided(_ g: Gateway, _ fake: FakeDaemon, _ r: HTTPRequest) -> String? {
        let before = fake.count
        _ = send(g, r)
        guard fake.count > before else { return nil }
        return fake.lastParams?["resource"]?.objectValue?["id"]?.stringValue
    }

    /// A multi-object delete names its keys in the body and replication covers the bucket: a
    /// `prefix` the client adds must not route them to the dataset it names.
    @Test func aBucketLevelCallThatIsNotAListingIsRoutedByTheBucketWhateverItsPrefix() throws {
        let (g, fake) = try gateway()
        #expect(decided(g, fake, rgw("POST", "/onc301", "delete&prefix=de/clinical/")) == "onc301-other")
        #expect(decided(g, fake, rgw("PUT", "/onc301", "replication&prefix=de/clinical/")) == "onc301-other")
        // Where no route covers the whole bucket, such a call is refused undecided.
        let envoy = HTTPRequest(method: "POST", path: "/authz/envoy/onc301", headers: [("x-forwarded-user", "alice")],
                                arguments: [("delete", nil), ("prefix", "de/clinical/")])
        #expect(decided(g, fake, envoy) == nil)
        #expect(send(g, envoy).status == 403)
        #expect(decided(g, fake, minio("s3:PutReplicationConfiguration", conditions: JSONObject(["prefix": .array([.string("de/clinical/")])]))) == nil)
        // A listing is still routed by its prefix.
        #expect(decided(g, fake, rgw("GET", "/onc301", "prefix=de/clinical/2026/")) == "onc301-de-clinical")
        #expect(decided(g, fake, minio("s3:ListBucket", conditions: JSONObject(["prefix": .array([.string("de/clinical/")])]))) == "onc301-de-clinical")
    }

    /// A listing shows the key names under its prefix: the bucket's root, or `de/`, would show
    /// the clinical dataset's names under the bucket-wide dataset's decision.
    @Test(arguments: ["", "prefix=", "prefix=de/", "prefix=de/clin", "list-type=2&prefix=d"])
    func aListingThatReachesIntoAnotherResourcesRouteIsRefused(params: String) throws {
        let (g, fake) = try gateway()
        let r = send(g, rgw("GET", "/onc301", params))
        #expect(r.status == 403)
        #expect(try body(r)["message"]?.stringValue?.contains("would show keys under \"de/clinical/\"") == true, "\(String(decoding: r.body, as: UTF8.self))")
        #expect(fake.count == 0)
        #expect(decided(g, fake, rgw("GET", "/onc301", "prefix=fr/")) == "onc301-other", "a listing beside the clinical data")
    }

    /// MinIO puts the request's headers in `conditions` under their canonical names: a
    /// `Prefix` header is the client's, not the listing's prefix (the query's `prefix`).
    @Test func aMinIOPrefixHeaderIsNotTheListingsPrefix() throws {
        let (g, fake) = try gateway()
        let header = minio("s3:ListBucket", conditions: JSONObject(["Prefix": .array([.string("de/clinical/")])]))
        #expect(decided(g, fake, header) == nil)
        #expect(try body(send(g, header))["result"] == .bool(false))
        #expect(decided(g, fake, minio("s3:ListBucket", conditions: JSONObject(["prefix": .array([.string("de/clinical/x/")]),
                                                                               "Prefix": .array([.string("de/clinical/")])]))) == nil)
        #expect(decided(g, fake, minio("s3:ListBucket", conditions: JSONObject(["prefix": .array([.string("de/clinical/")]),
                                                                               "Prefix": .array([.string("de/clinical/")])]))) == "onc301-de-clinical")
    }

    /// Buckets and prefixes are matched by bytes: "caf\u{E9}" and "cafe\u{301}" are equal Swift
    /// Strings but two different buckets (and keys) to the store.
    @Test func routesMatchBytesNotCanonicallyEquivalentText() throws {
        let (g, fake) = try gateway()
        #expect(decided(g, fake, rgw("GET", "/caf\u{E9}/r\u{E9}sum\u{E9}s/a.pdf", "")) == "cafe-resumes")
        #expect(decided(g, fake, rgw("GET", "/cafe\u{301}/r\u{E9}sum\u{E9}s/a.pdf", "")) == nil)
        #expect(decided(g, fake, rgw("GET", "/caf\u{E9}/re\u{301}sume\u{301}s/a.pdf", "")) == nil)
    }
}

@Suite struct GatewaysGuideTests {
    /// docs/gateways.md's configuration examples are copied by operators as they stand: each
    /// `http` member there must be one this version reads.
    @Test func everyConfigurationInTheGuideParses() throws {
        let guide = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/gateways.md").path
        let text = try String(contentsOfFile: guide, encoding: .utf8)
        var checked = 0
        for block in text.components(separatedBy: "```json\n").dropFirst() {
            let body = try #require(block.components(separatedBy: "```").first)
            let json = try JSON.parse(body)
            guard let http = json.objectValue?["http"] else { continue }
            let c = try HTTPConfig.parse(http)
            #expect(!c.listeners.isEmpty)
            checked += 1
        }
        #expect(checked >= 5, "the guide's MinIO, RGW, Envoy and nginx examples and the listener example")
    }
}

@Suite struct SchedulerExtenderTests {
    @Test func nodeNamesBecomeAPlaceByNameAndTheAnswerKeepsTheGoFieldNames() throws {
        let (g, fake) = try makeGateway()
        let r = send(g, HTTPRequest(method: "POST", path: "/scheduler/k8s/filter", body: try fixture("k8s-filter-names.json")))
        #expect(r.status == 200)
        let b = try body(r)
        #expect(b["NodeNames"] == .array([.string("fra-h100-01")]))
        #expect(b["Nodes"] == .null)
        #expect(b["FailedAndUnresolvableNodes"] == .object(JSONObject(["ore-7": .string("residency.cross_border: EU data outside the EEA")])))
        #expect(b["Error"] == .string(""))
        #expect(r.header("x-custos-decision-id") == "019ab5c0-4f1e-7a3b-8c2d-1e5f7a9b0c3e")
        let (query, caller) = try #require(fake.lastPlacement)
        #expect(query.job.id == "onc301/seg-42-0")
        #expect(query.job.principal == #"User::"carol""#)
        #expect(query.job.datasets == ["onc301-de-clinical", "onc301-fr-genomic"])
        #expect(query.job.gxp)
        #expect(query.job.images == ["registry.helix.example/onc/tumour-seg:2.4.1@sha256:3f1e"])
        #expect(query.nodes.map(\.name) == ["fra-h100-01", "ore-7"])
        #expect(query.nodes.allSatisfy { if case .name = $0 { true } else { false } }, "names, resolved through the inventory")
        #expect(caller.onBehalfOf == "pod onc301/seg-42-0")
    }

    /// `k8s-filter-names.json` with its pod's `spec.containers` and `spec.initContainers` replaced.
    static func pod(containers: [JSON], initContainers: [JSON]? = nil) throws -> [UInt8] {
        var args = try #require(try JSON.parse(try fixture("k8s-filter-names.json")).objectValue)
        var pod = try #require(args["Pod"]?.objectValue)
        var spec = pod["spec"]?.objectValue ?? JSONObject()
        spec.members.removeAll { $0.key == "containers" || $0.key == "initContainers" }
        spec.append("containers", .array(containers))
        if let initContainers { spec.append("initContainers", .array(initContainers)) }
        pod.members.removeAll { $0.key == "spec" }
        pod.append("spec", .object(spec))
        args.members.removeAll { $0.key == "Pod" }
        args.append("Pod", .object(pod))
        return Array(JSON.object(args).serialized.utf8)
    }

    static func container(_ name: String, _ image: JSON?) -> JSON {
        var c = JSONObject(["name": .string(name)])
        if let image { c.append("image", image) }
        return .object(c)
    }

    /// The GxP check reads every image the pod runs: init containers, then containers, each
    /// image once. Only the first container's would let a sidecar run unqualified code beside
    /// the data.
    @Test func everyImageOfThePodIsAskedAboutNotOnlyTheFirstContainers() throws {
        let (g, fake) = try makeGateway()
        let body = try Self.pod(containers: [Self.container("main", .string("reg/seg@sha256:1")), Self.container("shipper", .string("reg/ship:1")),
                                             Self.container("again", .string("reg/seg@sha256:1"))],
                                initContainers: [Self.container("fetch", .string("reg/fetch:2"))])
        let r = send(g, HTTPRequest(method: "POST", path: "/scheduler/k8s/filter", body: body))
        #expect(r.status == 200)
        let (query, _) = try #require(fake.lastPlacement)
        #expect(query.job.images == ["reg/fetch:2", "reg/seg@sha256:1", "reg/ship:1"])
    }

    /// `custos.io/gxp` is "true" or "false": a misspelling must not turn a GxP pod into an
    /// ordinary one, which would drop the qualified-compute checks.
    @Test(arguments: ["True", "TRUE", "yes", "1", " true", "true ", ""])
    func aGxPAnnotationThatIsNeitherTrueNorFalseIsRefusedWithoutADecision(value: String) throws {
        let (g, fake) = try makeGateway()
        func withGxP(_ v: String) throws -> [UInt8] {
            let text = String(decoding: try fixture("k8s-filter-names.json"), as: UTF8.self)
            #expect(text.contains(#""custos.io/gxp": "true""#))
            return Array(text.replacingOccurrences(of: #""custos.io/gxp": "true""#, with: #""custos.io/gxp": "\#(v)""#).utf8)
        }
        let r = send(g, HTTPRequest(method: "POST", path: "/scheduler/k8s/filter", body: try withGxP(value)))
        #expect(try body(r)["Error"]?.stringValue?.contains("expected \"true\" or \"false\"") == true, "\(String(decoding: r.body, as: UTF8.self))")
        #expect(try body(r)["NodeNames"] == .null)
        #expect(fake.count == 0)
        _ = send(g, HTTPRequest(method: "POST", path: "/scheduler/k8s/filter", body: try withGxP("false")))
        #expect(fake.lastPlacement?.query.job.gxp == false, "the control: false is read")
    }

    @Test(arguments: [JSON.null, .int(7), .string("")])
    func aContainerWithoutAnImageIsRefusedWithoutADecision(image: JSON) throws {
        let (g, fake) = try makeGateway()
        for args in [try Self.pod(containers: [Self.container("main", .string("reg/seg:1")), Self.container("side", image == .null ? nil : image)]),
                     try Self.pod(containers: [Self.container("main", .string("reg/seg:1"))], initContainers: [Self.container("init", image)])] {
            let r = send(g, HTTPRequest(method: "POST", path: "/scheduler/k8s/filter", body: args))
            #expect(r.status == 200, "kube-scheduler reads Error, not the status")
            #expect(try body(r)["Error"]?.stringValue?.contains(".image: missing") == true, "\(String(decoding: r.body, as: UTF8.self))")
        }
        #expect(fake.count == 0)
    }

    @Test func nodeObjectsTakeTheirRegionFromTheConfiguredLabelAndComeBackFiltered() throws {
        let (g, fake) = try makeGateway()
        let r = send(g, HTTPRequest(method: "POST", path: "/scheduler/k8s/filter", body: try fixture("k8s-filter-nodes.json")))
        let b = try body(r)
        #expect(b["NodeNames"] == .null)
        let kept = b["Nodes"]?.objectValue?["items"]?.arrayValue ?? []
        #expect(kept.count == 1)
        #expect(kept.first?.objectValue?["metadata"]?.objectValue?["name"] == .string("fra-h100-01"))
        guard case .object(let first)? = fake.lastPlacement?.query.nodes.first else { Issue.record("no node object was asked about"); return }
        #expect(first.region == "eu-central-1")
    }

    @Test func eachFailedNodeGetsItsOwnReasonsWhateverOrderPlaceGivesThemIn() throws {
        let (g, fake) = try makeGateway()
        fake.state.shuffled.withLock { $0 = true }
        let text = #"{"Pod": {"metadata": {"name": "p", "annotations": {"custos.io/principal": "User::\"alice\""}}}, "NodeNames": ["a", "b", "c", "d"]}"#
        let b = try body(send(g, HTTPRequest(method: "POST", path: "/scheduler/k8s/filter", body: Array(text.utf8))))
        #expect(b["NodeNames"] == .array([.string("a")]))
        #expect(b["FailedAndUnresolvableNodes"] == .object(JSONObject(["b", "c", "d"].map {
            JSONObject.Member(key: $0, value: .string("residency.cross_border: about " + $0))
        })))
    }

    /// Filter errors are fatal to the scheduling attempt unless the extender is `ignorable`:
    /// every node failed and `Error` set, so no reading of the answer places the pod.
    @Test(arguments: [RPCError.notReady("policies not loaded yet"), .forbidden(method: "place", uid: 1, gid: 1), .internalError("bug")])
    func noDecisionIsAnErrorForEveryNode(error: RPCError) throws {
        let (g, fake) = try makeGateway()
        fake.fail(with: error)
        let b = try body(send(g, HTTPRequest(method: "POST", path: "/scheduler/k8s/filter", body: try fixture("k8s-filter-names.json"))))
        #expect(b["Error"]?.stringValue?.hasPrefix("custos: ") == true)
        #expect(b["NodeNames"] == .null)
        #expect(b["FailedAndUnresolvableNodes"]?.objectValue?.keys == ["fra-h100-01", "ore-7"])
    }

    @Test(arguments: [
        (#"{"Pod": {"metadata": {"name": "p"}}, "NodeNames": ["a"], "nodeNames": ["b"]}"#, "nodeNames: unknown member"),
        (#"{"Pod": {"metadata": {"name": "p"}}, "NodeNames": ["a"]}"#, "custos.io/principal"),
        (#"{"Pod": {"metadata": {"name": "p"}}, "Nodes": null, "NodeNames": null}"#, "neither NodeNames nor Nodes"),
        ("[", "not JSON"),
    ] as [(String, String)])
    func badExtenderArgsAreAnErrorNeverAPlacement(text: String, message: String) throws {
        let (g, fake) = try makeGateway()
        let b = try body(send(g, HTTPRequest(method: "POST", path: "/scheduler/k8s/filter", body: Array(text.utf8))))
        #expect(b["Error"]?.stringValue?.contains(message) == true, "\(b)")
        #expect(b["NodeNames"] == .null)
        #expect(fake.count == 0)
    }
}
