import CustosDaemon
import CustosJSON
import CustosServer
import Foundation
import Testing

/// Every method refuses members it does not know, at every depth with a fixed shape, naming
/// the path; methods without params take only absent params, `{}` or `[]` (issue 10 §1).
@Suite struct UnknownMembersTests {
    struct Member: Sendable, CustomStringConvertible {
        var method: String
        var params: String
        var path: String
        var description: String { "\(method) \(params)" }
    }

    static let job = #""id":"j","principal":"User::\"alice\"","study":"ONC-301","purpose":"primary_research","datasets":["onc301-de-clinical"]"#
    static let decideParams = Trust.decideAlice(Trust.eu)

    /// One row per way of misspelling a member, at every depth that has a fixed shape;
    /// `everyMethodIsCovered` keeps the table complete.
    static let members: [Member] = [
        Member(method: "decide", params: #"{"principal":{"type":"User","id":"alice"},"action":{"type":"Action","id":"read"},"resource":{"type":"Dataset","id":"x"},"contxt":{}}"#, path: "params.contxt"),
        Member(method: "decide", params: #"{"principal":{"type":"User","id":"alice"},"action":{"type":"Action","id":"read"},"resource":{"type":"Dataset","id":"x"},"entities":[{"uid":{"type":"S","id":"s"},"attrs":{},"parents":[],"parent":[]}]}"#, path: "params.entities[0]"),
        Member(method: "decide.batch", params: #"{"requests":[],"request":[]}"#, path: "params.request"),
        Member(method: "decide.batch", params: #"{"requests":[\#(decideParams),{"principal":{"type":"User","id":"alice"},"action":{"type":"Action","id":"read"},"resource":{"type":"Dataset","id":"x"},"contxt":{}}]}"#, path: "params.requests[1].contxt"),
        Member(method: "place", params: #"{"job":{\#(job)},"nodes":[],"node":[]}"#, path: "params.node"),
        Member(method: "place", params: #"{"job":{\#(job),"gpx":true},"nodes":[]}"#, path: "params.job.gpx"),
        Member(method: "place", params: #"{"job":{\#(job)},"nodes":[{"name":"n","regoin":"eu-west-1"}]}"#, path: "params.nodes[0].regoin"),
        Member(method: "transfer", params: #"{"principal":"User::\"pat\"","dataset":"onc301-de-clinical","from":"eu-central-1","to":"eu-west-1","kind":"backup","bases":"x"}"#, path: "params.bases"),
        Member(method: "consent.grant", params: #"{"cohort":"onc301-de","purpose":"ml_model_training","evidence":"e","granted":"2026-01-01"}"#, path: "params.granted"),
        Member(method: "consent.withdraw", params: #"{"cohort":"onc301-de","purpose":"ml_model_training","at":"now"}"#, path: "params.at"),
        Member(method: "consent.get", params: #"{"cohort":"onc301-de","purpse":"x"}"#, path: "params.purpse"),
        Member(method: "hold.set", params: #"{"dataset":"onc301-de-clinical","matter":"m","reason":"r","until":"2030"}"#, path: "params.until"),
        Member(method: "hold.release", params: #"{"dataset":"onc301-de-clinical","matter":"m","reason":"r","force":true}"#, path: "params.force"),
        Member(method: "retention.status", params: #"{"dataset":"onc301-de-clinical","as_of":"2030-01-01"}"#, path: "params.as_of"),
        Member(method: "retention.due", params: #"{"asof":"2030-01-01"}"#, path: "params.asof"),
        Member(method: "nodes.sync", params: #"{"nodes":[],"replce":true}"#, path: "params.replce"),
        Member(method: "nodes.sync", params: #"{"nodes":[{"name":"n","labels":{},"zone":"a"}]}"#, path: "params.nodes[0].zone"),
        Member(method: "nodes.remove", params: #"{"names":[],"all":true}"#, path: "params.all"),
        Member(method: "nodes.list", params: #"{"unknown":1}"#, path: "params.unknown"),
        Member(method: "nodes.status", params: #"{"unknown":1}"#, path: "params.unknown"),
        Member(method: "audit.query", params: #"{"principle":"User::\"alice\""}"#, path: "params.principle"),
        Member(method: "audit.checkpoint", params: #"{"unknown":1}"#, path: "params.unknown"),
        Member(method: "health", params: #"{"unknown":1}"#, path: "params.unknown"),
        Member(method: "policy.status", params: #"{"unknown":1}"#, path: "params.unknown"),
        Member(method: "policy.reload", params: #"{"unknown":1}"#, path: "params.unknown"),
        Member(method: "health", params: "[1]", path: "params"),
        Member(method: "nodes.list", params: #"["a"]"#, path: "params"),
        Member(method: "audit.checkpoint", params: "[1]", path: "params"),
        Member(method: "policy.status", params: "[1]", path: "params"),
        Member(method: "policy.reload", params: "[1]", path: "params"),
        Member(method: "retention.due", params: "[1]", path: "params"),
        Member(method: "audit.query", params: "[1]", path: "params"),
        Member(method: "metrics", params: #"{"formt":"prometheus"}"#, path: "params.formt"),
        Member(method: "metrics", params: "[1]", path: "params"),
    ]

    @Test(arguments: members)
    func everyMethodRefusesUnknownMembersNamingThePath(_ m: Member) throws {
        let f = try GuardrailFixture()
        let e = try #require(rpcError { () throws(RPCError) in _ = try f.call(m.method, m.params) }, "accepted")
        #expect(e.code == RPCError.invalidParamsCode, "\(e.message)")
        #expect(e.message.hasPrefix("invalid params: \(m.path): "), "\(e.message)")
        if m.method == "nodes.sync" {
            #expect(try f.object("nodes.list", "{}")["nodes"] == .array([]), "nothing changed")
        }
    }

    @Test func everyMethodIsCovered() throws {
        let f = try GuardrailFixture()
        #expect(Set(Self.members.map(\.method)) == Set(f.dispatcher.methodNames))
    }

    /// Methods without params, and methods whose params are all optional, take absent params,
    /// `{}` and `[]` alike.
    @Test(arguments: ["health", "policy.status", "policy.reload", "nodes.list", "nodes.status", "audit.checkpoint", "audit.query", "retention.due", "metrics"])
    func absentEmptyObjectAndEmptyArrayParamsAreTheSame(_ method: String) throws {
        let f = try GuardrailFixture()
        for params in [nil, "{}", "[]"] as [String?] {
            let json = try params.map { try JSON.parse($0) }
            let e = rpcError { () throws(RPCError) in _ = try f.dispatcher.call(method, params: Params(json), context: f.caller) }
            #expect(e?.code != RPCError.invalidParamsCode, "\(method) \(params ?? "absent"): \(e?.message ?? "")")
        }
    }
}
