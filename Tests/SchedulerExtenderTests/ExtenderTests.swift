import CustosDaemon
import CustosGateway
import CustosJSON
import CustosServer
import Foundation
import Guardrails
import SchedulerNodes
import Synchronization
import Testing

/// The repository root, from this file's path (Tests/SchedulerExtenderTests/ExtenderTests.swift).
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

func fixture(_ name: String) throws -> [UInt8] {
    let path = repoRoot + "/Tests/SchedulerExtenderTests/Fixtures/" + name
    return [UInt8](try #require(FileManager.default.contents(atPath: path), "\(path) is missing"))
}

func parse(_ bytes: [UInt8]) throws -> JSON {
    try bytes.withUnsafeBytes { try JSON.parse($0) }
}

/// The front door's extender routes over a daemon's real method table and the example
/// policies, in-process: what `custos serve` mounts at `/scheduler/<gateway>/...` (the HTTP hop
/// is the listener's; docs/gateways.md). The clock is the suites' (2026-06-01), so answers do
/// not change with the day.
final class ExtenderDaemon: @unchecked Sendable {
    let dispatcher: Dispatcher
    let gateway: Gateway
    let caller = CallContext(uid: getuid(), gid: getgid(), pid: getpid(), connectionID: 1)
    let records = Records()

    /// Every decision record the daemon handed to its recorder.
    final class Records: Sendable {
        let list = Mutex<[DecisionRecord]>([])
        func withLock<T>(_ body: (inout [DecisionRecord]) -> T) -> T { list.withLock { body(&$0) } }
    }

    static let config = #"{"listeners": [{"unix": "/tmp/unused.sock"}], "gateways": {"k8s": {"kind": "kubernetes", "region_label": "node-restriction.kubernetes.io/region"}}}"#

    init(loaded: Bool = true, inventory: String? = "nodes-kubectl.json") throws {
        let store = PolicyStore(directory: loaded ? repoRoot + "/policies" : "/nonexistent/custos-policies")
        _ = store.reload()
        let kept = records
        var services = DaemonServices(store: store, recorder: DecisionRecorder(record: { r throws(RecorderError) in kept.withLock { $0 += r } }))
        services.clock = { WallTime(seconds: 1_780_315_200, nanoseconds: 0) }  // 2026-06-01T12:00:00Z
        var table = MethodTable()
        for r in Daemon.methodFamilies { r(&table, services) }
        dispatcher = try Dispatcher(methods: table, access: DaemonConfig.defaultAccess())
        gateway = Gateway(config: try HTTPConfig.parse(try JSON.parse(Self.config)), dispatcher: dispatcher)
        if loaded, let inventory { try sync(inventory) }
    }

    /// Syncs a `kubectl get nodes -o json` document (`.json` with `items`) or `nodes.sync` params.
    func sync(_ name: String) throws {
        let doc = try parse(try fixture(name))
        var params = doc
        if let items = doc["items"]?.arrayValue {
            let mapping = KubernetesNodeMapping()
            params = .object(JSONObject([JSONObject.Member(key: "nodes", value: .array(try items.map { try mapping.node($0) })),
                                         JSONObject.Member(key: "replace", value: .bool(true))]))
        }
        _ = try dispatcher.call("nodes.sync", params: Params(params), context: caller)
    }

    /// `POST /scheduler/k8s/<verb>` with `body`; the answer's body without its final newline.
    func post(_ verb: String, _ body: [UInt8]) -> (status: UInt32, body: [UInt8]) {
        var c = HTTPCaller(context: caller)
        let r = gateway.handle(HTTPRequest(method: "POST", path: "/scheduler/k8s/" + verb, body: body), &c)
        var b = r.body
        if b.last == 0x0A { b.removeLast() }
        return (r.status, b)
    }

    func filter(_ body: [UInt8]) throws -> JSON { try parse(post("filter", body).body) }
    func prioritize(_ body: [UInt8]) -> String { String(decoding: post("prioritize", body).body, as: UTF8.self) }
}

@Suite struct ExtenderTests {
    static let goKeys = ["Nodes", "NodeNames", "FailedNodes", "FailedAndUnresolvableNodes", "Error"]

    /// `code` of each reason in a `FailedAndUnresolvableNodes` message (`code: message; code: ...`).
    static func codes(_ message: String?) -> [String] {
        (message ?? "").components(separatedBy: "; ").compactMap { part in
            part.firstIndex(of: ":").map { String(part[..<$0]) }
        }
    }

    @Test func filterWithNodeNamesAnswersWithGoCasedKeysThePassingNamesAndEveryRejectionAsUnresolvable() throws {
        let d = try ExtenderDaemon()
        let out = d.post("filter", try fixture("filter-names-args.json"))
        #expect(out.status == 200)
        let r = try parse(out.body)
        #expect(r.objectValue?.keys == Self.goKeys)
        #expect(r["Nodes"] == .null)
        #expect(r["NodeNames"] == .array(["fra-gpu-01", "fra-gpu-02", "par-gpu-01"].map { .string($0) }))
        #expect(r["FailedNodes"] == .object(JSONObject()))
        #expect(r["Error"] == .string(""))
        let failed = try #require(r["FailedAndUnresolvableNodes"]?.objectValue)
        var got: [String: [String]] = [:]
        for m in failed.members { got[m.key] = Self.codes(m.value.stringValue) }
        #expect(got == [
            "fra-gpu-03": ["placement.not_authorized"],      // custos.io/maintenance: policies/60-nodes.cedar
            "iad-gpu-01": ["isolation.study_mismatch"],      // CARD-201's dedicated node
            "pdx-gpu-01": ["residency.cross_border", "residency.cross_border"],
            "hyd-gpu-01": ["residency.cross_border", "residency.cross_border"],
            "rogue-gpu-01": ["residency.location_missing"],  // only the kubelet-settable region label
            "ghost-gpu-01": ["placement.unknown_node"],
        ])
        #expect(failed["pdx-gpu-01"]?.stringValue?.hasPrefix(
            "residency.cross_border: dataset onc301-de-clinical (pseudonymised, resident DE) may not be processed in region us-west-2 (US)") == true,
                "\(failed["pdx-gpu-01"]?.stringValue ?? "nil")")
        // The exact bytes: Go field names, in the struct's order, nothing else.
        let text = String(decoding: out.body, as: UTF8.self)
        #expect(text.hasPrefix(#"{"Nodes":null,"NodeNames":["fra-gpu-01","fra-gpu-02","par-gpu-01"],"FailedNodes":{},"FailedAndUnresolvableNodes":{"#))
        #expect(text.hasSuffix(#"},"Error":""}"#))
    }

    /// Node names are matched as bytes: "fra-gpu-\u{E9}" and "fra-gpu-e\u{301}" are equal as Swift
    /// Strings (canonical equivalence) but two names to Kubernetes and to `place`, so an allowed
    /// node must not let its look-alike pass.
    @Test func aNameCanonicallyEquivalentToAnAllowedNodeIsNotPassedUnderItsName() throws {
        let d = try ExtenderDaemon()
        let node = #"{"nodes":[{"name":"fra-gpu-\#u{E9}","region":"eu-central-1","labels":{"node-restriction.kubernetes.io/region":"eu-central-1"}}]}"#
        _ = try d.dispatcher.call("nodes.sync", params: Params(try JSON.parse(node)), context: d.caller)
        var args = try parse(try fixture("filter-names-args.json"))
        guard case .object(var o) = args else { Issue.record("fixture is not an object"); return }
        o.members = o.members.map { $0.key == "NodeNames" ? JSONObject.Member(key: "NodeNames", value: .array([.string("fra-gpu-\u{E9}"), .string("fra-gpu-e\u{301}")])) : $0 }
        args = .object(o)
        let r = try parse(d.post("filter", Array(args.serialized.utf8)).body)
        #expect(r["NodeNames"] == .array([.string("fra-gpu-\u{E9}")]))
        let failed = try #require(r["FailedAndUnresolvableNodes"]?.objectValue)
        #expect(failed.members.map { Array($0.key.unicodeScalars) } == [Array("fra-gpu-e\u{301}".unicodeScalars)])
        #expect(Self.codes(failed.members.first?.value.stringValue) == ["placement.unknown_node"])
    }

    @Test func filterWithFullNodesSendsBackThePassingNodeObjectsAsTheyCame() throws {
        let d = try ExtenderDaemon()
        let args = try parse(try fixture("filter-nodes-args.json"))
        let r = try d.filter(try fixture("filter-nodes-args.json"))
        #expect(r.objectValue?.keys == Self.goKeys)
        #expect(r["NodeNames"] == .null)
        let sent = try #require(args["Nodes"]?["items"]?.arrayValue)
        // fra-gpu-02 passes (the object itself comes back); pdx is outside the EEA; rogue has
        // only the kubelet-settable region label, which the front door does not read.
        #expect(r["Nodes"]?["items"] == .array([sent[0]]))
        let failed = try #require(r["FailedAndUnresolvableNodes"]?.objectValue)
        #expect(failed.keys == ["pdx-gpu-01", "rogue-gpu-01"])
        #expect(Self.codes(failed["rogue-gpu-01"]?.stringValue) == ["residency.location_missing"])
        #expect(r["Error"] == .string(""))
    }

    @Test func aPodWithoutAPrincipalAnnotationIsAnErrorForEveryNodeAndNothingIsDecided() throws {
        let d = try ExtenderDaemon()
        let r = try d.filter(try fixture("filter-plain-args.json"))
        #expect(r["NodeNames"] == .null, "no node passes")
        #expect(r["FailedAndUnresolvableNodes"]?.objectValue?.keys == ["fra-gpu-01", "fra-gpu-02", "fra-gpu-03"])
        #expect(r["Error"]?.stringValue?.contains("custos.io/principal") == true, "\(r["Error"]?.stringValue ?? "nil")")
        #expect(d.records.withLock { $0.isEmpty }, "no placement was decided or audited")
    }

    /// A GxP pod (`custos.io/gxp: "true"`) whose first container runs the qualified image is
    /// still refused when a sidecar or an init container runs an unqualified one: each node's
    /// reasons name the image (policies/guardrails/compute.json qualifies tumour-seg 2.4.1).
    @Test func aGxPPodWithAnUnqualifiedSidecarOrInitContainerIsNotPlacedAnywhere() throws {
        let d = try ExtenderDaemon()
        let qualified = "registry.helix.example/onc/tumour-seg:2.4.1@sha256:3f1e0c9a7b2d4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f"
        func gxpPod(containers: [String], initContainers: [String] = []) throws -> [UInt8] {
            var args = try #require(try parse(try fixture("filter-names-args.json")).objectValue)
            var pod = try #require(args["Pod"]?.objectValue)
            var meta = try #require(pod["metadata"]?.objectValue)
            var annotations = try #require(meta["annotations"]?.objectValue)
            annotations.append("custos.io/gxp", .string("true"))
            meta.members.removeAll { $0.key == "annotations" }
            meta.append("annotations", .object(annotations))
            var spec = try #require(pod["spec"]?.objectValue)
            let list = { (l: [String], n: String) in JSON.array(l.enumerated().map { .object(JSONObject(["name": .string("\(n)\($0.offset)"), "image": .string($0.element)])) }) }
            spec.members.removeAll { $0.key == "containers" }
            spec.append("containers", list(containers, "c"))
            if !initContainers.isEmpty { spec.append("initContainers", list(initContainers, "i")) }
            pod.members.removeAll { $0.key == "metadata" || $0.key == "spec" }
            pod.append("metadata", .object(meta))
            pod.append("spec", .object(spec))
            args.members.removeAll { $0.key == "Pod" }
            args.append("Pod", .object(pod))
            return Array(JSON.object(args).serialized.utf8)
        }
        func imageRefused(_ body: [UInt8]) throws -> [String: Bool] {
            let r = try d.filter(body)
            #expect(r["NodeNames"] == .null || r["NodeNames"] == .array([]), "a GxP pod on these unlabelled GPUs is placed nowhere")
            let failed = try #require(r["FailedAndUnresolvableNodes"]?.objectValue)
            return Dictionary(uniqueKeysWithValues: ["fra-gpu-01", "fra-gpu-02", "par-gpu-01"].map { n in
                (n, Self.codes(failed[n]?.stringValue).contains("compute.unqualified_image"))
            })
        }
        let allEU = ["fra-gpu-01": true, "fra-gpu-02": true, "par-gpu-01": true]
        #expect(try imageRefused(try gxpPod(containers: [qualified])) == allEU.mapValues { _ in false }, "the control: one qualified image")
        #expect(try imageRefused(try gxpPod(containers: [qualified, "registry.helix.example/onc/log-shipper:1.0"])) == allEU)
        #expect(try imageRefused(try gxpPod(containers: [qualified], initContainers: ["registry.helix.example/onc/fetch:3"])) == allEU)
    }

    @Test func theAnnotatedPodsPlacementRecordNamesThePodItsUidAndItsPrincipal() throws {
        let d = try ExtenderDaemon()
        _ = try d.filter(try fixture("filter-names-args.json"))
        let record = try #require(d.records.withLock { $0.last })
        #expect(record.method == "place")
        #expect(record.pod == PlacementJob.Pod(namespace: "onc-301", name: "seg-42-0", uid: "7d3c9f4e-1b2a-4c5d-8e6f-0a1b2c3d4e5f"))
        #expect(record.caller.onBehalfOf == "pod onc-301/seg-42-0")
        #expect(record.request.principal.description == #"User::"alice""#)
        #expect(record.purpose == "primary_research")
    }

    @Test func prioritizeScoresTheStudysDedicatedNodeTenAndTheDatasHomeFive() throws {
        let d = try ExtenderDaemon()
        #expect(d.prioritize(try fixture("prioritize-args.json"))
                == #"[{"Host":"fra-gpu-01","Score":10},{"Host":"fra-gpu-02","Score":5},{"Host":"par-gpu-01","Score":5},{"Host":"pdx-gpu-01","Score":0}]"#)
    }

    @Test func aThousandNamedNodesComeBackEachPassedOrFailedInTheSchedulersOrder() throws {
        let d = try ExtenderDaemon(inventory: "sync-1000.json")
        let args = try fixture("filter-names-1000-args.json")
        let names = try #require(try parse(args)["NodeNames"]?.arrayValue).compactMap(\.stringValue)
        #expect(names.count == 1000)
        let r = try d.filter(args)
        #expect(r.objectValue?.keys == Self.goKeys)
        let passed = try #require(r["NodeNames"]?.arrayValue).compactMap(\.stringValue)
        let failed = try #require(r["FailedAndUnresolvableNodes"]?.objectValue)
        #expect(Set(passed).isDisjoint(with: failed.keys))
        #expect(passed.count + failed.count == 1000)
        #expect(passed == names.filter { Set(passed).contains($0) }, "the scheduler's order")
        // The same decision as `place` itself over the same names.
        let direct = try d.dispatcher.call("place", params: Params(try parse(Array(#"{"job":{"id":"onc-301/seg-42-0","principal":"User::\"alice\"","study":"ONC-301","purpose":"primary_research","datasets":["onc301-de-clinical","onc301-fr-genomic"]},"nodes":\#(JSON.array(names.map { .string($0) }).serialized)}"#.utf8))), context: d.caller)
        #expect(direct["allowed"]?.arrayValue?.compactMap(\.stringValue) == passed)
        #expect(passed.count > 0 && failed.count > 0, "both outcomes")
        #expect(r["Error"] == .string(""))
        // Prioritize over the same thousand: a score for every node, in the scheduler's order.
        let scores = try #require(try parse(Array(d.prioritize(args).utf8)).arrayValue)
        #expect(scores.compactMap { $0["Host"]?.stringValue } == names)
        #expect(scores.allSatisfy { s in s["Score"]?.intValue.map { (0...10).contains($0) } == true })
    }

    struct Broken: Sendable, CustomStringConvertible {
        var name: String
        var body: String
        var failed: [String]
        var error: String
        var description: String { name }
    }

    static let pod = #"{"metadata":{"name":"p","namespace":"n","uid":"u","annotations":{"custos.io/principal":"User::\"alice\""}},"spec":{"containers":[{"name":"c","image":"i"}]}}"#

    static let broken: [Broken] = [
        Broken(name: "not JSON", body: "{\"Pod\":", failed: [], error: "not JSON"),
        Broken(name: "no Pod", body: #"{"Nodes":null,"NodeNames":["a","b"]}"#, failed: ["a", "b"], error: "Pod.metadata.name: missing"),
        Broken(name: "lower-case keys are not Go's", body: #"{"pod":\#(pod),"nodeNames":["a"]}"#, failed: [], error: "pod: unknown member"),
        Broken(name: "NodeNames not an array", body: #"{"Pod":\#(pod),"NodeNames":"a"}"#, failed: [], error: "neither NodeNames nor Nodes"),
        Broken(name: "a node named twice", body: #"{"Pod":\#(pod),"NodeNames":["a","b","a"]}"#, failed: ["a", "b"], error: "params.nodes[2]"),
        Broken(name: "a principal that is not an entity reference",
               body: #"{"Pod":{"metadata":{"name":"p","annotations":{"custos.io/principal":"alice"}}},"NodeNames":["a"]}"#, failed: ["a"],
               error: "params.job.principal"),
    ]

    @Test(arguments: broken)
    func anythingThatGoesWrongFailsEveryNodeItCanNameAndSetsError(_ b: Broken) throws {
        let d = try ExtenderDaemon()
        let r = try d.filter(Array(b.body.utf8))
        #expect(r.objectValue?.keys == Self.goKeys)
        #expect(r["NodeNames"] == .null, "no node passes")
        #expect(r["Nodes"] == .null)
        #expect(r["FailedNodes"] == .object(JSONObject()))
        #expect(r["FailedAndUnresolvableNodes"]?.objectValue?.keys == b.failed)
        let error = r["Error"]?.stringValue ?? ""
        #expect(error.hasPrefix("custos: ") && error.contains(b.error), "\(error)")
    }

    @Test func aDaemonWithoutPoliciesFailsEveryNodeWithTheNotReadyError() throws {
        let d = try ExtenderDaemon(loaded: false)
        let r = try d.filter(try fixture("filter-nodes-args.json"))
        #expect(r["Nodes"] == .null)
        #expect(r["NodeNames"] == .null)
        #expect(r["FailedAndUnresolvableNodes"]?.objectValue?.keys == ["fra-gpu-02", "pdx-gpu-01", "rogue-gpu-01"])
        #expect(r["Error"]?.stringValue?.contains("not ready") == true, "\(r["Error"]?.stringValue ?? "nil")")
        // Prioritize has no error to give: every node is scored 0, so nothing is preferred.
        #expect(d.prioritize(try fixture("prioritize-args.json"))
                == #"[{"Host":"fra-gpu-01","Score":0},{"Host":"fra-gpu-02","Score":0},{"Host":"par-gpu-01","Score":0},{"Host":"pdx-gpu-01","Score":0}]"#)
    }
}

@Suite struct KubernetesNodeMappingTests {
    @Test func theRegionComesFromTheProtectedLabelAndOnlySelectedLabelsAreKept() throws {
        let list = try #require(try parse(try fixture("nodes-kubectl.json"))["items"]?.arrayValue)
        let mapping = KubernetesNodeMapping()
        #expect(mapping.regionLabelIsProtected)
        let fra = try mapping.node(list[0])
        #expect(fra["name"] == .string("fra-gpu-01"))
        #expect(fra["region"] == .string("eu-central-1"))
        #expect(fra["labels"]?.objectValue?.keys.sorted() == [
            "custos.io/study", "node-restriction.kubernetes.io/region", "nvidia.com/cuda.driver-version.full",
            "nvidia.com/gpu.product", "topology.kubernetes.io/region",
        ])
        let rogue = try mapping.node(list[7])
        #expect(rogue["region"] == nil, "topology.kubernetes.io/region is the kubelet's to set")
        let kubelet = KubernetesNodeMapping(regionLabel: "topology.kubernetes.io/region", labelKeys: ["*"])
        #expect(!kubelet.regionLabelIsProtected)
        #expect(try kubelet.node(list[7])["region"] == .string("eu-central-1"))
        #expect((try kubelet.node(list[7])["labels"]?.objectValue?.count ?? 0) > 10)
    }

    @Test(arguments: [
        (#"{"type":"ADDED","object":{"metadata":{"name":"a","labels":{"node-restriction.kubernetes.io/region":"eu-west-1"}}}}"#, "upsert a eu-west-1"),
        (#"{"type":"MODIFIED","object":{"kind":"Node","metadata":{"name":"a"}}}"#, "upsert a -"),
        (#"{"type":"DELETED","object":{"metadata":{"name":"a"}}}"#, "delete a"),
        (#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"7"}}}"#, "none"),
        (#"{"kind":"Node","metadata":{"name":"b"}}"#, "upsert b -"),
        (#"{"kind":"NodeList","items":[{"metadata":{"name":"c"}},{"metadata":{"name":"d"}}]}"#, "all c d"),
    ])
    func watchStreamDocumentsBecomeInventoryChanges(_ text: String, _ expected: String) throws {
        let doc = try KubernetesNodeMapping().document(try JSON.parse(text))
        let got: String
        switch doc {
        case .all(let nodes): got = "all " + nodes.compactMap { $0["name"]?.stringValue }.joined(separator: " ")
        case .upsert(let nodes): got = "upsert " + nodes.map { ($0["name"]?.stringValue ?? "") + " " + ($0["region"]?.stringValue ?? "-") }.joined(separator: " ")
        case .delete(let names): got = "delete " + names.joined(separator: " ")
        case .none: got = "none"
        }
        #expect(got == expected)
    }

    @Test(arguments: [
        (#"{"type":"ERROR","object":{"message":"too old resource version"}}"#, "too old resource version"),
        (#"{"kind":"Pod","metadata":{"name":"x"}}"#, "expected kind Node"),
        (#"{"metadata":{}}"#, "without metadata.name"),
        (#"{"metadata":{"name":"x","labels":{"a":1}}}"#, "label a is not a string"),
    ])
    func documentsThatAreNotNodesAreRefused(_ text: String, _ message: String) throws {
        do {
            _ = try KubernetesNodeMapping().document(try JSON.parse(text))
            Issue.record("accepted \(text)")
        } catch let e as KubernetesNodeMapping.Failure {
            #expect(e.message.contains(message), "\(e.message)")
        }
    }
}
