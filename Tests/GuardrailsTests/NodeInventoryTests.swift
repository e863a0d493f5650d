import Cedar
import CustosJSON
import Guardrails
import Testing

/// The node inventory in-process. The digest is the canonical text itself, so the tests read
/// exactly what the daemon hashes into `revision`.
@Suite struct NodeInventoryTests {
    struct Refused: Error, Equatable { var why: String }

    static func inventory(limit: Int = NodeInventory.defaultLimit) -> NodeInventory {
        NodeInventory(limit: limit) { String(decoding: $0, as: UTF8.self) }
    }

    static let gpu = ["custos.io/gpu-model": "NVIDIA-H100-80GB-HBM3", "custos.io/gpu-driver": "550.90.07"]
    static let fra = PlacementNode(name: "fra-1", region: "eu-central-1", labels: gpu)
    static let ore = PlacementNode(name: "ore-1", region: "us-west-2")
    static let zrh = PlacementNode(name: "zrh-1", region: "ch-zurich", labels: ["custos.io/study": "GEN-CH"])

    @discardableResult
    static func apply(_ inv: NodeInventory, _ change: NodeInventoryChange) throws -> NodeInventoryUpdate {
        try inv.apply(change, overLimit: { n, l in Refused(why: "\(n) > \(l)") }, confirm: { _ throws(Refused) in })
    }

    @Test func anEmptyInventoryHasTheRevisionOfAnEmptyList() {
        let inv = Self.inventory()
        #expect(inv.snapshot.count == 0)
        #expect(inv.snapshot.revision == "[]")
    }

    @Test func upsertAddsNewNodesAndReplacesNodesOfTheSameName() throws {
        let inv = Self.inventory()
        let first = try Self.apply(inv, .upsert([Self.fra, Self.ore]))
        #expect(first == NodeInventoryUpdate(count: 2, revision: inv.snapshot.revision, changed: 2, removed: 0))
        let moved = PlacementNode(name: "ore-1", region: "eu-west-1")
        let second = try Self.apply(inv, .upsert([moved, Self.zrh]))
        #expect(second.count == 3)
        #expect(second.changed == 2)
        #expect(inv.snapshot.node(named: "ore-1")?.region == "eu-west-1")
        #expect(inv.snapshot.node(named: "fra-1") == Self.fra, "a node the change does not name stays")
    }

    @Test func restatingTheHeldNodesChangesNothingAndKeepsTheRevision() throws {
        let inv = Self.inventory()
        try Self.apply(inv, .upsert([Self.fra, Self.ore]))
        let before = inv.snapshot
        let again = try Self.apply(inv, .upsert([Self.ore, Self.fra]))
        #expect(again.changed == 0)
        #expect(again.revision == before.revision)
        #expect(inv.snapshot === before, "no new snapshot for a change that changed nothing")
    }

    @Test func replaceMakesTheInventoryExactlyTheGivenList() throws {
        let inv = Self.inventory()
        try Self.apply(inv, .upsert([Self.fra, Self.ore]))
        let u = try Self.apply(inv, .replace([Self.ore, Self.zrh]))
        #expect(u.count == 2)
        #expect(u.removed == 1, "fra-1 is not in the new list")
        #expect(u.changed == 2, "zrh-1 added, fra-1 removed; ore-1 restated")
        #expect(inv.snapshot.sortedNodes == [Self.ore, Self.zrh])
        #expect(inv.snapshot.node(named: "fra-1") == nil)
    }

    @Test func removeDropsHeldNamesAndIgnoresUnknownOnes() throws {
        let inv = Self.inventory()
        try Self.apply(inv, .upsert([Self.fra, Self.ore, Self.zrh]))
        let u = try Self.apply(inv, .remove(["ore-1", "never-synced", "ore-1"]))
        #expect(u.removed == 1)
        #expect(u.changed == 1)
        #expect(u.count == 2)
        #expect(inv.snapshot.sortedNodes.map(\.name) == ["fra-1", "zrh-1"])
        let none = try Self.apply(inv, .remove(["never-synced"]))
        #expect(none.removed == 0)
        #expect(none.revision == u.revision)
    }

    @Test func theRevisionIsTheCanonicalListSortedByNameWithSortedLabels() throws {
        let inv = Self.inventory()
        try Self.apply(inv, .upsert([Self.zrh, PlacementNode(name: "b", region: nil), Self.fra]))
        #expect(inv.snapshot.revision == #"[{"name":"b","region":null,"labels":{}},{"name":"fra-1","region":"eu-central-1","labels":{"custos.io/gpu-driver":"550.90.07","custos.io/gpu-model":"NVIDIA-H100-80GB-HBM3"}},{"name":"zrh-1","region":"ch-zurich","labels":{"custos.io/study":"GEN-CH"}}]"#)
    }

