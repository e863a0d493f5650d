import Cedar
import CustosJSON
import Guardrails
import Testing

/// compute.json `dedicated`: a study confined to its own nodes, and those nodes kept for it.
@Suite struct StudyConfinementTests {
    static let restricted = "node-restriction.kubernetes.io/study"

    /// The example configuration with compute.json's `dedicated` replaced by `dedicated`.
    static func config(dedicated: String) throws -> GuardrailConfig {
        var files = Fixtures.exampleFiles()
        var compute = String(decoding: files["compute.json"]!, as: UTF8.self)
        let start = try #require(compute.range(of: "\"dedicated\": ["))
        let end = try #require(compute.range(of: "],\n  \"images\"", range: start.upperBound..<compute.endIndex))
        compute.replaceSubrange(start.lowerBound..<end.upperBound, with: "\"dedicated\": \(dedicated),\n  \"images\"")
        files["compute.json"] = Array(compute.utf8)
        return try GuardrailConfig.parse(files: files)
    }

    static let twoStudies = """
    [{"study": "CARD-201", "labels": {"\(restricted)": "CARD-201"}},
     {"study": "GEN-CH", "nodes": ["zrh-g1", "zrh-g2"]}]
    """

    static let datasets: [String: DatasetAttributes] = [
        "card-us": DatasetAttributes(id: "card-us", residency: "US", state: .identified, dataClass: "clinical", study: "CARD-201"),
        "gen-ch": DatasetAttributes(id: "gen-ch", residency: "CH", state: .pseudonymised, dataClass: "genomic", study: "GEN-CH"),
        "onc-de": DatasetAttributes(id: "onc-de", residency: "DE", state: .pseudonymised, dataClass: "clinical", study: "ONC-301"),
    ]

    static let nodes: [PlacementNode] = [
        PlacementNode(name: "iad-card", region: "us-east-1", labels: [restricted: "CARD-201"]),
        // A label the node may have set on itself does not put it in CARD-201's set.
        PlacementNode(name: "iad-self", region: "us-east-1", labels: ["custos.io/study": "CARD-201"]),
        PlacementNode(name: "iad-shared", region: "us-east-1"),
        PlacementNode(name: "zrh-g1", region: "ch-zurich"),
        PlacementNode(name: "zrh-shared", region: "ch-zurich"),
        PlacementNode(name: "fra-shared", region: "eu-central-1"),
        // In GEN-CH's group by name and in CARD-201's set by label: dedicated to two studies.
        PlacementNode(name: "zrh-g2", region: "ch-zurich", labels: [restricted: "CARD-201"]),
    ]

    struct Case: Sendable, CustomStringConvertible {
        var study: String?
        var datasets: [String]
        var purpose = "primary_research"
        var allowed: [String]
        var rejected: [String: [DenialCode]]
        var description: String { "\(study ?? "no study") job" }
    }

    static let cases: [Case] = [
        Case(study: "CARD-201", datasets: ["card-us"], allowed: ["iad-card"], rejected: [
            "iad-self": [.isolationNotDedicated],
            "iad-shared": [.isolationNotDedicated],
            "zrh-g1": [.isolationNotDedicated, .isolationStudyMismatch],
            "zrh-shared": [.isolationNotDedicated],
            "fra-shared": [.isolationNotDedicated],
            "zrh-g2": [.isolationNotDedicated, .isolationStudyMismatch],
        ]),
        Case(study: "GEN-CH", datasets: ["gen-ch"], allowed: ["zrh-g1"], rejected: [
            "iad-card": [.isolationNotDedicated, .isolationStudyMismatch],
            // The study label's mismatch is found first, then the confinement.
            "iad-self": [.isolationStudyMismatch, .isolationNotDedicated],
            "iad-shared": [.isolationNotDedicated],
            "zrh-shared": [.isolationNotDedicated],
            "fra-shared": [.isolationNotDedicated],
            "zrh-g2": [.isolationNotDedicated, .isolationStudyMismatch],
        ]),
        // A study with no dedicated entry runs on shared nodes and on no study's dedicated ones.
        Case(study: "ONC-301", datasets: ["onc-de"], allowed: ["iad-shared", "zrh-shared", "fra-shared"], rejected: [
            "iad-card": [.isolationStudyMismatch],
            "iad-self": [.isolationStudyMismatch],
            "zrh-g1": [.isolationStudyMismatch],
            "zrh-g2": [.isolationStudyMismatch],
        ]),
        Case(study: nil, datasets: [], purpose: "platform_operations", allowed: ["iad-shared", "zrh-shared", "fra-shared"], rejected: [
            "iad-card": [.isolationStudyMismatch],
            "iad-self": [.isolationStudyMismatch],
            "zrh-g1": [.isolationStudyMismatch],
            "zrh-g2": [.isolationStudyMismatch],
        ]),
    ]

