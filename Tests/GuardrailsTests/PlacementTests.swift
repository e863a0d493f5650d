import Cedar
import CustosJSON
import Guardrails
import Testing

private let datasets: [String: DatasetAttributes] = [
    "onc-de": DatasetAttributes(id: "onc-de", residency: "DE", state: .pseudonymised, dataClass: "clinical", study: "ONC-301"),
    "onc-fr": DatasetAttributes(id: "onc-fr", residency: "FR", state: .pseudonymised, dataClass: "clinical", study: "ONC-301"),
    "card-us": DatasetAttributes(id: "card-us", residency: "US", state: .identified, dataClass: "clinical", study: "CARD-201"),
    "gen-ch": DatasetAttributes(id: "gen-ch", residency: "CH", state: .pseudonymised, dataClass: "genomic", study: "GEN-CH"),
    "onc-anon": DatasetAttributes(id: "onc-anon", residency: "DE", state: .anonymised, anonymisationAssessment: "ANON-7",
                                  dataClass: "clinical", study: "ONC-301"),
    "onc-genomic": DatasetAttributes(id: "onc-genomic", residency: "DE", state: .pseudonymised, dataClass: "genomic", study: "ONC-301"),
]

private let gpu = ["custos.io/gpu-model": "NVIDIA-H100-80GB-HBM3", "custos.io/gpu-driver": "550.90.07"]
private let nodes: [PlacementNode] = [
    PlacementNode(name: "fra-1", region: "eu-central-1", labels: gpu.merging(["custos.io/study": "ONC-301"]) { a, _ in a }),
    PlacementNode(name: "par-1", region: "eu-west-3", labels: gpu),
    PlacementNode(name: "zrh-1", region: "ch-zurich", labels: gpu),
    // CARD-201 is confined to nodes labelled node-restriction.kubernetes.io/study (compute.json dedicated).
    PlacementNode(name: "iad-1", region: "us-east-1",
                  labels: gpu.merging(["custos.io/study": "CARD-201", "node-restriction.kubernetes.io/study": "CARD-201"]) { a, _ in a }),
    PlacementNode(name: "pdx-1", region: "us-west-2", labels: gpu),
    PlacementNode(name: "sin-1", region: "sg-cro", labels: gpu),
    PlacementNode(name: "hyd-1", region: "in-hyderabad", labels: gpu),
    PlacementNode(name: "old-1", region: "eu-west-1", labels: ["custos.io/gpu-model": "NVIDIA-H100-80GB-HBM3", "custos.io/gpu-driver": "535.0"]),
    PlacementNode(name: "nowhere", region: nil, labels: gpu),
    PlacementNode(name: "moon-1", region: "moon-base", labels: gpu),
]

/// The principal is a member of the job's study unless `members` says otherwise.
private func place(_ job: PlacementJob, mayPlace: Bool = true, members: Set<String>?? = .none) -> PlacementResult {
    Placement.place(job: job, nodes: nodes, config: Fixtures.config, consent: .empty, now: Fixtures.now,
                    principalStudies: members ?? job.study.map { [$0] }, resolve: { id throws(Denial) in datasets[id] }, mayPlace: { _ in mayPlace })
}

private func codes(_ r: PlacementResult, _ node: String) -> [DenialCode] {
    r.rejected.first { $0.node == node }?.reasons.map(\.code) ?? []
}

/// (datasets, study, expected allowed nodes)
let placementCases: [([String], String?, [String])] = [
    // EU trial data from two EEA sites: EEA nodes, adequacy (CH, DPF US), the SCC recipient.
    (["onc-de", "onc-fr"], "ONC-301", ["fra-1", "par-1", "zrh-1", "sin-1", "old-1"]),
    // Adding genomic data drops the SCC recipient, whose clauses cover clinical data only.
    (["onc-de", "onc-genomic"], "ONC-301", ["fra-1", "par-1", "zrh-1", "old-1"]),
    // US data is not restricted by residency, but CARD-201 is confined to its dedicated cluster.
    (["card-us"], "CARD-201", ["iad-1"]),
    // Anonymised data goes anywhere its study may go.
    (["onc-anon"], "ONC-301", ["fra-1", "par-1", "zrh-1", "pdx-1", "sin-1", "hyd-1", "old-1", "nowhere", "moon-1"]),
]

@Test(arguments: placementCases.indices)
func placementAllowsOnlyNodesWhereEveryDatasetMayGo(_ i: Int) {
    let (ds, study, expected) = placementCases[i]
    let r = place(PlacementJob(id: "job-\(i)", principal: "User::\"alice\"", study: study, purpose: "primary_research", datasets: ds))
    #expect(r.allowed == expected)
    #expect(r.allowed.count + r.rejected.count == nodes.count)
}

