import CustosDaemon
import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Testing

/// A daemon bound to its region, and `context.node` resolved through the inventory (issue 10
/// §1, docs/security.md "Trust model").
@Suite struct RegionBindingTests {
    @Test func aBoundDaemonRefusesAnotherRegionAndDecidesForItsOwnWhenNoneIsNamed() throws {
        let f = try GuardrailFixture(region: "us-west-2")
        let e = try #require(rpcError { () throws(RPCError) in
            _ = try f.call("decide", Trust.decideAlice(#"{"purpose":"primary_research","region":"eu-central-1"}"#))
        })
        #expect(e.code == RPCError.invalidParamsCode)
        #expect(e.message.hasPrefix("invalid params: params.context.region: "), "\(e.message)")
        let r = try f.object("decide", Trust.decideAlice(#"{"purpose":"primary_research"}"#))
        #expect(codes(r["guardrail_reasons"]) == ["residency.cross_border"])
        let same = try f.object("decide", Trust.decideAlice(#"{"purpose":"primary_research","region":"us-west-2"}"#))
        #expect(codes(same["guardrail_reasons"]) == ["residency.cross_border"])
        let batch = try #require(rpcError { () throws(RPCError) in
            _ = try f.call("decide.batch", #"{"requests":[\#(Trust.decideAlice(#"{"purpose":"primary_research"}"#)),\#(Trust.decideAlice(#"{"region":"eu-west-1"}"#))]}"#)
        })
        #expect(batch.message.hasPrefix("invalid params: params.requests[1].context.region: "), "\(batch.message)")
    }

    @Test func cedarSeesTheRegionTheDaemonDecidedFor() throws {
        let f = try GuardrailFixture(region: "eu-central-1") { dir in
            try #"@id("frankfurt-only") forbid(principal, action, resource) unless { context has region && context.region == "eu-central-1" };"#
                .write(toFile: dir + "/95-frankfurt.cedar", atomically: true, encoding: .utf8)
        }
        let r = try f.object("decide", Trust.decideAlice(#"{"purpose":"primary_research"}"#))
        #expect(r["decision"]?.stringValue == "allow")
        #expect(codes(r["guardrail_reasons"]) == [])
    }

    @Test func unboundTheCallersRegionIsTakenAsAsserted() throws {
        let f = try GuardrailFixture()
        #expect(try f.object("decide", Trust.decideAlice(Trust.eu))["decision"]?.stringValue == "allow")
        #expect(codes(try f.object("decide", Trust.decideAlice(#"{"purpose":"primary_research"}"#))["guardrail_reasons"]) == ["residency.location_missing"])
    }

    /// (bound region, context, expected codes or the -32602 path)
    @Test(arguments: [
        (nil, #"{"purpose":"primary_research","node":"ore-1"}"#, "residency.cross_border"),
        (nil, #"{"purpose":"primary_research","node":"fra-1"}"#, ""),
        (nil, #"{"purpose":"primary_research","node":"fra-1","region":"eu-central-1"}"#, ""),
        (nil, #"{"purpose":"primary_research","node":"ghost"}"#, "placement.unknown_node,residency.location_missing"),
        (nil, #"{"purpose":"primary_research","node":"ore-1","region":"eu-central-1"}"#, "params.context.region"),
        (nil, #"{"purpose":"primary_research","node":5}"#, "params.context.node"),
        ("eu-central-1", #"{"purpose":"primary_research","node":"ore-1"}"#, "params.context.node"),
        ("eu-central-1", #"{"purpose":"primary_research","node":"fra-1"}"#, ""),
        ("eu-central-1", #"{"purpose":"primary_research","node":"ghost"}"#, "placement.unknown_node"),
        // A node the inventory holds without a region is nowhere: neither the caller's region
        // nor the bound one stands in for it.
        (nil, #"{"purpose":"primary_research","node":"lab-1"}"#, "residency.location_missing"),
        (nil, #"{"purpose":"primary_research","node":"lab-1","region":"eu-central-1"}"#, "params.context.region"),
        ("eu-central-1", #"{"purpose":"primary_research","node":"lab-1"}"#, "residency.location_missing"),
        ("eu-central-1", #"{"purpose":"primary_research","node":"lab-1","region":"eu-central-1"}"#, "params.context.region"),
    ] as [(String?, String, String)])
    func aNodeOfTheInventoryGivesTheRegion(_ bound: String?, _ context: String, _ expected: String) throws {
        let f = try GuardrailFixture(region: bound)
        _ = try f.call("nodes.sync", #"{"nodes":[{"name":"fra-1","region":"eu-central-1"},{"name":"ore-1","region":"us-west-2"},{"name":"lab-1"}]}"#)
        if expected.hasPrefix("params.") {
            let e = try #require(rpcError { () throws(RPCError) in _ = try f.call("decide", Trust.decideAlice(context)) })
            #expect(e.code == RPCError.invalidParamsCode)
            #expect(e.message.hasPrefix("invalid params: \(expected): "), "\(e.message)")
        } else {
            let r = try f.object("decide", Trust.decideAlice(context))
            #expect(codes(r["guardrail_reasons"]) == expected.split(separator: ",").map(String.init))
            #expect(r["decision"]?.stringValue == (expected.isEmpty ? "allow" : "deny"))
        }
    }

    @Test func aBoundRegionRegionsJSONDoesNotDefineFailsTheLoadNamingIt() throws {
        let dir = Scratch.directory("custos-region")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let f = try GuardrailFixture()  // only for its copy of the example folder
        var config = DaemonConfig()
        config.region = "mars-1"
        let daemon = try Daemon(DaemonOptions(policiesDirectory: f.policies, socketPath: dir + "/s.sock", config: config))
        #expect(daemon.store.snapshot == nil)
        let why = daemon.store.lastReloadFailure?.error.message ?? ""
        #expect(why.contains("\"mars-1\"") && why.contains("guardrails/regions.json"), "\(why)")
        config.region = "eu-central-1"
        let ok = try Daemon(DaemonOptions(policiesDirectory: f.policies, socketPath: dir + "/s.sock", config: config))
        #expect(ok.store.snapshot != nil)
    }

    @Test func withoutGuardrailsABoundRegionIsStillEnforcedButNotChecked() throws {
        let dir = try makeFolder(["p.cedar": permitAll])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = DaemonConfig()
        config.region = "anywhere-1"
        let daemon = try Daemon(DaemonOptions(policiesDirectory: dir, socketPath: dir + "/s.sock", config: config))
        let caller = CallContext(uid: getuid(), gid: getgid(), pid: 1, connectionID: 1)
        let e = try #require(rpcError { () throws(RPCError) in
            _ = try daemon.dispatcher.call("decide", params: Params(try! JSON.parse(Trust.request(#"{"type":"U","id":"u"}"#, "a", #"{"type":"R","id":"r"}"#, context: #"{"region":"elsewhere"}"#))), context: caller)
        })
        #expect(e.message.hasPrefix("invalid params: params.context.region: "), "\(e.message)")
    }
}
