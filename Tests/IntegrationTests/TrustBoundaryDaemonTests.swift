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

    @Test func aTypoInAPlaceJobIsRefusedNotPlacedAsAnotherJob() throws {
        let d = try Self.daemon()
        let r = try d.call("place", Self.json(#"{"job":{"id":"j","principal":"User::\"alice\"","study":"ONC-301","purpose":"primary_research","datasets":["onc301-de-clinical"],"gpx":true},"nodes":[{"name":"dub-l40s-01","region":"eu-west-1","labels":{"custos.io/gpu-model":"NVIDIA-L40S","custos.io/gpu-driver":"550.90.07"}}]}"#))
        #expect(Self.invalidPath(r) == "params.job.gpx", "\(r)")
        let h = try d.call("health", Self.json(#"{"unknown":1}"#))
        #expect(Self.invalidPath(h) == "params.unknown", "\(h)")
        #expect(try d.call("health", Self.json("{}")).get().objectValue?["live"] == .bool(true))
    }
}
