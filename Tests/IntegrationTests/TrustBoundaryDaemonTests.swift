import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Testing

/// The attacks of issue 10 §1 through the real `custos serve` and its socket: a caller that
/// describes the world (request entities, a misspelt dataset, the data's study, another
/// region, a misspelt job member) gets no allow the folder did not mean.
@Suite(.serialized) struct TrustBoundaryDaemonTests {
    /// The example policies with `guardrails/`; `files` replace top-level files.
    static func daemon(config: String? = nil, files: [String: String] = [:], arguments: [String] = []) throws -> TestDaemon {
        let d = try TestDaemon(config: config, files: files, extraArguments: arguments)
        let fm = FileManager.default
        try fm.createDirectory(atPath: d.policies + "/guardrails", withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: daemonExamplePolicies + "/guardrails") {
            try fm.copyItem(atPath: daemonExamplePolicies + "/guardrails/" + name, toPath: d.policies + "/guardrails/" + name)
        }
        return try d.start()
    }

    static func json(_ text: String) throws -> JSON { try JSON.parse(text) }

    static func decide(_ who: String, _ action: String, _ dataset: String, _ context: String, entities: String? = nil) throws -> JSON {
        try json(#"{"principal":{"type":"\#(who.split(separator: ":")[0])","id":"\#(who.split(separator: ":")[1])"},"action":{"type":"Action","id":"\#(action)"},"resource":{"type":"Dataset","id":"\#(dataset)"},"context":\#(context)\#(entities.map { #","entities":\#($0)"# } ?? "")}"#)
    }

    static func codes(_ r: Result<JSON, RPCError>) throws -> [String] {
        try r.get().objectValue?["guardrail_reasons"]?.arrayValue?.compactMap { $0.objectValue?["code"]?.stringValue } ?? []
    }

    static func invalidPath(_ r: Result<JSON, RPCError>) -> String? {
        guard case .failure(let e) = r, e.code == RPCError.invalidParamsCode else { return nil }
        let rest = e.message.dropFirst("invalid params: ".count)
        return rest.firstRange(of: ": ").map { String(rest[..<$0.lowerBound]) }
    }

    static let eu = #"{"purpose":"primary_research","region":"eu-central-1"}"#
    static let mallory = #"[{"uid":{"type":"User","id":"mallory"},"attrs":{"studies":[{"__entity":{"type":"Study","id":"ONC-301"}}]},"parents":[{"type":"Role","id":"auditor"}]}]"#

    @Test func aNewUserWithAPowerfulRoleInTheRequestGetsNoAllow() throws {
        let d = try Self.daemon()
        let c = try d.client()
        let r = try c.call("decide", params: Self.decide("User:mallory", "read_metadata", "onc301-de-clinical", Self.eu, entities: Self.mallory))
        #expect(errorCodeOf(r) == RPCError.forbiddenCode)
        // The refusal is in the audit log, with the caller the kernel named.
        let q = try c.call("audit.query", params: Self.json(#"{"resource":"privilege entities"}"#)).get().objectValue
        let entry = q?["entries"]?.arrayValue?.first?.objectValue
        #expect(entry?["decision"]?.stringValue == "deny")
        #expect(entry?["caller"]?.objectValue?["uid"] == .int(Int64(getuid())))
    }

    @Test func aCallerGrantedEntitiesStillMayNotDefineAFolderType() throws {
        let d = try Self.daemon(config: #"{"access":{"methods":{"entities":{"allow_uids":[\#(getuid())]}}}}"#)
        let c = try d.client()
        let r = try c.call("decide", params: Self.decide("User:mallory", "read_metadata", "onc301-de-clinical", Self.eu, entities: Self.mallory))
        #expect(Self.invalidPath(r) == "params.entities[0]", "\(r)")
        let attach = #"[{"uid":{"type":"Service","id":"etl"},"attrs":{},"parents":[{"type":"Role","id":"auditor"}]}]"#
        let r2 = try c.call("decide", params: Self.decide("Service:etl", "read_metadata", "onc301-de-clinical", Self.eu, entities: attach))
        #expect(Self.invalidPath(r2) == "params.entities[0].parents[0]", "\(r2)")
        let harmless = #"[{"uid":{"type":"Service","id":"etl"},"attrs":{},"parents":[]}]"#
        let r3 = try c.call("decide", params: Self.decide("Service:etl", "read_metadata", "onc301-de-clinical", Self.eu, entities: harmless))
        #expect(decisionOf(r3) == "deny", "admitted, and no policy permits a Service")
    }

    @Test func aMisspeltDatasetIdIsDeniedAsUnknownData() throws {
        let d = try Self.daemon()
        let r = try d.call("decide", Self.decide("User:dave", "read_metadata", "onc301-de-clinicl", Self.eu))
        #expect(decisionOf(r) == "deny")
        #expect(try Self.codes(r) == ["data.unknown_dataset"])
        #expect(decisionOf(try d.call("decide", Self.decide("User:dave", "read_metadata", "onc301-de-clinical", Self.eu))) == "allow")
    }

    @Test func namingTheDatasStudyDoesNotMakeTheCallerAMember() throws {
        let example = try String(contentsOfFile: daemonExamplePolicies + "/entities.json", encoding: .utf8)
        let end = try #require(example.lastIndex(of: "]"))
        let ursula = #"{"uid":{"type":"User","id":"ursula"},"attrs":{"studies":[{"__entity":{"type":"Study","id":"CARD-201"}}]},"parents":[{"type":"Role","id":"auditor"}]}"#
        let d = try Self.daemon(files: ["entities.json": String(example[..<end]) + "," + ursula + "]\n"])
        let r = try d.call("decide", Self.decide("User:ursula", "read_metadata", "onc301-de-clinical",
                                                 #"{"purpose":"primary_research","region":"eu-central-1","study":"ONC-301"}"#))
        #expect(decisionOf(r) == "deny")
        #expect(try Self.codes(r) == ["isolation.not_member"])
    }

    @Test func aDaemonBoundToItsRegionRefusesAnotherAndDecidesForItsOwn() throws {
        let d = try Self.daemon(arguments: ["--region", "us-west-2"])
        let c = try d.client()
        let claim = try c.call("decide", params: Self.decide("User:alice", "read", "onc301-de-clinical", Self.eu))
        #expect(Self.invalidPath(claim) == "params.context.region", "\(claim)")
        let silent = try c.call("decide", params: Self.decide("User:alice", "read", "onc301-de-clinical", #"{"purpose":"primary_research"}"#))
        #expect(try Self.codes(silent) == ["residency.cross_border"])
        // A node of the inventory in another region than the daemon's is refused too.
        _ = try c.call("nodes.sync", params: Self.json(#"{"nodes":[{"name":"fra-1","region":"eu-central-1"},{"name":"ore-1","region":"us-west-2"}]}"#)).get()
        let elsewhere = try c.call("decide", params: Self.decide("User:alice", "read", "onc301-de-clinical", #"{"purpose":"primary_research","node":"fra-1"}"#))
        #expect(Self.invalidPath(elsewhere) == "params.context.node", "\(elsewhere)")
    }

    @Test func anUnboundDaemonTakesTheRegionOfANamedInventoryNode() throws {
        let d = try Self.daemon()
        let c = try d.client()
        _ = try c.call("nodes.sync", params: Self.json(#"{"nodes":[{"name":"fra-1","region":"eu-central-1"},{"name":"ore-1","region":"us-west-2"}]}"#)).get()
        let ore = try c.call("decide", params: Self.decide("User:alice", "read", "onc301-de-clinical", #"{"purpose":"primary_research","node":"ore-1"}"#))
        #expect(try Self.codes(ore) == ["residency.cross_border"])
        let lie = try c.call("decide", params: Self.decide("User:alice", "read", "onc301-de-clinical", #"{"purpose":"primary_research","node":"ore-1","region":"eu-central-1"}"#))
        #expect(Self.invalidPath(lie) == "params.context.region", "\(lie)")
        let fra = try c.call("decide", params: Self.decide("User:alice", "read", "onc301-de-clinical", #"{"purpose":"primary_research","node":"fra-1"}"#))
        #expect(decisionOf(fra) == "allow")
    }

    @Test func aBoundRegionTheGuardrailsDoNotDefineLeavesTheDaemonNotReadyWithTheReason() throws {
        let d = try Self.daemon(config: #"{"region":"mars-1"}"#)
        let h = try d.call("health").get().objectValue
        #expect(h?["ready"] == .bool(false))
        #expect(h?["reasons"]?.arrayValue?.first?.stringValue?.contains("mars-1") == true, "\(String(describing: h))")
        #expect(errorCodeOf(try d.call("decide", Self.decide("User:alice", "read", "onc301-de-clinical", Self.eu))) == RPCError.notReadyCode)
    }

    @Test func aTypoInAPlaceJobIsRefusedNotPlacedAsAnotherJob() throws {
        let d = try Self.daemon()
        let r = try d.call("place", Self.json(#"{"job":{"id":"j","principal":"User::\"alice\"","study":"ONC-301","purpose":"primary_research","datasets":["onc301-de-clinical"],"gpx":true},"nodes":[{"name":"dub-l40s-01","region":"eu-west-1","labels":{"custos.io/gpu-model":"NVIDIA-L40S","custos.io/gpu-driver":"550.90.07"}}]}"#))
        #expect(Self.invalidPath(r) == "params.job.gpx", "\(r)")
        let h = try d.call("health", Self.json(#"{"unknown":1}"#))
        #expect(Self.invalidPath(h) == "params.unknown", "\(h)")
        #expect(try d.call("health", Self.json("{}")).get().objectValue?["live"] == .bool(true))
    }
}
