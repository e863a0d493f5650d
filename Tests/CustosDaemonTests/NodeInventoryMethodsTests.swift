import CustosDaemon
import CustosJSON
import CustosServer
import Synchronization
import Testing

/// `nodes.sync`, `nodes.remove`, `nodes.list`, and `place` naming nodes of the inventory.
@Suite struct NodeInventoryMethodsTests {
    static let h100 = #""custos.io/gpu-model":"NVIDIA-H100-80GB-HBM3","custos.io/gpu-driver":"550.90.07""#
    static let qualifiedImage = GuardrailPlaceTransferTests.qualifiedImage

    /// The example cluster: every kind of outcome for an ONC-301 job over DE clinical and FR
    /// genomic data.
    static let cluster: [(String, String, String)] = [
        ("fra-h100", "eu-central-1", h100 + #","custos.io/study":"ONC-301""#),
        ("par-cpu", "eu-west-3", ""),
        ("zrh-1", "ch-zurich", h100),
        ("fra-card", "eu-central-1", #""custos.io/study":"CARD-201""#),
        ("ore-1", "us-west-2", h100),
        ("sg-1", "sg-cro", h100),
        ("nowhere", "mars-1", ""),
    ]
    static let objects = GuardrailPlaceTransferTests.nodes(cluster)
    static let syncAll = #"{"nodes":\#(objects)}"#

    static func job(gxp: Bool) -> String {
        #"{"id":"seg-1","principal":"User::\"carol\"","study":"ONC-301","purpose":"primary_research","datasets":["onc301-de-clinical","onc301-fr-genomic"]\#(gxp ? #","gxp":true,"image":"\#(qualifiedImage)""# : "")}"#
    }

    static func names(_ ns: [String]) -> String { "[" + ns.map { "\"\($0)\"" }.joined(separator: ",") + "]" }

    static func error(_ body: () throws(RPCError) -> Void) -> RPCError? { rpcError(body) }

    @Test func syncAnswersTheCountAndASHA256RevisionThatListRepeats() throws {
        let f = try GuardrailFixture(stateful: false)
        let r = try f.object("nodes.sync", Self.syncAll)
        #expect(r["nodes"] == .int(7))
        #expect(r["changed"] == .int(7))
        let revision = try #require(r["revision"]?.stringValue)
        #expect(revision.hasPrefix("sha256:") && revision.utf8.count == 7 + 64)
        let list = try f.object("nodes.list", "{}")
        #expect(list["revision"] == .string(revision))
        let listed = try #require(list["nodes"]?.arrayValue)
        #expect(listed.compactMap { $0.objectValue?["name"]?.stringValue } == Self.cluster.map(\.0).sorted())
        let zrh = try #require(listed.first { $0.objectValue?["name"] == .string("zrh-1") }?.objectValue)
        #expect(zrh["region"] == .string("ch-zurich"))
        #expect(zrh["labels"]?.objectValue?["custos.io/gpu-driver"] == .string("550.90.07"))
    }

    @Test func anEmptyInventoryListsNoNodes() throws {
        let f = try GuardrailFixture(stateful: false)
        #expect(try f.object("nodes.list", "{}")["nodes"] == .array([]))
        #expect(try f.dispatcher.call("nodes.list", params: Params(nil), context: f.caller).objectValue?["nodes"] == .array([]))
    }

    @Test func theSameNodesInAnotherOrderGiveTheSameRevision() throws {
        let a = try GuardrailFixture(stateful: false), b = try GuardrailFixture(stateful: false)
        let ra = try a.object("nodes.sync", Self.syncAll)["revision"]
        let rb = try b.object("nodes.sync", #"{"nodes":\#(GuardrailPlaceTransferTests.nodes(Array(Self.cluster.reversed())))}"#)["revision"]
        #expect(ra == rb)
    }

    @Test func replaceMakesTheInventoryExactlyTheList() throws {
        let f = try GuardrailFixture(stateful: false)
        _ = try f.object("nodes.sync", Self.syncAll)
        let r = try f.object("nodes.sync", #"{"nodes":[{"name":"zrh-1","region":"ch-zurich","labels":{\#(Self.h100)}},{"name":"new-1","region":"eu-west-1"}],"replace":true}"#)
        #expect(r["nodes"] == .int(2))
        let listed = try f.object("nodes.list", "{}")["nodes"]?.arrayValue?.compactMap { $0.objectValue?["name"]?.stringValue }
        #expect(listed == ["new-1", "zrh-1"])
    }

    @Test func removeCountsOnlyNamesThatWereHeld() throws {
        let f = try GuardrailFixture(stateful: false)
        let before = try f.object("nodes.sync", Self.syncAll)["revision"]
        let r = try f.object("nodes.remove", #"{"names":["ore-1","sg-1","never-synced"]}"#)
        #expect(r["removed"] == .int(2))
        #expect(r["nodes"] == .int(5))
        #expect(r["revision"] != before)
        let again = try f.object("nodes.remove", #"{"names":["never-synced"]}"#)
        #expect(again["removed"] == .int(0))
        #expect(again["revision"] == r["revision"])
    }

    @Test(arguments: [false, true])
    func placeByNameAnswersExactlyAsPlaceWithTheNodeObjects(gxp: Bool) throws {
        let f = try GuardrailFixture(clock: WallTime(seconds: 1_780_000_000, nanoseconds: 0))
        _ = try f.object("nodes.sync", Self.syncAll)
        var byName = try f.object("place", #"{"job":\#(Self.job(gxp: gxp)),"nodes":\#(Self.names(Self.cluster.map(\.0)))}"#)
        var byObject = try f.object("place", #"{"job":\#(Self.job(gxp: gxp)),"nodes":\#(Self.objects)}"#)
        // Decision ids are unique per call; everything else must be the same.
        byName.members.removeAll { $0.key == "decision_id" }
        byObject.members.removeAll { $0.key == "decision_id" }
        #expect(byName == byObject)
        #expect(byName["allowed"]?.arrayValue?.isEmpty == false)
        #expect(byName["rejected"]?.objectValue?.isEmpty == false)
    }

    @Test func anUnknownNameIsRejectedWithUnknownNodeAndTheOthersAreDecided() throws {
        let f = try GuardrailFixture()
        _ = try f.object("nodes.sync", Self.syncAll)
        let r = try f.object("place", #"{"job":\#(Self.job(gxp: false)),"nodes":["par-cpu","ghost-7","ore-1"]}"#)
        #expect(r["allowed"] == .array([.string("par-cpu")]))
        let rejected = try #require(r["rejected"]?.objectValue)
        #expect(rejected.keys == ["ghost-7", "ore-1"])
        #expect(codes(rejected["ghost-7"]) == ["placement.unknown_node"])
        #expect(rejected["ghost-7"]?.arrayValue?.first?.objectValue?["guardrail"] == .string("placement"))
        #expect(codes(rejected["ore-1"]) == ["residency.cross_border", "residency.cross_border"], "one per dataset")
    }

    @Test func namesAndNodeObjectsMixInOneCallInInputOrder() throws {
        let f = try GuardrailFixture()
        _ = try f.object("nodes.sync", Self.syncAll)
        // The object for ore-1 is what the call says, whatever the inventory holds for ore-1.
        let r = try f.object("place", #"{"job":\#(Self.job(gxp: false)),"nodes":["zrh-1",{"name":"ath-1","region":"gr-athens"},"fra-card",{"name":"ore-1","region":"eu-west-1"},"ghost"]}"#)
        #expect(r["allowed"] == .array([.string("zrh-1"), .string("ath-1"), .string("ore-1")]))
        #expect(r["rejected"]?.objectValue?.keys == ["fra-card", "ghost"])
        #expect(codes(r["rejected"]?.objectValue?["fra-card"]) == ["isolation.study_mismatch"])
        #expect(r["node_obligations"]?.objectValue?.keys == ["zrh-1"])
    }

    @Test func placeByNameSeesTheInventoryAsChanged() throws {
        let f = try GuardrailFixture()
        _ = try f.object("nodes.sync", Self.syncAll)
        let call = #"{"job":\#(Self.job(gxp: false)),"nodes":["ore-1"]}"#
        #expect(try f.object("place", call)["allowed"] == .array([]))
        _ = try f.object("nodes.sync", #"{"nodes":[{"name":"ore-1","region":"eu-west-1"}]}"#)
        #expect(try f.object("place", call)["allowed"] == .array([.string("ore-1")]))
        _ = try f.object("nodes.remove", #"{"names":["ore-1"]}"#)
        #expect(codes(try f.object("place", call)["rejected"]?.objectValue?["ore-1"]) == ["placement.unknown_node"])
    }

    @Test(arguments: [
        (#"{"nodes":[{"name":"a"},{"name":"b","labels":{"x":1}}]}"#, "params.nodes[1].labels.x"),
        (#"{"nodes":[{"name":"a"},{"region":"eu-west-1"}]}"#, "params.nodes[1].name"),
        (#"{"nodes":[{"name":"a"},{"name":"a"}]}"#, "params.nodes[1].name"),
        (#"{"nodes":[{"name":"a"},"b"]}"#, "params.nodes[1]"),
        (#"{"nodes":{"name":"a"}}"#, "params.nodes"),
        (#"{"nodes":[],"replace":"yes"}"#, "params.replace"),
        (#"{"nodes":[],"merge":true}"#, "params.merge"),
        (#"{}"#, "params.nodes"),
    ])
    func aBadSyncIsRefusedNamingTheFieldAndChangesNothing(params: String, field: String) throws {
        let f = try GuardrailFixture(stateful: false)
        let before = try f.object("nodes.sync", Self.syncAll)["revision"]
        let e = try #require(Self.error { () throws(RPCError) in _ = try f.call("nodes.sync", params) })
        #expect(e.code == RPCError.invalidParamsCode)
        #expect(e.message.contains(field), "\(e.message)")
        #expect(try f.object("nodes.list", "{}")["revision"] == before)
    }

    @Test(arguments: [
        (#"{"names":"a"}"#, "params.names"),
        (#"{"names":["a",7]}"#, "params.names[1]"),
        (#"{"nodes":["a"]}"#, "params.nodes"),
    ])
    func aBadRemoveIsRefusedNamingTheField(params: String, field: String) throws {
        let f = try GuardrailFixture(stateful: false)
        let e = try #require(Self.error { () throws(RPCError) in _ = try f.call("nodes.remove", params) })
        #expect(e.code == RPCError.invalidParamsCode)
        #expect(e.message.contains(field), "\(e.message)")
    }

    @Test(arguments: [
        (#"["ok", 7]"#, "params.nodes[1]"),
        (#"[{"name":"x","region":5}]"#, "params.nodes[0].region"),
        (#""fra-h100""#, "params.nodes"),
        // The answer is keyed by node name, so each node once, however it is given.
        (#"["zrh-1","par-cpu","zrh-1"]"#, "params.nodes[2]"),
        (#"["ghost","ghost"]"#, "params.nodes[1]"),
        (#"[{"name":"a"},"a"]"#, "params.nodes[1]"),
        (#"["zrh-1",{"name":"zrh-1","region":"ch-zurich"}]"#, "params.nodes[1]"),
        (#"[{"name":"zrh-1","region":"ch-zurich"},"zrh-1"]"#, "params.nodes[1]"),
    ])
    func placeRefusesNodesThatAreNeitherNamesNorObjectsOrNamedTwice(nodes: String, field: String) throws {
        let f = try GuardrailFixture(stateful: false)
        _ = try f.object("nodes.sync", Self.syncAll)
        let e = try #require(Self.error { () throws(RPCError) in _ = try f.call("place", #"{"job":\#(Self.job(gxp: false)),"nodes":\#(nodes)}"#) })
        #expect(e.code == RPCError.invalidParamsCode)
        #expect(e.message.contains(field), "\(e.message)")
    }

    @Test func nodesListTakesNoParams() throws {
        let f = try GuardrailFixture(stateful: false)
        let e = try #require(Self.error { () throws(RPCError) in _ = try f.call("nodes.list", #"{"name":"a"}"#) })
        #expect(e.code == RPCError.invalidParamsCode)
        #expect(e.message.contains("params.name"))
    }

    @Test func anInventoryBeyondTheLimitIsRefusedAsOverloadedAndNothingChanges() throws {
        let f = try GuardrailFixture(stateful: false)
        _ = try f.object("nodes.sync", #"{"nodes":[{"name":"keep"}]}"#)
        // 100,000 new nodes plus the one held: one over the limit.
        var nodes: [JSON] = []
        nodes.reserveCapacity(100_000)
        for i in 0..<100_000 { nodes.append(.object(JSONObject([JSONObject.Member(key: "name", value: .string("n\(i)"))]))) }
        let params = JSON.object(JSONObject([JSONObject.Member(key: "nodes", value: .array(nodes))]))
        let e = try #require(Self.error { () throws(RPCError) in _ = try f.dispatcher.call("nodes.sync", params: Params(params), context: f.caller) })
        #expect(e.code == RPCError.overloadedCode)
        #expect(e.message.contains("100001") && e.message.contains("100000"), "\(e.message)")
        #expect(try f.object("nodes.list", "{}")["nodes"]?.arrayValue?.count == 1)
        // Replacing instead stays within the limit.
        let replace = JSON.object(JSONObject([JSONObject.Member(key: "nodes", value: .array(nodes)),
                                              JSONObject.Member(key: "replace", value: .bool(true))]))
        #expect(try f.dispatcher.call("nodes.sync", params: Params(replace), context: f.caller).objectValue?["nodes"] == .int(100_000))
    }

    // MARK: audit

    /// What the recorder saw, and a switch that makes it refuse.
    final class EventLog: Sendable {
        let events = Mutex<[DaemonEvent]>([])
        let failing = Atomic<Bool>(false)
    }

    /// A method table over the example policies whose recorder keeps events, or refuses them.
    final class Audited: Sendable {
        let log = EventLog()
        let dispatcher: Dispatcher
        let caller = CallContext(uid: 7, gid: 7, pid: 1, connectionID: 1)

        init() throws {
            let store = PolicyStore(directory: examplePolicies)
            if case .failure(let e) = store.reload() { throw e }
            let log = self.log
            let recorder = DecisionRecorder(record: { _ throws(RecorderError) in }, event: { e throws(RecorderError) in
                if log.failing.load(ordering: .relaxed) { throw RecorderError("disk full") }
                log.events.withLock { $0.append(e) }
            })
            var table = MethodTable()
            for r in Daemon.methodFamilies { r(&table, DaemonServices(store: store, recorder: recorder)) }
            dispatcher = try Dispatcher(methods: table)
        }

        func call(_ method: String, _ params: String) throws(RPCError) -> JSON {
            let json: JSON
            do { json = try JSON.parse(params) } catch { preconditionFailure("test params are not JSON: \(params)") }
            return try dispatcher.call(method, params: Params(json), context: caller)
        }

        var changes: [(method: String, subject: String, details: JSON)] {
            log.events.withLock { $0 }.compactMap {
                if case .change(let m, _, let s, let d) = $0 { return (m, s, d) }
                return nil
            }
        }
    }

    @Test func eachSyncAndRemoveIsNotedToTheAuditLogWithoutTheNodeList() throws {
        let a = try Audited()
        let synced = try #require(try a.call("nodes.sync", Self.syncAll).objectValue)
        let removed = try #require(try a.call("nodes.remove", #"{"names":["ore-1"]}"#).objectValue)
        let changes = a.changes
        #expect(changes.map(\.method) == ["nodes.sync", "nodes.remove"])
        #expect(changes.map(\.subject) == ["nodes", "nodes"])
        let first = try #require(changes.first?.details.objectValue)
        #expect(first["count"] == .int(7))
        #expect(first["changed"] == .int(7))
        #expect(first["revision"] == synced["revision"])
        #expect(first["replace"] == .bool(false))
        #expect(first["nodes"] == nil && !changes[0].details.serialized.contains("ch-zurich"), "no node list in the log")
        let second = try #require(changes.last?.details.objectValue)
        #expect(second["removed"] == .int(1))
        #expect(second["revision"] == removed["revision"])
    }

    @Test func aChangeTheAuditLogCannotTakeIsNotApplied() throws {
        let a = try Audited()
        let before = try #require(try a.call("nodes.sync", #"{"nodes":[{"name":"a","region":"eu-west-1"}]}"#).objectValue?["revision"])
        a.log.failing.store(true, ordering: .relaxed)
        for (method, params) in [("nodes.sync", Self.syncAll), ("nodes.sync", #"{"nodes":[],"replace":true}"#), ("nodes.remove", #"{"names":["a"]}"#)] {
            let e = try #require(Self.error { () throws(RPCError) in _ = try a.call(method, params) })
            #expect(e.code == RPCError.notReadyCode, "\(method): \(e.message)")
        }
        a.log.failing.store(false, ordering: .relaxed)
        let list = try #require(try a.call("nodes.list", "{}").objectValue)
        #expect(list["revision"] == before)
        #expect(list["nodes"]?.arrayValue?.count == 1)
    }
}