@Test func mixedJurisdictionJobIsRejectedForEachReason() {
    let r = place(PlacementJob(id: "j", principal: "p", study: "ONC-301", purpose: "primary_research", datasets: ["onc-de", "onc-fr"]))
    #expect(codes(r, "hyd-1") == [.residencyCrossBorder, .residencyCrossBorder])
    #expect(codes(r, "pdx-1") == [.residencyCrossBorder, .residencyCrossBorder])
    #expect(codes(r, "iad-1") == [.isolationStudyMismatch])
    #expect(codes(r, "nowhere") == [.residencyLocationMissing])
    #expect(codes(r, "moon-1") == [.residencyUnknownLocation])
    #expect(r.obligations(forNode: "zrh-1").count == 2)
    #expect(r.obligations(forNode: "par-1").isEmpty)
    #expect(r.obligations == [.legalBasis(purpose: "primary_research", basis: "public_task")])
}

@Test func gxpJobsNeedQualifiedNodesAndAPinnedQualifiedImage() {
    let digest = "sha256:3f1e0c9a7b2d4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f"
    let ok = place(PlacementJob(id: "g", principal: "p", study: "ONC-301", purpose: "primary_research", datasets: ["onc-de"],
                                gxp: true, image: "registry.helix.example/onc/tumour-seg@" + digest))
    #expect(ok.allowed == ["fra-1", "par-1", "zrh-1", "sin-1"])
    #expect(codes(ok, "old-1") == [.computeUnqualifiedNode])
    for image in ["registry.helix.example/onc/tumour-seg:2.4.1", "x@sha256:" + String(repeating: "0", count: 64)] as [String?] + [nil] {
        let bad = place(PlacementJob(id: "g", principal: "p", study: "ONC-301", purpose: "primary_research", datasets: ["onc-de"],
                                     gxp: true, image: image))
        #expect(bad.allowed.isEmpty)
        #expect(codes(bad, "fra-1") == [.computeUnqualifiedImage])
    }
    // Every image of the job counts, not the first: an unqualified sidecar, before or after.
    let pinned = "registry.helix.example/onc/tumour-seg@" + digest
    for images in [[pinned, "registry.helix.example/onc/log-shipper:1.0"], ["registry.helix.example/onc/log-shipper:1.0", pinned],
                   [pinned, "x@sha256:" + String(repeating: "0", count: 64)]] {
        let bad = place(PlacementJob(id: "g", principal: "p", study: "ONC-301", purpose: "primary_research", datasets: ["onc-de"],
                                     gxp: true, images: images))
        #expect(bad.allowed.isEmpty, "\(images)")
        #expect(codes(bad, "fra-1") == [.computeUnqualifiedImage])
    }
    let twoQualified = place(PlacementJob(id: "g", principal: "p", study: "ONC-301", purpose: "primary_research", datasets: ["onc-de"],
                                          gxp: true, images: [pinned, "registry.helix.example/onc/other-name@" + digest]))
    #expect(twoQualified.allowed == ["fra-1", "par-1", "zrh-1", "sin-1"])
}

@Test func jobLevelDenialsRejectEveryNode() {
    let unauthorised = place(PlacementJob(id: "j", principal: "p", study: "ONC-301", purpose: "primary_research", datasets: ["onc-de"]),
                             mayPlace: false)
    #expect(unauthorised.allowed.isEmpty)
    #expect(codes(unauthorised, "fra-1") == [.placementNotAuthorized])
    let noConsent = place(PlacementJob(id: "j", principal: "p", study: "ONC-301", purpose: "ml_model_training", datasets: ["onc-de"]))
    #expect(codes(noConsent, "par-1") == [.consentMissing])
    let otherStudy = place(PlacementJob(id: "j", principal: "p", study: "CARD-201", purpose: "primary_research", datasets: ["onc-de", "card-us"]))
    // The job's principal is in CARD-201 only: the ONC-301 data is of another study, and the
    // principal is not a member of it.
    #expect(codes(otherStudy, "par-1") == [.isolationStudyMismatch, .isolationNotMember])
    let unknown = place(PlacementJob(id: "j", principal: "p", study: "ONC-301", purpose: "primary_research", datasets: ["nope"]))
    #expect(codes(unknown, "par-1") == [.dataUnknownDataset])
    let noPurpose = place(PlacementJob(id: "j", principal: "p", study: "ONC-301", datasets: ["onc-de"]))
    #expect(codes(noPurpose, "par-1") == [.purposeMissing])
}

@Test func placeParamsAndResultRoundTripThroughJSON() throws {
    let params = try JSON.parse("""
    {"job":{"id":"j1","principal":"User::\\"alice\\"","study":"ONC-301","purpose":"primary_research","datasets":["onc-de"],"gxp":false},
     "nodes":[{"name":"fra-1","region":"eu-central-1","labels":{"custos.io/study":"ONC-301"}},{"name":"hyd-1","region":"in-hyderabad"}]}
    """)
    let job = try PlacementJob(json: params["job"]!)
    let ns = try PlacementNode.list(json: params["nodes"]!)
    #expect(job.datasets == ["onc-de"])
    #expect(ns[0].labels["custos.io/study"] == "ONC-301")
    let r = Placement.place(job: job, nodes: ns, config: Fixtures.config, consent: .empty, now: Fixtures.now,
                            principalStudies: ["ONC-301"], resolve: { id throws(Denial) in datasets[id] }, mayPlace: { _ in true })
    var w = JSONWriter()
    w.raw("{"); w.placementMembers(r); w.raw("}")
    let out = try JSON.parse(w.text)
    #expect(out["allowed"] == .array([.string("fra-1")]))
    #expect(out["rejected"]?["hyd-1"]?.arrayValue?.first?["code"] == .string("residency.cross_border"))
    #expect(out["rejected"]?["hyd-1"]?.arrayValue?.first?["guardrail"] == .string("residency"))
    #expect(throws: GuardrailParamError(path: "job.datasets", message: "expected an array of dataset ids")) {
        try PlacementJob(json: try JSON.parse("{\"id\":\"j\",\"principal\":\"p\"}"))
    }
}


