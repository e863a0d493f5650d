import AuditLog
import Cedar
import CustosDaemon
import CustosJSON
import CustosServer
import Foundation
import Guardrails
import Synchronization
import Testing

/// `place`'s per-node Cedar question (`Action::"place_on_node"` on `Node::"<name>"`), and what
/// a placement leaves in the audit trail (the pod, every transfer basis of an allowed node).
@Suite struct PlaceNodeChecksTests {
    static let maintenance = #""custos.io/maintenance":"disk replacement""#

    static func job(_ principal: String = "alice", study: String? = "ONC-301", purpose: String = "primary_research",
                    datasets: String = #"["onc301-de-clinical"]"#, extra: String = "") -> String {
        #"{"id":"j-1","principal":"User::\"\#(principal)\"","#
            + (study.map { #""study":"\#($0)","# } ?? "")
            + #""purpose":"\#(purpose)","datasets":\#(datasets)\#(extra)}"#
    }

    static func place(_ job: String, _ nodes: String) -> String { #"{"job":\#(job),"nodes":\#(nodes)}"# }

    static let twoParisNodes = #"[{"name":"par-1","region":"eu-west-3"},{"name":"par-2","region":"eu-west-3","labels":{\#(maintenance)}}]"#

    @Test func aNodeCedarDoesNotAllowIsRejectedNamingTheForbidAndThePoliciesJoinTheReasons() throws {
        let f = try GuardrailFixture()
        let r = try f.object("place", Self.place(Self.job(), Self.twoParisNodes))
        #expect(r["allowed"] == .array([.string("par-1")]))
        let reasons = try #require(r["rejected"]?.objectValue?["par-2"]?.arrayValue)
        #expect(codes(.array(reasons)) == ["placement.not_authorized"])
        #expect(reasons.first?["message"]?.stringValue
                == #"Cedar does not let User::"alice" place job j-1 on node par-2 (Action::"place_on_node"): forbidden by maintenance-nodes-run-platform-jobs-only"#)
        #expect(r["reasons"] == .array(["scientist-places-jobs-in-own-study", "placed-jobs-use-any-node",
                                        "maintenance-nodes-run-platform-jobs-only"].map { .string($0) }))
    }