    @Test func theRevisionDoesNotDependOnTheOrderNodesWereSentIn() throws {
        let orders: [[PlacementNode]] = [[Self.fra, Self.ore, Self.zrh], [Self.zrh, Self.fra, Self.ore], [Self.ore, Self.zrh, Self.fra]]
        var revisions: Set<String> = []
        for order in orders {
            let inv = Self.inventory()
            try Self.apply(inv, .upsert(order))
            revisions.insert(inv.snapshot.revision)
            // The same set reached one node at a time, and through a replace.
            let stepwise = Self.inventory()
            for n in order.reversed() { try Self.apply(stepwise, .upsert([n])) }
            revisions.insert(stepwise.snapshot.revision)
            let replaced = Self.inventory()
            try Self.apply(replaced, .upsert([PlacementNode(name: "gone", region: nil)]))
            try Self.apply(replaced, .replace(order))
            revisions.insert(replaced.snapshot.revision)
        }
        #expect(revisions.count == 1)
    }

    @Test func namesAndValuesCompareByUnicodeScalars() throws {
        let inv = Self.inventory()
        let composed = PlacementNode(name: "n\u{E9}", region: "eu-west-3")
        let decomposed = PlacementNode(name: "ne\u{301}", region: "eu-central-1")
        try Self.apply(inv, .upsert([composed, decomposed]))
        #expect(inv.snapshot.count == 2, "canonically equivalent names are different nodes")
        #expect(inv.snapshot.node(named: "ne\u{301}")?.region == "eu-central-1")
        let respelt = PlacementNode(name: "n\u{E9}", region: "eu-west-3", labels: ["k": "e\u{301}"])
        try Self.apply(inv, .upsert([PlacementNode(name: "n\u{E9}", region: "eu-west-3", labels: ["k": "\u{E9}"])]))
        let u = try Self.apply(inv, .upsert([respelt]))
        #expect(u.changed == 1, "a label value spelt with other scalars is a change")
        #expect(inv.snapshot.node(named: "n\u{E9}")?.labels["k"]?.unicodeScalars.count == 2)
    }

