import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Testing

/// The recorded `ExtenderArgs` of Tests/SchedulerExtenderTests/Fixtures.
let extenderFixtures = daemonRepoRoot + "/Tests/SchedulerExtenderTests/Fixtures"

/// `custos serve` with the example policies and guardrails, a front door on a Unix socket with
/// a `kubernetes` gateway at /scheduler/k8s, and the 1,000 nodes of sync-1000.json in its
/// inventory: the kube-scheduler's view of the daemon.
final class ExtenderFrontDoor {
    let daemon: TestDaemon
    let http: String

    init() throws {
        let dir = makeShortTempDir()
        http = dir + "/http.sock"
        daemon = try TestDaemon(config: """
            {"http": {"listeners": [{"unix": "\(http)"}],
                      "gateways": {"k8s": {"kind": "kubernetes", "region_label": "node-restriction.kubernetes.io/region"}}}}
            """, state: dir)
        try fullPolicies(daemon)
        try daemon.start()
        _ = try #require(eventually { FileManager.default.fileExists(atPath: self.http) ? true : nil })
        let sync = try JSON.parse([UInt8](try #require(FileManager.default.contents(atPath: extenderFixtures + "/sync-1000.json"))))
        #expect(try daemon.call("nodes.sync", sync).get()["nodes"] == .int(1000))
    }

    deinit {
        daemon.signal(SIGTERM)
        _ = daemon.waitForExit()
        try? FileManager.default.removeItem(atPath: daemon.dir)
    }

    /// POSTs the file `body` to /scheduler/k8s/`verb` through the front door.
    func post(_ verb: String, file body: String) throws -> CurlReply {
        try curl(["--unix-socket", http, "-X", "POST", "-H", "Content-Type: application/json",
                  "--data-binary", "@" + body, "http://x/scheduler/k8s/" + verb])
    }

    /// `place` over JSON-RPC on the same daemon: what the front door's answer must agree with.
    func place(_ job: JSON, nodes: [JSON], scores: Bool = false) throws -> JSON {
        try daemon.call("place", .object(JSONObject(["job": job, "nodes": .array(nodes), "scores": .bool(scores)]))).get()
    }

    func auditEntry(_ decisionID: String) throws -> JSONObject {
        let r = try daemon.call("audit.query", .object(JSONObject(["decision_id": .string(decisionID)]))).get()
        return try #require(r["entries"]?.arrayValue?.first?.objectValue)
    }

    func decisionsCounted() throws -> Int64 {
        let m = try daemon.call("metrics").get()
        let f = try #require(m["families"]?.arrayValue?.first { $0["name"] == .string("custos_decisions_total") })
        return (f["samples"]?.arrayValue ?? []).reduce(0) { $0 + ($1["value"]?.intValue ?? 0) }
    }

    /// The job the front door reads from the recorded pod's annotations (docs/gateways.md).
    static let job = try! JSON.parse(#"{"id":"onc-301/seg-42-0","principal":"User::\"alice\"","study":"ONC-301","purpose":"primary_research","datasets":["onc301-de-clinical","onc301-fr-genomic"],"gxp":false,"image":"registry.helix.example/onc/tumour-seg:2.4.1"}"#)
}

/// The Kubernetes scheduler extender through the real binary and a real socket: recorded
/// `ExtenderArgs` over 1,000 nodes in both `nodeCacheCapable` modes, prioritize, and a pod
/// without annotations (ExtenderTests check the same routes in-process).
@Suite struct ExtenderFrontDoorTests {
    static let goKeys = ["Nodes", "NodeNames", "FailedNodes", "FailedAndUnresolvableNodes", "Error"]

    /// The `code`s of a `FailedAndUnresolvableNodes` message (`code: message; code: ...`).
    static func codes(_ message: String?) -> [String] {
        (message ?? "").components(separatedBy: "; ").compactMap { part in part.firstIndex(of: ":").map { String(part[..<$0]) } }
    }

    static func rejectedCodes(_ place: JSON, _ node: String) -> [String] {
        (place["rejected"]?[node]?.arrayValue ?? []).compactMap { $0["code"]?.stringValue }
    }

    static func fixture(_ name: String) throws -> JSON {
        try JSON.parse([UInt8](try #require(FileManager.default.contents(atPath: extenderFixtures + "/" + name))))
    }

    @Test func aThousandNamedNodesAreFilteredAsPlaceDecidesAndTheAuditEntryIsPlacesOwn() throws {
        let d = try ExtenderFrontDoor()
        let args = try Self.fixture("filter-names-1000-args.json")
        #expect(args["Pod"]?["metadata"]?["uid"]?.stringValue != nil, "a recorded pod with its uid")
        let names = try #require(args["NodeNames"]?.arrayValue)
        #expect(names.count == 1000)
        let r = try d.post("filter", file: extenderFixtures + "/filter-names-1000-args.json")
        #expect(r.status == 200)
        let body = try #require(r.json)
        #expect(body.keys == Self.goKeys)
        #expect(body["Error"] == .string(""))
        #expect(body["Nodes"] == .null)
        #expect(body["FailedNodes"] == .object(JSONObject()))
        let direct = try d.place(ExtenderFrontDoor.job, nodes: names)
        let allowed = try #require(direct["allowed"]?.arrayValue)
        #expect(allowed.count > 0 && allowed.count < 1000, "both outcomes")
        // The passing list is place's, in the scheduler's order; every other node is failed and
        // unresolvable, with place's own reasons.
        #expect(body["NodeNames"] == .array(allowed))
        let failed = try #require(body["FailedAndUnresolvableNodes"]?.objectValue)
        let allowedSet = Set(allowed.compactMap(\.stringValue))
        #expect(failed.keys == names.compactMap(\.stringValue).filter { !allowedSet.contains($0) })
        for m in failed.members { #expect(Self.codes(m.value.stringValue) == Self.rejectedCodes(direct, m.key), "\(m.key)") }
        // The same decision, reasons, guardrail codes and obligations (the entry's `reasons`)
        // in the audit log as place's own, recorded for the pod.
        let entry = try d.auditEntry(try #require(r.header("x-custos-decision-id")))
        let directEntry = try d.auditEntry(try #require(direct["decision_id"]?.stringValue))
        #expect(entry["method"] == .string("place"))
        #expect(entry["on_behalf_of"] == .string("pod onc-301/seg-42-0"))
        for key in ["decision", "reasons", "basis", "purpose", "principal", "action", "resource", "policy_revision"] {
            #expect(entry[key] == directEntry[key], "\(key)")
        }
        #expect(entry["reasons"]?.arrayValue?.contains(.string("guardrail: residency.cross_border")) == true)
        #expect(entry["context"]?["pod"]?["uid"] == args["Pod"]?["metadata"]?["uid"])
    }

    @Test func aThousandNodeObjectsComeBackAsSentWhenAllowedAndFailedWithPlacesReasonsOtherwise() throws {
        let d = try ExtenderFrontDoor()
        // nodeCacheCapable: false: the scheduler sends the Node objects, labels and all.
        let sync = try #require(try Self.fixture("sync-1000.json")["nodes"]?.arrayValue)
        let items: [JSON] = sync.map { n in
            .object(JSONObject([
                "metadata": .object(JSONObject(["name": n["name"]!, "labels": n["labels"]!, "resourceVersion": .string("4711")])),
                "status": .object(JSONObject(["allocatable": .object(JSONObject(["nvidia.com/gpu": .string("8")]))])),
            ]))
        }
        var args = try #require(try Self.fixture("filter-names-1000-args.json").objectValue)
        args.members = args.members.filter { $0.key != "NodeNames" && $0.key != "Nodes" }
        args.append("Nodes", .object(JSONObject(["items": .array(items)])))
        let file = d.daemon.dir + "/filter-nodes-1000-args.json"
        try JSON.object(args).serialized.write(toFile: file, atomically: true, encoding: .utf8)
        let r = try d.post("filter", file: file)
        #expect(r.status == 200)
        let body = try #require(r.json)
        #expect(body.keys == Self.goKeys)
        #expect(body["Error"] == .string(""))
        #expect(body["NodeNames"] == .null)
        // place over the same nodes as objects: region from the protected label, labels as sent.
        let objects: [JSON] = sync.map { n in
            .object(JSONObject(["name": n["name"]!, "region": n["labels"]?["node-restriction.kubernetes.io/region"] ?? .null, "labels": n["labels"]!]))
        }
        let direct = try d.place(ExtenderFrontDoor.job, nodes: objects)
        let allowed = Set(try #require(direct["allowed"]?.arrayValue).compactMap(\.stringValue))
        #expect(allowed.count > 0 && allowed.count < 1000, "both outcomes")
        let kept = try #require(body["Nodes"]?["items"]?.arrayValue)
        let expected = items.filter { allowed.contains($0["metadata"]?["name"]?.stringValue ?? "") }
        #expect(kept.map { $0["metadata"]?["name"] ?? .null } == expected.map { $0["metadata"]?["name"] ?? .null }, "place's nodes, in the scheduler's order")
        #expect(kept == expected, "each node object as it was sent")
        let failed = try #require(body["FailedAndUnresolvableNodes"]?.objectValue)
        #expect(failed.count + allowed.count == 1000)
        for m in failed.members { #expect(Self.codes(m.value.stringValue) == Self.rejectedCodes(direct, m.key), "\(m.key)") }
    }

    @Test func prioritizeScoresAThousandNodesInTheSchedulersOrderAsPlaceScoresThem() throws {
        let d = try ExtenderFrontDoor()
        let names = try #require(try Self.fixture("filter-names-1000-args.json")["NodeNames"]?.arrayValue)
        let r = try d.post("prioritize", file: extenderFixtures + "/filter-names-1000-args.json")
        #expect(r.status == 200)
        let list = try #require(try JSON.parse(r.body).arrayValue)
        #expect(list.map { $0.objectValue?.keys ?? [] }.allSatisfy { $0 == ["Host", "Score"] })
        #expect(list.map { $0["Host"] ?? .null } == names)
        let scores = try #require(try d.place(ExtenderFrontDoor.job, nodes: names, scores: true)["scores"]?.objectValue)
        #expect(Set(scores.members.map(\.value)).count > 1, "the scores tell nodes apart")
        for h in list {
            let name = try #require(h["Host"]?.stringValue)
            #expect(h["Score"] == (scores[name] ?? .int(0)), "\(name)")
        }
    }

    @Test func aPodWithoutTheAnnotationsFailsEveryNodeWithAnErrorAndNothingIsDecided() throws {
        let d = try ExtenderFrontDoor()
        let before = try d.decisionsCounted()
        let r = try d.post("filter", file: extenderFixtures + "/filter-plain-args.json")
        #expect(r.status == 200)
        let body = try #require(r.json)
        #expect(body.keys == Self.goKeys)
        #expect(body["NodeNames"] == .null, "no node passes")
        #expect(body["FailedAndUnresolvableNodes"]?.objectValue?.keys == ["fra-gpu-01", "fra-gpu-02", "fra-gpu-03"])
        #expect(body["Error"]?.stringValue?.contains("custos.io/principal") == true, "\(body["Error"]?.stringValue ?? "nil")")
        let p = try d.post("prioritize", file: extenderFixtures + "/filter-plain-args.json")
        #expect(p.body.trimmingCharacters(in: .whitespacesAndNewlines)
                == #"[{"Host":"fra-gpu-01","Score":0},{"Host":"fra-gpu-02","Score":0},{"Host":"fra-gpu-03","Score":0}]"#)
        #expect(try d.decisionsCounted() == before, "no placement was decided")
    }
}