    /// Cedar reads `action in [Action::"scheduling"]` as in any of the list, groups included:
    /// with `place_on_node` a member of that group, the per-node policies written that way
    /// must still be asked, or the maintenance forbid would never run.
    @Test(arguments: [#"action in [Action::"scheduling"]"#, #"action in Action::"scheduling""#, #"action in [Action::"other", Action::"scheduling"]"#])
    func perNodePoliciesScopedToAGroupOfTheActionAreAsked(scope: String) throws {
        let f = try GuardrailFixture { dir in
            let path = dir + "/60-nodes.cedar"
            let text = try String(contentsOfFile: path, encoding: .utf8)
            try text.replacingOccurrences(of: #"action == Action::"place_on_node""#, with: scope)
                .write(toFile: path, atomically: true, encoding: .utf8)
            let entities = dir + "/entities.json"
            var list = try #require(try JSON.parse(Array(try String(contentsOfFile: entities, encoding: .utf8).utf8)).arrayValue)
            list.append(try JSON.parse(#"{"uid":{"type":"Action","id":"place_on_node"},"attrs":{},"parents":[{"type":"Action","id":"scheduling"}]}"#))
            list.append(try JSON.parse(#"{"uid":{"type":"Action","id":"scheduling"},"attrs":{},"parents":[]}"#))
            list.append(try JSON.parse(#"{"uid":{"type":"Action","id":"other"},"attrs":{},"parents":[]}"#))
            try JSON.array(list).serialized.write(toFile: entities, atomically: true, encoding: .utf8)
        }
        let r = try f.object("place", Self.place(Self.job(), Self.twoParisNodes))
        #expect(r["allowed"] == .array([.string("par-1")]), "\(r)")
        #expect(codes(r["rejected"]?.objectValue?["par-2"]) == ["placement.not_authorized"])
    }

    @Test func aFolderWhosePoliciesNeverNameTheActionAsksNothingPerNode() throws {
        let f = try GuardrailFixture { try FileManager.default.removeItem(atPath: $0 + "/60-nodes.cedar") }
        let r = try f.object("place", Self.place(Self.job(), Self.twoParisNodes))
        #expect(r["allowed"] == .array([.string("par-1"), .string("par-2")]))
        #expect(r["reasons"] == .array([.string("scientist-places-jobs-in-own-study")]))
    }

    @Test func withPerNodePoliciesANodeNoPolicyPermitsIsRejected() throws {
        // Only the forbid is left: Cedar denies by default, so every node is refused.
        let f = try GuardrailFixture { dir in
            let path = dir + "/60-nodes.cedar"
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let cut = try #require(text.range(of: "@id(\"placed-jobs-use-any-node\")"))
            let end = try #require(text.range(of: "resource is Node\n);\n", range: cut.upperBound..<text.endIndex))
            try text.replacingCharacters(in: cut.lowerBound..<end.upperBound, with: "").write(toFile: path, atomically: true, encoding: .utf8)
        }
        let r = try f.object("place", Self.place(Self.job(), #"[{"name":"par-1","region":"eu-west-3"}]"#))
        #expect(r["allowed"] == .array([]))
        let message = r["rejected"]?.objectValue?["par-1"]?.arrayValue?.first?["message"]?.stringValue
        #expect(message?.hasSuffix("no policy permits it") == true, "\(message ?? "nil")")
    }

    @Test func nodesNamedByNameAreCheckedWithTheInventorysLabelsAndObjectsWithTheirOwn() throws {
        let f = try GuardrailFixture()
        _ = try f.call("nodes.sync", #"{"nodes":[{"name":"par-1","region":"eu-west-3"},{"name":"par-2","region":"eu-west-3","labels":{\#(Self.maintenance)}}]}"#)
        let byName = try f.object("place", Self.place(Self.job(), #"["par-1","par-2"]"#))
        #expect(byName["allowed"] == .array([.string("par-1")]))
        #expect(codes(byName["rejected"]?.objectValue?["par-2"]) == ["placement.not_authorized"])
        // An object means what it says, whatever the inventory holds under its name.
        let asSent = try f.object("place", Self.place(Self.job(), #"["par-1",{"name":"par-2","region":"eu-west-3"}]"#))
        #expect(asSent["allowed"] == .array([.string("par-1"), .string("par-2")]))
        // The inventory changes: the cached node entities follow its revision.
        _ = try f.call("nodes.sync", #"{"nodes":[{"name":"par-1","region":"eu-west-3","labels":{\#(Self.maintenance)}}]}"#)
        let after = try f.object("place", Self.place(Self.job(), #"["par-1","par-2"]"#))
        #expect(after["allowed"] == .array([]))
    }

    @Test func thePlatformTeamMayUseANodeUnderMaintenance() throws {
        let f = try GuardrailFixture()
        let r = try f.object("place", Self.place(Self.job("pat", study: nil, purpose: "platform_operations", datasets: "[]"), Self.twoParisNodes))
        #expect(r["allowed"] == .array([.string("par-1"), .string("par-2")]))
    }

    @Test func aFolderThatDefinesNodeEntitiesItselfGetsNoNodeAllowed() throws {
        let f = try GuardrailFixture { dir in
            let path = dir + "/entities.json"
            var text = try String(contentsOfFile: path, encoding: .utf8)
            let open = try #require(text.firstIndex(of: "["))
            text.insert(contentsOf: #"{"uid": {"type": "Node", "id": "par-1"}, "attrs": {"labels": {}}, "parents": []},"#, at: text.index(after: open))
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
        let r = try f.object("place", Self.place(Self.job(), #"[{"name":"par-1","region":"eu-west-3"}]"#))
        #expect(r["allowed"] == .array([]))
        let message = r["rejected"]?.objectValue?["par-1"]?.arrayValue?.first?["message"]?.stringValue ?? ""
        #expect(message.contains("the Node type is the placement's own"), "\(message)")
    }

    @Test func aForbidThatFailsOnANodeDeniesThatNodeAndIsListedInErrors() throws {
        let f = try GuardrailFixture { dir in
            try #"""
            @id("zone-must-be-known")
            forbid (principal, action == Action::"place_on_node", resource is Node)
            when { resource.labels.zone == "quarantine" };
            """#.write(toFile: dir + "/61-zones.cedar", atomically: true, encoding: .utf8)
        }
        let r = try f.object("place", Self.place(Self.job(), #"[{"name":"par-1","region":"eu-west-3"},{"name":"par-3","region":"eu-west-3","labels":{"zone":"a"}}]"#))
        #expect(r["allowed"] == .array([.string("par-3")]))
        #expect(codes(r["rejected"]?.objectValue?["par-1"]) == ["placement.not_authorized"])
        let errors = try #require(r["errors"]?.arrayValue)
        #expect(errors.map { $0["policy"]?.stringValue } == ["zone-must-be-known"])
        #expect(errors.first?["code"] == .string("policy.forbid_error"))
    }

    // MARK: scores

    @Test func scoresPreferTheStudysDedicatedNodesThenTheDatasHomeJurisdiction() throws {
        let f = try GuardrailFixture()
        let nodes = #"[{"name":"fra-onc","region":"eu-central-1","labels":{"custos.io/study":"ONC-301"}},"#
            + #"{"name":"fra-1","region":"eu-central-1"},{"name":"par-1","region":"eu-west-3"},{"name":"lon-1","region":"uk-london"},"#
            + #"{"name":"par-2","region":"eu-west-3","labels":{\#(Self.maintenance)}},{"name":"hyd-1","region":"in-hyderabad"}]"#
        let params = #"{"job":\#(Self.job()),"nodes":\#(nodes),"scores":true}"#
        let r = try f.object("place", params)
        #expect(r["allowed"] == .array(["fra-onc", "fra-1", "par-1", "lon-1"].map { .string($0) }))
        // The DE clinical data is at home in Germany; rejected nodes (residency, per-node
        // check) have no score.
        #expect(r["scores"] == .object(JSONObject([
            JSONObject.Member(key: "fra-onc", value: .int(10)), JSONObject.Member(key: "fra-1", value: .int(5)),
            JSONObject.Member(key: "par-1", value: .int(0)), JSONObject.Member(key: "lon-1", value: .int(0)),
        ])))
        #expect(try f.object("place", Self.place(Self.job(), nodes))["scores"] == nil, "only when asked for")
        let e = try #require(rpcError { () throws(RPCError) in _ = try f.call("place", #"{"job":\#(Self.job()),"nodes":[],"scores":1}"#) })
        #expect(e.message.contains("params.scores"), "\(e.message)")
    }

    // MARK: audit

    final class Records: Sendable {
        let list = Mutex<[DecisionRecord]>([])
        var recorder: DecisionRecorder {
            DecisionRecorder(record: { r throws(RecorderError) in self.list.withLock { $0 += r } })
        }
    }

    @Test func thePlaceRecordCarriesThePodAndEveryTransferBasisOfAnAllowedNode() throws {
        let records = Records()
        let f = try GuardrailFixture(recorder: records.recorder)
        let pod = #","pod":{"namespace":"onc-301","name":"seg-42-0","uid":"7d3c9f4e-1b2a-4c5d-8e6f-0a1b2c3d4e5f"}"#
        let nodes = #"[{"name":"fra-1","region":"eu-central-1"},{"name":"lon-1","region":"uk-london"},{"name":"lon-2","region":"uk-london"},{"name":"zrh-1","region":"ch-zurich"},{"name":"hyd-1","region":"in-hyderabad"}]"#
        let r = try f.object("place", Self.place(Self.job(extra: pod), nodes))
        #expect(r["allowed"] == .array(["fra-1", "lon-1", "lon-2", "zrh-1"].map { .string($0) }))
        let record = try #require(records.list.withLock { $0.last })
        #expect(record.pod == PlacementJob.Pod(namespace: "onc-301", name: "seg-42-0", uid: "7d3c9f4e-1b2a-4c5d-8e6f-0a1b2c3d4e5f"))
        #expect(record.obligations.map(\.kind) == ["legal_basis", "transfer_basis", "transfer_basis"], "one per region, not per node")

        // The audit log's entry: the pod in the context, the transfer bases among the reasons.
        let state = AuditRecorderTests.tempState()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let audit = try AuditRecorder.open(stateDirectory: state)
        let entry = audit.entry(for: record)
        #expect(entry.basis == "public_task")
        let obligations = entry.reasons.filter { $0.hasPrefix("obligation: ") }
        #expect(obligations.count == 2)
        #expect(obligations.first?.hasPrefix("obligation: transfer_basis onc301-de-clinical -> uk-london: adequacy:GB") == true, "\(obligations)")
        #expect(entry.context?["pod"] == .object(JSONObject([
            JSONObject.Member(key: "namespace", value: .string("onc-301")),
            JSONObject.Member(key: "name", value: .string("seg-42-0")),
            JSONObject.Member(key: "uid", value: .string("7d3c9f4e-1b2a-4c5d-8e6f-0a1b2c3d4e5f")),
        ])))
        // The canonical entry keeps them: they are part of what the Merkle tree hashes.
        let text = String(decoding: entry.canonicalJSON(), as: UTF8.self)
        #expect(text.contains(#""context":{"pod":{"name":"seg-42-0","namespace":"onc-301","uid":"7d3c9f4e-1b2a-4c5d-8e6f-0a1b2c3d4e5f"}}"#), "\(text)")
    }

    @Test(arguments: [
        (#","pod":{"namespace":"a","name":"b"}"#, "params.job.pod.uid"),
        (#","pod":{"namespace":"a","name":"b","uid":"c","node":"x"}"#, "params.job.pod.node"),
        (#","pod":"a/b""#, "params.job.pod"),
    ])
    func aMalformedPodIsRefusedNamingTheMember(_ extra: String, _ field: String) throws {
        let f = try GuardrailFixture()
        let e = try #require(rpcError { () throws(RPCError) in _ = try f.call("place", Self.place(Self.job(extra: extra), "[]")) })
        #expect(e.code == RPCError.invalidParamsCode)
        #expect(e.message.contains(field), "\(e.message)")
    }
}