    @Test func aChangeTheConfirmationRefusesIsNotApplied() throws {
        let inv = Self.inventory()
        try Self.apply(inv, .upsert([Self.fra]))
        let before = inv.snapshot
        var seen: NodeInventoryUpdate?
        #expect(throws: Refused(why: "audit log down")) {
            try inv.apply(.replace([Self.ore, Self.zrh]), overLimit: { _, _ in Refused(why: "limit") },
                          confirm: { u throws(Refused) in seen = u; throw Refused(why: "audit log down") })
        }
        #expect(seen == NodeInventoryUpdate(count: 2, revision: #"[{"name":"ore-1","region":"us-west-2","labels":{}},{"name":"zrh-1","region":"ch-zurich","labels":{"custos.io/study":"GEN-CH"}}]"#,
                                            changed: 3, removed: 1), "the confirmation sees the outcome it vouches for")
        #expect(inv.snapshot === before)
    }

    @Test func aChangeBeyondTheLimitIsRefusedWhole() throws {
        let inv = Self.inventory(limit: 2)
        try Self.apply(inv, .upsert([Self.fra]))
        var confirmed = false
        #expect(throws: Refused(why: "3 > 2")) {
            try inv.apply(.upsert([Self.ore, Self.zrh]), overLimit: { n, l in Refused(why: "\(n) > \(l)") },
                          confirm: { _ throws(Refused) in confirmed = true })
        }
        #expect(!confirmed)
        #expect(inv.snapshot.sortedNodes == [Self.fra])
        // A replace to the same size is within the limit.
        #expect(try Self.apply(inv, .replace([Self.ore, Self.zrh])).count == 2)
    }

    // MARK: placement over inventory nodes

    static let datasets: [String: DatasetAttributes] = [
        "onc-de": DatasetAttributes(id: "onc-de", residency: "DE", state: .pseudonymised, dataClass: "clinical", study: "ONC-301"),
        "onc-genomic": DatasetAttributes(id: "onc-genomic", residency: "DE", state: .pseudonymised, dataClass: "genomic", study: "ONC-301"),
    ]
    static let cluster: [PlacementNode] = [
        PlacementNode(name: "fra-1", region: "eu-central-1", labels: gpu.merging(["custos.io/study": "ONC-301"]) { a, _ in a }),
        PlacementNode(name: "zrh-1", region: "ch-zurich", labels: gpu),
        PlacementNode(name: "iad-1", region: "us-east-1", labels: gpu.merging(["custos.io/study": "CARD-201"]) { a, _ in a }),
        PlacementNode(name: "sin-1", region: "sg-cro", labels: gpu),
        PlacementNode(name: "old-1", region: "eu-west-1", labels: ["custos.io/gpu-model": "NVIDIA-H100-80GB-HBM3", "custos.io/gpu-driver": "535.0"]),
        PlacementNode(name: "nowhere", region: nil, labels: gpu),
        PlacementNode(name: "moon-1", region: "moon-base"),
    ]

    static func place(_ job: PlacementJob, _ candidates: [PlacementCandidate], mayPlace: Bool = true) -> PlacementResult {
        Placement.place(job: job, candidates: candidates, config: Fixtures.config, consent: .empty, now: Fixtures.now,
                        principalStudies: job.study.map { [$0] }, resolve: { id throws(Denial) in datasets[id] }, mayPlace: { _ in mayPlace })
    }

    static func summary(_ r: PlacementResult) -> [String] {
        r.allowed.map { "+\($0)" + r.obligations(forNode: $0).map { " \($0)" }.joined() }
            + r.rejected.map { "-\($0.node) " + $0.reasons.map(\.description).joined(separator: " | ") }
    }

    @Test(arguments: [false, true])
    func placingInventoryNodesByNameDecidesExactlyAsPlacingTheNodeObjects(gxp: Bool) throws {
        let inv = Self.inventory()
        try Self.apply(inv, .upsert(Self.cluster))
        let job = PlacementJob(id: "j", principal: "User::\"alice\"", study: "ONC-301", purpose: "primary_research",
                               datasets: ["onc-de", "onc-genomic"], gxp: gxp,
                               image: "registry.example/x@" + (Fixtures.config.compute?.imageDigests.sorted().first ?? ""))
        let prepared = inv.snapshot.prepared(for: Fixtures.config, key: "example")
        let byName = Self.place(job, Self.cluster.map { .node(prepared[$0.name]!) })
        let byObject = Placement.place(job: job, nodes: Self.cluster, config: Fixtures.config, consent: .empty, now: Fixtures.now,
                                       principalStudies: job.study.map { [$0] }, resolve: { id throws(Denial) in Self.datasets[id] }, mayPlace: { _ in true })
        #expect(Self.summary(byName) == Self.summary(byObject))
        #expect(byName.allowed.count > 0 && byName.rejected.count > 0, "the cluster exercises both outcomes")
    }

    @Test func preparedNodesAreReusedUnderTheSameKeyAndRebuiltUnderAnother() throws {
        let inv = Self.inventory()
        try Self.apply(inv, .upsert(Self.cluster))
        let snap = inv.snapshot
        let job = PlacementJob(id: "j", principal: "User::\"alice\"", study: "ONC-301", purpose: "primary_research", datasets: ["onc-de"])
        func codes(_ p: PreparedInventory) -> [DenialCode] {
            Self.place(job, [.node(p["fra-1"]!)]).rejected.first?.reasons.map(\.code) ?? []
        }
        // Prepared without regions.json, eu-central-1 is a region nobody configured.
        #expect(codes(snap.prepared(for: Fixtures.config, key: "rev-1")) == [])
        #expect(codes(snap.prepared(for: .inactive, key: "rev-1")) == [], "the same key reuses what was prepared")
        #expect(codes(snap.prepared(for: .inactive, key: "rev-2")) == [.residencyUnknownLocation], "a new key prepares again")
    }

    @Test func anUnknownNameIsRejectedAloneWithUnknownNode() {
        let job = PlacementJob(id: "j", principal: "User::\"alice\"", study: "ONC-301", purpose: "primary_research", datasets: ["onc-de"])
        let view = PreparedNode.View(Fixtures.config)
        let r = Self.place(job, [.node(PreparedNode(Self.cluster[0], view)), .unknown("ghost-1")])
        #expect(r.allowed == ["fra-1"])
        #expect(r.rejected.map(\.node) == ["ghost-1"])
        #expect(r.rejected.first?.reasons.map(\.code) == [.placementUnknownNode])
        #expect(r.rejected.first?.reasons.first?.guardrail == .placement)
    }

    @Test func anUnknownNameAlsoCarriesTheJobLevelReasons() {
        let job = PlacementJob(id: "j", principal: "User::\"bob\"", study: "ONC-301", purpose: "primary_research", datasets: ["onc-de"])
        let view = PreparedNode.View(Fixtures.config)
        let r = Self.place(job, [.unknown("ghost-1"), .node(PreparedNode(Self.cluster[0], view))], mayPlace: false)
        #expect(r.allowed.isEmpty)
        #expect(r.rejected.map(\.node) == ["ghost-1", "fra-1"], "input order")
        #expect(r.rejected[0].reasons.map(\.code) == [.placementUnknownNode, .placementNotAuthorized])
        #expect(r.rejected[1].reasons.map(\.code) == [.placementNotAuthorized])
    }

    @Test func withGuardrailsInactiveAnUnknownNameIsStillRejected() {
        let job = PlacementJob(id: "j", principal: "User::\"alice\"", datasets: [])
        let r = Placement.place(job: job, candidates: [.unknown("ghost-1")], config: .inactive, consent: .empty, now: Fixtures.now,
                                principalStudies: nil, resolve: { _ throws(Denial) in nil }, mayPlace: { _ in true })
        #expect(r.allowed.isEmpty)
        #expect(r.rejected.first?.reasons.map(\.code) == [.placementUnknownNode])
    }
}
