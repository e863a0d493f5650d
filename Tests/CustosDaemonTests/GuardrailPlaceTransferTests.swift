import CustosDaemon
import CustosJSON
import CustosServer
import Dispatch
import Foundation
import Testing
import Guardrails

/// `place` and `transfer` over the example deployment.
@Suite struct GuardrailPlaceTransferTests {
    static let h100 = #""custos.io/gpu-model":"NVIDIA-H100-80GB-HBM3","custos.io/gpu-driver":"550.90.07""#
    static let qualifiedImage = "registry.helix.example/onc/tumour-seg:2.4.1@sha256:3f1e0c9a7b2d4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f"

    static func nodes(_ items: [(String, String, String)]) -> String {
        "[" + items.map { #"{"name":"\#($0.0)","region":"\#($0.1)","labels":{\#($0.2)}}"# }.joined(separator: ",") + "]"
    }

    @Test func placeWithMixedJurisdictionDatasetsAllowsOnlyNodesWhereEveryDatasetMayBeProcessed() throws {
        let f = try GuardrailFixture()
        // GEN-CH holds Swiss-resident genomes and German donors' data (EU personal data).
        let nodes = Self.nodes([
            ("zrh-1", "ch-zurich", #""custos.io/study":"GEN-CH""#),
            ("fra-shared", "eu-central-1", ""),
            ("fra-onc", "eu-central-1", #""custos.io/study":"ONC-301""#),
            ("ore-1", "us-west-2", ""),
            ("sg-1", "sg-cro", ""),
            ("nowhere", "mars-1", ""),
        ])
        let r = try f.object("place", #"{"job":{"id":"gwas-7","principal":"User::\"grace\"","study":"GEN-CH","purpose":"primary_research","datasets":["gench-ch-wgs","gench-eu-donors"]},"nodes":\#(nodes)}"#)
        #expect(r["allowed"] == .array([.string("zrh-1"), .string("fra-shared")]))
        let rejected = try #require(r["rejected"]?.objectValue)
        #expect(codes(rejected["fra-onc"]) == ["isolation.study_mismatch"])
        #expect(codes(rejected["ore-1"]) == ["residency.cross_border"], "only the German donors' data is refused in the US")
        #expect(codes(rejected["sg-1"]) == ["residency.cross_border"], "the Singapore SCC covers clinical data, not genomic")
        #expect(codes(rejected["nowhere"]) == ["residency.unknown_location"])
        #expect(obligationKinds(r["obligations"]) == ["legal_basis"])
        let zrh = try #require(r["node_obligations"]?.objectValue?["zrh-1"]?.arrayValue)
        #expect(zrh.map { $0.objectValue?["basis"]?.stringValue?.hasPrefix("adequacy:CH") } == [true])
        #expect(r["decision_id"]?.stringValue?.count == 36)
        // The Cedar policy that let the principal place the job, named as a decide names it,
        // then the per-node policy that let it use the allowed nodes (policies/60-nodes.cedar).
        #expect(r["reasons"] == .array([.string("lead-places-jobs-in-own-study"), .string("placed-jobs-use-any-node")]))
    }

    @Test func placeRejectsEveryNodeWhenCedarDoesNotLetThePrincipalPlaceJobsInTheStudy() throws {
        let f = try GuardrailFixture()
        let r = try f.object("place", #"{"job":{"id":"j","principal":"User::\"bob\"","study":"ONC-301","purpose":"primary_research","datasets":["onc301-de-clinical"]},"nodes":\#(Self.nodes([("fra-onc", "eu-central-1", "")]))}"#)
        #expect(r["allowed"] == .array([]))
        #expect(r["reasons"] == .array([]))
        let reasons = codes(r["rejected"]?.objectValue?["fra-onc"])
        #expect(reasons.contains("placement.not_authorized"))
    }

    @Test func aGxPJobRunsOnlyOnQualifiedGPUsWithAQualifiedImageDigest() throws {
        let f = try GuardrailFixture()
        let nodes = Self.nodes([("fra-h100", "eu-central-1", Self.h100 + #","custos.io/study":"ONC-301""#),
                                ("dub-l40s", "eu-west-1", #""custos.io/gpu-model":"NVIDIA-L40S","custos.io/gpu-driver":"550.90.07""#)])
        let ok = try f.object("place", #"{"job":{"id":"seg","principal":"User::\"carol\"","study":"ONC-301","purpose":"primary_research","datasets":["onc301-de-clinical"],"gxp":true,"image":"\#(Self.qualifiedImage)"},"nodes":\#(nodes)}"#)
        #expect(ok["allowed"] == .array([.string("fra-h100")]))
        #expect(codes(ok["rejected"]?.objectValue?["dub-l40s"]) == ["compute.unqualified_node"])
        let tagged = try f.object("place", #"{"job":{"id":"seg","principal":"User::\"carol\"","study":"ONC-301","purpose":"primary_research","datasets":["onc301-de-clinical"],"gxp":true,"image":"registry.helix.example/onc/tumour-seg:2.4.1"},"nodes":\#(nodes)}"#)
        #expect(tagged["allowed"] == .array([]))
        #expect(codes(tagged["rejected"]?.objectValue?["fra-h100"]) == ["compute.unqualified_image"])
        // A job of several images (a pod's sidecars) is qualified only if every one is.
        let both = try f.object("place", #"{"job":{"id":"seg","principal":"User::\"carol\"","study":"ONC-301","purpose":"primary_research","datasets":["onc301-de-clinical"],"gxp":true,"images":["\#(Self.qualifiedImage)","\#(Self.qualifiedImage)"]},"nodes":\#(nodes)}"#)
        #expect(both["allowed"] == .array([.string("fra-h100")]))
        for sidecar in ["registry.helix.example/onc/log-shipper:1.0", "registry.helix.example/onc/log-shipper@sha256:" + String(repeating: "0", count: 64)] {
            let r = try f.object("place", #"{"job":{"id":"seg","principal":"User::\"carol\"","study":"ONC-301","purpose":"primary_research","datasets":["onc301-de-clinical"],"gxp":true,"images":["\#(Self.qualifiedImage)","\#(sidecar)"]},"nodes":\#(nodes)}"#)
            #expect(r["allowed"] == .array([]), "an unqualified second image \(sidecar)")
            #expect(codes(r["rejected"]?.objectValue?["fra-h100"]) == ["compute.unqualified_image"])
        }
        let none = try f.object("place", #"{"job":{"id":"seg","principal":"User::\"carol\"","study":"ONC-301","purpose":"primary_research","datasets":["onc301-de-clinical"],"gxp":true,"images":[]},"nodes":\#(nodes)}"#)
        #expect(codes(none["rejected"]?.objectValue?["fra-h100"]) == ["compute.unqualified_image"])
    }

    /// One short request must not ask for an answer of nodes x datasets reasons: each of 2,000
    /// unknown names is listed with at most `maxReasonsPerNode` reasons, although the job names
    /// 1,000 datasets the folder does not hold (2 million reasons, about 200 MB, before).
    @Test func aPlaceOfManyUnknownDatasetsOnManyNodesHasABoundedAnswer() throws {
        let f = try GuardrailFixture()
        let datasets = (0..<1000).map { "\"x\($0)\"" }.joined(separator: ",")
        let names = (0..<2000).map { "\"n\($0)\"" }.joined(separator: ",")
        let params = #"{"job":{"id":"j","principal":"User::\"carol\"","datasets":[\#(datasets)]},"nodes":[\#(names)]}"#
        let r = try f.object("place", params)
        let bytes = JSON.object(r).serialized.utf8.count
        #expect(bytes < 2000 * Placement.maxReasonsPerNode * 200, "\(bytes) bytes")
        let rejected = try #require(r["rejected"]?.objectValue)
        #expect(rejected.count == 2000)
        for m in rejected.members {
            let list = try #require(m.value.arrayValue)
            #expect(list.count == Placement.maxReasonsPerNode)
            #expect(list.first?.objectValue?["code"] == .string("placement.unknown_node"))
            #expect(list.last?.objectValue?["code"] == .string("placement.more_reasons"))
        }
    }

    @Test(arguments: [
        (#"{"nodes":[]}"#, "params.job"),
        (#"{"job":{"id":"j","principal":"User::\"carol\"","datasets":"x"},"nodes":[]}"#, "params.job.datasets"),
        (#"{"job":{"id":"j","principal":"carol","datasets":[]},"nodes":[]}"#, "params.job.principal"),
        (#"{"job":{"id":"j","principal":"User::\"carol\"","datasets":[]},"nodes":[{"region":"x"}]}"#, "params.nodes[0].name"),
        (#"{"job":{"id":"j","principal":"User::\"carol\"","datasets":[]},"nodes":[],"extra":1}"#, "params.extra"),
        (#"{"job":{"id":"j","principal":"User::\"carol\"","datasets":[],"image":"a","images":["b"]},"nodes":[]}"#, "params.job.images"),
        (#"{"job":{"id":"j","principal":"User::\"carol\"","datasets":[],"images":"a"},"nodes":[]}"#, "params.job.images"),
        (#"{"job":{"id":"j","principal":"User::\"carol\"","datasets":[],"images":["a",7]},"nodes":[]}"#, "params.job.images[1]"),
        (#"{"job":{"id":"j","principal":"User::\"carol\"","datasets":["x","y","x"]},"nodes":[]}"#, "params.job.datasets[2]"),
    ])
    func placeParamsErrorsNameTheField(params: String, field: String) throws {
        let f = try GuardrailFixture()
        let e = try #require(rpcError { () throws(RPCError) in _ = try f.call("place", params) })
        #expect(e.code == RPCError.invalidParamsCode)
        #expect(e.message.contains(field), "\(e.message)")
    }

    struct TransferCase: Sendable, CustomStringConvertible {
        var name: String
        var params: String
        var decision: String
        var codes: [String]
        var basisPrefix: String?
        var cedarReasons: [String]
        var description: String { name }
    }

    static func move(_ who: String, _ dataset: String, _ from: String, _ to: String, _ kind: String, basis: String? = nil) -> String {
        #"{"principal":"User::\"\#(who)\"","dataset":"\#(dataset)","from":"\#(from)","to":"\#(to)","kind":"\#(kind)"\#(basis.map { #","basis":"\#($0)""# } ?? "")}"#
    }

    static let transfers: [TransferCase] = [
        TransferCase(name: "replicate inside the EEA: no transfer, no basis needed",
                     params: move("pat", "onc301-de-clinical", "eu-central-1", "eu-west-3", "replicate"),
                     decision: "allow", codes: [], basisPrefix: nil, cedarReasons: ["platform-replicates-and-backs-up"]),
        TransferCase(name: "backup to the Singapore CRO: allowed on its SCC, basis recorded",
                     params: move("pat", "onc301-de-clinical", "eu-central-1", "sg-cro", "backup"),
                     decision: "allow", codes: [], basisPrefix: "scc:scc-sg-cro-2025", cedarReasons: ["platform-replicates-and-backs-up"]),
        TransferCase(name: "failover to a US region without DPF: cross-border, denied",
                     params: move("pat", "onc301-de-clinical", "eu-central-1", "us-west-2", "failover"),
                     decision: "deny", codes: ["residency.cross_border"], basisPrefix: nil, cedarReasons: ["platform-replicates-and-backs-up"]),
        TransferCase(name: "copy of genomic data to the group's Boston lab: binding corporate rules",
                     params: move("carol", "onc301-fr-genomic", "eu-west-3", "us-boston-helix", "copy"),
                     decision: "allow", codes: [], basisPrefix: "bcr:bcr-helix", cedarReasons: ["lead-copies-and-exports-own-study"]),
        TransferCase(name: "export to a non-adequate country without a basis: denied",
                     params: move("carol", "onc301-de-clinical", "eu-central-1", "in-hyderabad", "export"),
                     decision: "deny", codes: ["residency.cross_border"], basisPrefix: nil, cedarReasons: ["lead-copies-and-exports-own-study"]),
        TransferCase(name: "onward move from Zurich to India needs its own basis",
                     params: move("pat", "gench-eu-donors", "ch-zurich", "in-hyderabad", "replicate"),
                     decision: "deny", codes: ["residency.cross_border"], basisPrefix: nil, cedarReasons: ["platform-replicates-and-backs-up"]),
        TransferCase(name: "a named basis that does not apply to the destination is refused",
                     params: move("pat", "onc301-de-clinical", "eu-central-1", "us-east-1", "backup", basis: "scc-sg-cro-2025"),
                     decision: "deny", codes: ["residency.cross_border"], basisPrefix: nil, cedarReasons: ["platform-replicates-and-backs-up"]),
        TransferCase(name: "exporting identified data is forbidden by Cedar whatever the destination",
                     params: move("frank", "card201-us-ehr", "us-east-1", "us-west-2", "export"),
                     decision: "deny", codes: [], basisPrefix: nil, cedarReasons: ["no-export-transfer-of-identified-data"]),
        TransferCase(name: "a platform admin may not copy (only replicate, back up, fail over)",
                     params: move("pat", "onc301-de-clinical", "eu-central-1", "eu-west-3", "copy"),
                     decision: "deny", codes: [], basisPrefix: nil, cedarReasons: []),
    ]

    @Test(arguments: transfers)
    func transferChecksCedarAndTheDestination(_ c: TransferCase) throws {
        let f = try GuardrailFixture()
        let r = try f.object("transfer", c.params)
        #expect(r["decision"]?.stringValue == c.decision)
        #expect(codes(r["guardrail_reasons"]) == c.codes)
        #expect(r["reasons"] == .array(c.cedarReasons.map { .string($0) }))
        let basis = r["obligations"]?.arrayValue?.first?.objectValue?["basis"]?.stringValue
        if let p = c.basisPrefix { #expect(basis?.hasPrefix(p) == true, "\(basis ?? "no basis")") } else { #expect(basis == nil) }
    }

    @Test(arguments: [
        (#"{"principal":"User::\"pat\"","dataset":"x","from":"eu-central-1","to":"eu-west-3","kind":"teleport"}"#, "params.kind"),
        (#"{"principal":"User::\"pat\"","dataset":"x","from":"eu-central-1","kind":"copy"}"#, "params.to"),
        (#"{"principal":"User::\"pat\"","dataset":"x","from":"a","to":"b","kind":"copy","why":"x"}"#, "params.why"),
        // Inside the EEA no basis is needed, but a misspelt one is still an error, not ignored.
        (#"{"principal":"User::\"pat\"","dataset":"onc301-de-clinical","from":"eu-central-1","to":"eu-west-3","kind":"copy","basis":"scc-sg-cro-2052"}"#, "params.basis"),
    ])
    func transferParamsErrorsNameTheField(params: String, field: String) throws {
        let f = try GuardrailFixture()
        let e = try #require(rpcError { () throws(RPCError) in _ = try f.call("transfer", params) })
        #expect(e.code == RPCError.invalidParamsCode)
        #expect(e.message.contains(field), "\(e.message)")
    }

    @Test func aTransferOfAnUnknownDatasetIsDeniedNotWavedThrough() throws {
        let f = try GuardrailFixture()
        let r = try f.object("transfer", Self.move("pat", "no-such-dataset", "eu-central-1", "eu-west-3", "replicate"))
        #expect(r["decision"]?.stringValue == "deny")
        #expect(codes(r["guardrail_reasons"]) == ["data.unknown_dataset"])
    }
}

/// The scheduler hook at its documented scale through the daemon's method table (params already
/// parsed, as the dispatcher hands them over): 1,000 candidate nodes over every configured region.
/// How long it takes is a benchmark figure (`custos bench place`, docs/benchmarks.md), not a test.
@Suite struct GuardrailPlaceScaleTests {
    @Test func placeWithAThousandNodesThroughTheMethodTableAnswersForEveryNode() throws {
        let f = try GuardrailFixture()
        let regions = ["eu-central-1", "eu-west-3", "eu-west-1", "gr-athens", "ch-zurich", "uk-london",
                       "us-east-1", "us-boston-helix", "us-west-2", "sg-cro", "in-hyderabad"]
        var nodes: [String] = []
        for i in 0..<1000 {
            let study = i % 7 == 0 ? #","custos.io/study":"GEN-CH""# : ""
            nodes.append(#"{"name":"n\#(i)","region":"\#(regions[i % regions.count])","labels":{"custos.io/gpu-model":"NVIDIA-H100-80GB-HBM3","custos.io/gpu-driver":"550.90.07"\#(study)}}"#)
        }
        let params = try JSON.parse(#"{"job":{"id":"bench","principal":"User::\"carol\"","study":"ONC-301","purpose":"primary_research","datasets":["onc301-de-clinical","onc301-fr-genomic"],"gxp":true,"image":"\#(GuardrailPlaceTransferTests.qualifiedImage)"},"nodes":[\#(nodes.joined(separator: ","))]}"#)
        // Twice: the second call runs on the state the first one left (memoised node maps).
        var answers: [JSONObject] = []
        for _ in 0..<2 {
            let r = try f.dispatcher.call("place", params: Params(params), context: f.caller)
            answers.append(try #require(r.objectValue))
        }
        // (Compared by member: each answer has its own decision_id.)
        let same = answers[0]["allowed"] == answers[1]["allowed"] && answers[0]["rejected"] == answers[1]["rejected"]
        #expect(same, "the second call answers as the first")
        let a = answers[0]
        let allowed = a["allowed"]?.arrayValue ?? [], rejected = a["rejected"]?.objectValue ?? JSONObject()
        #expect(allowed.count + rejected.count == 1000)
        #expect(allowed.count > 0 && rejected.count > 0)
        // Every node is answered exactly once, under its own name.
        var names = Set(allowed.compactMap(\.stringValue))
        names.formUnion(rejected.keys)
        #expect(names == Set((0..<1000).map { "n\($0)" }))
    }
}