/// Naming the data's study in the job is not membership of it: the principal's studies come
/// from the folder, and a job run by a non-member is rejected on every node.
@Test(arguments: [
    (Set(["ONC-301"]), [] as [DenialCode]),
    (Set(["CARD-201"]), [.isolationNotMember]),
    (nil, [.isolationNotMember]),
] as [(Set<String>?, [DenialCode])])
func aJobNamingTheDatasStudyStillNeedsAPrincipalWhoIsAMember(_ members: Set<String>?, _ expected: [DenialCode]) {
    let job = PlacementJob(id: "j", principal: "User::\"bob\"", study: "ONC-301", purpose: "primary_research", datasets: ["onc-de"])
    let r = place(job, members: .some(members))
    if expected.isEmpty {
        #expect(r.allowed.contains("fra-1"))
    } else {
        #expect(r.allowed.isEmpty)
        #expect(codes(r, "fra-1") == expected)
        #expect(codes(r, "par-1") == expected)
    }
}

@Test func aJobWithoutAStudyIsStillStudyMissingWhateverThePrincipalsStudies() {
    let job = PlacementJob(id: "j", principal: "User::\"alice\"", purpose: "primary_research", datasets: ["onc-de"])
    #expect(codes(place(job, members: .some(["ONC-301"])), "par-1") == [.isolationStudyMissing])
}

/// (params of `place`, the path of the member that must be refused): a typo never falls back
/// to a default (`"gpx": true` must not place a GxP job as a normal one).
@Test(arguments: [
    (#"{"id":"j","principal":"User::\"a\"","datasets":["onc-de"],"gpx":true}"#, "job", "job.gpx"),
    (#"{"id":"j","principal":"User::\"a\"","datasets":["onc-de"],"Study":"ONC-301"}"#, "job", "job.Study"),
    (#"{"name":"n","regoin":"eu-west-1"}"#, "node", "nodes[0].regoin"),
    (#"{"principal":"p","dataset":"d","from":"a","to":"b","kind":"copy","bases":"scc-1"}"#, "transfer", "params.bases"),
])
func unknownMembersOfJobsNodesAndTransfersAreErrorsNamingThePath(_ text: String, _ kind: String, _ path: String) throws {
    let json = try JSON.parse(text)
    do throws(GuardrailParamError) {
        switch kind {
        case "job": _ = try PlacementJob(json: json)
        case "node": _ = try PlacementNode.list(json: .array([json]))
        default: _ = try TransferRequest(json: json)
        }
        Issue.record("accepted \(text)")
    } catch {
        #expect(error.path == path)
        #expect(error.message.hasPrefix("unknown member"))
    }
}

/// A node's list of reasons is cut at `Placement.maxReasonsPerNode`, the last place saying how
/// many more there were: the job's own reasons repeat on every node, so an answer listing them
/// all would grow as nodes x datasets.
@Test func aNodesReasonsAreCutAtTheBoundAndTheLastSaysHowManyMore() {
    let unknown = (0..<20).map { "missing-\($0)" }
    let r = place(PlacementJob(id: "j", principal: "p", study: "ONC-301", purpose: "primary_research", datasets: unknown))
    #expect(r.allowed.isEmpty)
    for (node, reasons) in r.rejected {
        #expect(reasons.count == Placement.maxReasonsPerNode, "\(node)")
        #expect(reasons.dropLast().allSatisfy { $0.code == .dataUnknownDataset })
        #expect(reasons.last?.code == .placementMoreReasons)
        #expect(reasons.last?.message == "and 13 more reasons (data.unknown_dataset) not listed")
    }
    // Within the bound nothing changes: two unknown datasets are two reasons.
    let two = place(PlacementJob(id: "j", principal: "p", study: "ONC-301", purpose: "primary_research", datasets: ["missing-a", "missing-b"]))
    #expect(codes(two, "fra-1") == [.dataUnknownDataset, .dataUnknownDataset])
}

@Test(arguments: [(["a", "b", "a"], 2, "dataset a is named twice"),
                  (["a", "b", "c\u{301}", "\u{E7}"], nil, ""),
                  ((0...PlacementJob.maxDatasets).map { "d\($0)" }, PlacementJob.maxDatasets, "over the limit")] as [([String], Int?, String)])
func aJobsDatasetsAreDistinctAndBounded(ids: [String], index: Int?, message: String) {
    let problem = PlacementJob.datasetsProblem(ids)
    #expect(problem?.index == index)
    #expect(problem?.message.contains(message) ?? message.isEmpty)
}