    @Test(arguments: cases)
    func aConfinedStudyRunsOnlyOnItsNodesAndTheyRunNoOtherStudy(_ c: Case) throws {
        let config = try Self.config(dedicated: Self.twoStudies)
        let job = PlacementJob(id: "j", principal: "User::\"x\"", study: c.study, purpose: c.purpose, datasets: c.datasets)
        let r = Placement.place(job: job, nodes: Self.nodes, config: config, consent: .empty, now: Fixtures.now,
                                principalStudies: c.study.map { [$0] }, resolve: { id throws(Denial) in Self.datasets[id] },
                                mayPlace: { _ in true })
        #expect(r.allowed == c.allowed)
        var got: [String: [DenialCode]] = [:]
        for x in r.rejected { got[x.node] = x.reasons.map(\.code) }
        #expect(got == c.rejected)
    }

    @Test func theMessagesSayWhichSetAndWhichStudies() throws {
        let config = try Self.config(dedicated: Self.twoStudies)
        let job = PlacementJob(id: "j", principal: "User::\"x\"", study: "CARD-201", purpose: "primary_research", datasets: ["card-us"])
        let r = Placement.place(job: job, nodes: Self.nodes, config: config, consent: .empty, now: Fixtures.now,
                                principalStudies: ["CARD-201"], resolve: { id throws(Denial) in Self.datasets[id] }, mayPlace: { _ in true })
        let shared = try #require(r.rejected.first { $0.node == "iad-shared" }?.reasons.first)
        #expect(shared.message == "study CARD-201 runs only on its dedicated nodes (guardrails/compute.json dedicated: labels \(Self.restricted)=CARD-201); node iad-shared is not one of them")
        #expect(shared.guardrail == .isolation)
        let both = try #require(r.rejected.first { $0.node == "zrh-g2" }?.reasons.last)
        #expect(both.message.contains("dedicated nodes of several studies (CARD-201, GEN-CH)"), "\(both.message)")
        let group = try #require(r.rejected.first { $0.node == "zrh-g1" }?.reasons.last)
        #expect(group.message == "node zrh-g1 is dedicated to study GEN-CH (guardrails/compute.json dedicated), the job runs in study CARD-201")
    }

    @Test func inventoryNodesPreparedOnceAreConfinedAsNodeObjectsAre() throws {
        let config = try Self.config(dedicated: Self.twoStudies)
        let view = PreparedNode.View(config)
        let job = PlacementJob(id: "j", principal: "User::\"x\"", study: "GEN-CH", purpose: "primary_research", datasets: ["gen-ch"])
        let r = Placement.place(job: job, candidates: view.prepare(Self.nodes).map { .node($0) }, config: config, consent: .empty,
                                now: Fixtures.now, principalStudies: ["GEN-CH"], resolve: { id throws(Denial) in Self.datasets[id] },
                                mayPlace: { _ in true })
        #expect(r.allowed == ["zrh-g1"])
    }

    /// (the `dedicated` member, the JSON path of the error, a fragment of the message)
    @Test(arguments: [
        (#"[{"study": "A", "nodes": ["n1"]}, {"study": "A", "nodes": ["n2"]}]"#, "$.dedicated[1].study", "one entry per study"),
        (#"[{"study": "A"}]"#, "$.dedicated[0]", "say which nodes study A is dedicated to"),
        (#"[{"study": "A", "nodes": []}]"#, "$.dedicated[0].nodes", "at least one node"),
        (#"[{"study": "A", "labels": {}}]"#, "$.dedicated[0].labels", "at least one label"),
        (#"[{"study": "A", "labels": {"k": 1}}]"#, "$.dedicated[0].labels.k", "non-empty string value"),
        (#"[{"study": "A", "labels": ["k"]}]"#, "$.dedicated[0].labels", "expected an object"),
        (#"[{"study": "A", "nodes": ["n1"]}, {"study": "B", "nodes": ["n1"]}]"#, "$.dedicated[1].nodes", "node n1 is dedicated to study A already"),
        (#"[{"study": "A", "labels": {"k": "v"}}, {"study": "B", "labels": {"k": "v"}}]"#, "$.dedicated[1].labels", "the same labels select the nodes of study A"),
        (#"[{"study": "A", "nodes": ["n1"], "node": "n2"}]"#, "$.dedicated[0].node", "unknown key"),
        (#"{"A": ["n1"]}"#, "$.dedicated", "expected an array"),
    ])
    func aMalformedDedicatedEntryNamesItsPath(_ dedicated: String, _ path: String, _ message: String) throws {
        do throws(GuardrailConfigError) {
            _ = try GuardrailConfig.parse(files: {
                var files = Fixtures.exampleFiles()
                var compute = String(decoding: files["compute.json"]!, as: UTF8.self)
                let start = compute.range(of: "\"dedicated\": [")!
                let end = compute.range(of: "],\n  \"images\"", range: start.upperBound..<compute.endIndex)!
                compute.replaceSubrange(start.lowerBound..<end.upperBound, with: "\"dedicated\": \(dedicated),\n  \"images\"")
                files["compute.json"] = Array(compute.utf8)
                return files
            }())
            Issue.record("accepted \(dedicated)")
        } catch {
            #expect(error.file == "guardrails/compute.json")
            #expect(error.path == path)
            #expect(error.message.contains(message), "\(error.message)")
        }
    }
}
