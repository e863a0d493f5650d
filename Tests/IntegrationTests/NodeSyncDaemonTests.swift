import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Testing

/// A process the test starts and stops itself (a sidecar, a Slurm daemon); killed when dropped.
final class Child: @unchecked Sendable {
    let name: String
    let pid: pid_t
    /// The exit status once reaped (waitpid), so the pid is never waited for twice.
    private var status: Int32? = nil

    /// Output goes to `log` (appended) when given, else is discarded.
    ///
    /// Started with posix_spawn, not Foundation's `Process`: Process reaps its children from
    /// one thread with a blocking wait, so a long-running daemon (slurmctld, a sidecar) started
    /// with it can keep every other Process of the test run from ever being seen to exit.
    init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], log: String? = nil,
         stdin: String? = nil) throws {
        name = (executable as NSString).lastPathComponent
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let stdin {
            guard FileManager.default.isReadableFile(atPath: stdin) else { throw DaemonFailure(message: "cannot read \(stdin)") }
            posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        if let log {
            posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        let (rc, pid) = spawnWithCleanSignals(executable, [executable] + arguments, env.map { $0.key + "=" + $0.value }, &actions)
        guard rc == 0 else { throw DaemonFailure(message: "cannot start \(executable): \(String(cString: strerror(rc)))") }
        self.pid = pid
    }

    /// Whether the child has not exited; reaps it when it has.
    var running: Bool {
        if status != nil { return false }
        var st: Int32 = 0
        let r = waitpid(pid, &st, WNOHANG)
        if r == pid { status = st; return false }
        return r == 0
    }

    func stop() {
        guard running else { return }
        kill(pid, SIGTERM)
        if !eventually({ !self.running }) { kill(pid, SIGKILL) }
        if status == nil { var st: Int32 = 0; waitpid(pid, &st, 0); status = st }
    }

    deinit {
        if running { kill(pid, SIGKILL); var st: Int32 = 0; waitpid(pid, &st, 0) }
    }
}

/// The recorded Kubernetes and Slurm documents (Tests/SchedulerExtenderTests/Fixtures).
let schedulerFixtures = daemonRepoRoot + "/Tests/SchedulerExtenderTests/Fixtures/"

/// A copy of the example policies, guardrails included, for a daemon of the test's own.
func fullPolicies(_ d: TestDaemon) throws {
    let fm = FileManager.default
    try? fm.removeItem(atPath: d.policies)
    try fm.copyItem(atPath: daemonExamplePolicies, toPath: d.policies)
}

func nodesStatus(_ d: TestDaemon) -> (count: Int64, revision: String)? {
    guard case .success(let r)? = try? d.call("nodes.status") else { return nil }
    guard let n = r["nodes"]?.intValue, let rev = r["revision"]?.stringValue else { return nil }
    return (n, rev)
}

@Suite(.serialized) struct NodeSyncDaemonTests {
    static let place = #"{"job":{"id":"onc-301/seg-42-0","principal":"User::\"alice\"","study":"ONC-301","purpose":"primary_research","datasets":["onc301-de-clinical"]},"#
        + #""nodes":["fra-gpu-01","fra-gpu-02","fra-gpu-03","par-gpu-01","iad-gpu-01","pdx-gpu-01","hyd-gpu-01","rogue-gpu-01"]}"#

    @Test func k8sNodeSyncFillsTheInventoryFromKubectlJSONAndSyncsAgainAfterTheDaemonRestarts() throws {
        let sockDir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: sockDir) }
        let socket = sockDir + "/c.sock"
        let first = try TestDaemon(copyExample: false, socket: socket)
        try fullPolicies(first)
        try first.start()
        let sidecar = try Child(daemonCustosBinary, ["k8s-node-sync", schedulerFixtures + "nodes-kubectl.json", "--socket", socket,
                                                     "--check-interval", "0.2"], log: sockDir + "/sidecar.log")
        defer { sidecar.stop() }
        guard let synced = eventually({ nodesStatus(first).flatMap { $0.count == 8 ? $0 : nil } }) else {
            Issue.record("no first sync: \(nodesStatus(first).map { "\($0)" } ?? "no status"); sidecar: \((try? String(contentsOfFile: sockDir + "/sidecar.log", encoding: .utf8)) ?? "")")
            return
        }
        let list = try #require(try first.call("nodes.list").get()["nodes"]?.arrayValue)
        let fra = try #require(list.first { $0["name"] == .string("fra-gpu-01") })
        #expect(fra["region"] == .string("eu-central-1"))
        #expect(fra["labels"]?["custos.io/study"] == .string("ONC-301"))
        #expect(fra["labels"]?["kubernetes.io/hostname"] == nil, "only the selected labels")
        #expect(list.first { $0["name"] == .string("rogue-gpu-01") }?["region"] == .null,
                "topology.kubernetes.io/region, which the kubelet sets, is not the region")
        let placed = try first.call("place", try JSON.parse(Self.place)).get()
        #expect(placed["allowed"] == .array(["fra-gpu-01", "fra-gpu-02", "par-gpu-01"].map { .string($0) }))

        // The daemon restarts with an empty inventory; the sidecar notices and syncs again.
        first.signal(SIGTERM)
        #expect(first.waitForExit() != nil)
        let second = try TestDaemon(copyExample: false, socket: socket)
        try fullPolicies(second)
        try second.start()
        guard let again = eventually({ nodesStatus(second).flatMap { $0.count == 8 ? $0 : nil } }) else {
            Issue.record("no sync after the restart: \(nodesStatus(second).map { "\($0)" } ?? "no status"); sidecar: \((try? String(contentsOfFile: sockDir + "/sidecar.log", encoding: .utf8)) ?? "")")
            return
        }
        #expect(again.revision == synced.revision, "the same nodes, so the same revision")
        let placedAgain = try second.call("place", try JSON.parse(Self.place)).get()
        #expect(placedAgain["allowed"] == placed["allowed"])
        #expect(sidecar.running)
    }

    @Test func aWatchStreamOfEventsAddsChangesAndDeletesNodes() throws {
        let d = try TestDaemon(copyExample: false)
        try fullPolicies(d)
        try d.start()
        // What `kubectl get nodes -o json --watch --output-watch-events` prints: one pretty-
        // printed event after another.
        let node = { (name: String, region: String) in
            #"{"kind":"Node","apiVersion":"v1","metadata":{"name":"\#(name)","labels":{"node-restriction.kubernetes.io/region":"\#(region)"}}}"#
        }
        let events = [
            #"{"type":"ADDED","object":\#(node("a", "eu-west-1"))}"#,
            #"{"type":"ADDED","object":\#(node("b", "eu-west-1"))}"#,
            #"{"type":"ADDED","object":\#(node("c", "us-west-2"))}"#,
            #"{"type":"MODIFIED","object":\#(node("b", "eu-west-3"))}"#,
            #"{"type":"DELETED","object":\#(node("c", "us-west-2"))}"#,
            #"{"type":"BOOKMARK","object":{"kind":"Node","apiVersion":"v1","metadata":{"resourceVersion":"12"}}}"#,
        ].map { try! JSON.parse($0).serialized(pretty: true) }.joined(separator: "\n")
        let file = d.dir + "/watch.json"
        try events.write(toFile: file, atomically: true, encoding: .utf8)
        let r = try runCustosCommand(["k8s-node-sync", file, "--socket", d.socket, "--once"])
        #expect(r.status == 0, "\(r.err)")
        let list = try #require(try d.call("nodes.list").get()["nodes"]?.arrayValue)
        #expect(list.map { "\($0["name"]?.stringValue ?? "") \($0["region"]?.stringValue ?? "-")" } == ["a eu-west-1", "b eu-west-3"])
    }

    @Test func aDocumentThatIsNotANodeListChangesNothingAndOnceFails() throws {
        let d = try TestDaemon(copyExample: false)
        try fullPolicies(d)
        try d.start()
        let file = d.dir + "/bad.json"
        try #"{"kind":"PodList","items":[{"kind":"Pod","metadata":{"name":"p"}}]}"#.write(toFile: file, atomically: true, encoding: .utf8)
        let r = try runCustosCommand(["k8s-node-sync", file, "--socket", d.socket, "--once"])
        #expect(r.status == 1)
        #expect(r.err.contains("expected kind Node, got Pod"), "\(r.err)")
        #expect(nodesStatus(d)?.count == 0)
    }

    @Test func aRegionLabelKubeletsMaySetIsTakenOnlyWithAWarning() throws {
        let d = try TestDaemon(copyExample: false)
        try fullPolicies(d)
        try d.start()
        let r = try runCustosCommand(["k8s-node-sync", schedulerFixtures + "nodes-kubectl.json", "--socket", d.socket, "--once",
                                      "--region-label", "topology.kubernetes.io/region"])
        #expect(r.status == 0)
        #expect(r.err.contains("warning: region label topology.kubernetes.io/region is not under node-restriction.kubernetes.io/"), "\(r.err)")
        let list = try #require(try d.call("nodes.list").get()["nodes"]?.arrayValue)
        #expect(list.first { $0["name"] == .string("rogue-gpu-01") }?["region"] == .string("eu-central-1"))
    }

    /// A node whose features give one key twice is ambiguous (which region?): it is left out,
    /// naming it, and the other nodes are synced; before, its duplicate keys failed the whole
    /// sync and every node kept its old region and labels.
    @Test(arguments: [["region=eu-central-1", "gpu", "region=us-west-2"], ["region=eu-central-1", "gpu", "gpu=a100"]])
    func slurmNodeSyncLeavesOutANodeWhoseFeaturesRepeatAKey(features: [String]) throws {
        let sockDir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: sockDir) }
        let d = try TestDaemon(copyExample: false, socket: sockDir + "/c.sock")
        try fullPolicies(d)
        try d.start()
        var doc = try #require(try JSON.parse(Array(try String(contentsOfFile: schedulerFixtures + "slurm-scontrol-24.05.json", encoding: .utf8).utf8)).objectValue)
        var nodes = try #require(doc["nodes"]?.arrayValue)
        let i = try #require(nodes.firstIndex { $0["name"] == .string("fra-gpu-02") })
        var node = try #require(nodes[i].objectValue)
        for key in ["features", "active_features"] {
            node.members.removeAll { $0.key == key }
            node.append(key, .array(features.map { .string($0) }))
        }
        nodes[i] = .object(node)
        doc.members.removeAll { $0.key == "nodes" }
        doc.append("nodes", .array(nodes))
        let file = sockDir + "/nodes.json"
        try JSON.object(doc).serialized.write(toFile: file, atomically: true, encoding: .utf8)
        let r = try runCustosCommand(["slurm-node-sync", file, "--socket", d.socket, "--once"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("node fra-gpu-02: its features give"), "\(r.err)")
        let list = try #require(try d.call("nodes.list").get()["nodes"]?.arrayValue)
        #expect(list.compactMap { $0["name"]?.stringValue } == ["fra-gpu-01", "pdx-gpu-01"])
    }

    @Test func slurmNodeSyncTakesRegionAndLabelsFromFeaturesOfBothJSONShapesAndSyncsAgainAfterARestart() throws {
        let sockDir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: sockDir) }
        let socket = sockDir + "/c.sock"
        let first = try TestDaemon(copyExample: false, socket: socket)
        try fullPolicies(first)
        try first.start()
        // Slurm 22.05's `sinfo --json` (features as one comma-separated string, recorded from
        // Debian's slurm-wlm) and 24.x's `scontrol show nodes --json` (arrays).
        for (file, names) in [("slurm-sinfo-22.05.json", ["eu-gpu-01", "us-gpu-01"]),
                              ("slurm-scontrol-24.05.json", ["fra-gpu-01", "fra-gpu-02", "pdx-gpu-01"])] {
            let r = try runCustosCommand(["slurm-node-sync", schedulerFixtures + file, "--socket", socket, "--once"])
            #expect(r.status == 0, "\(r.err)")
            let list = try #require(try first.call("nodes.list").get()["nodes"]?.arrayValue)
            #expect(list.compactMap { $0["name"]?.stringValue } == names)
        }
        let list = try #require(try first.call("nodes.list").get()["nodes"]?.arrayValue)
        #expect(list[0]["region"] == .string("eu-central-1"))
        #expect(list[0]["labels"]?["node-restriction.kubernetes.io/study"] == .string("ONC-301"))
        #expect(list[0]["labels"]?["gpu"] == .string("true"), "a bare feature")

        // Running the command itself, the sidecar syncs again after a restart.
        let sidecar = try Child(daemonCustosBinary, ["slurm-node-sync", "--command", "cat " + schedulerFixtures + "slurm-scontrol-24.05.json",
                                                     "--socket", socket, "--check-interval", "0.2"], log: sockDir + "/sidecar.log")
        defer { sidecar.stop() }
        first.signal(SIGTERM)
        #expect(first.waitForExit() != nil)
        let second = try TestDaemon(copyExample: false, socket: socket)
        try fullPolicies(second)
        try second.start()
        #expect(eventually { nodesStatus(second)?.count == 3 })
    }
}

extension JSON {
    /// Indented as kubectl prints it (what a watch stream looks like on the wire).
    func serialized(pretty: Bool) -> String {
        guard pretty else { return serialized }
        var out = ""
        func write(_ v: JSON, _ indent: String) {
            switch v {
            case .object(let o) where !o.isEmpty:
                out += "{\n"
                for (i, m) in o.members.enumerated() {
                    out += indent + "    " + JSON.string(m.key).serialized + ": "
                    write(m.value, indent + "    ")
                    out += i + 1 < o.count ? ",\n" : "\n"
                }
                out += indent + "}"
            case .array(let a) where !a.isEmpty:
                out += "[\n"
                for (i, e) in a.enumerated() {
                    out += indent + "    "
                    write(e, indent + "    ")
                    out += i + 1 < a.count ? ",\n" : "\n"
                }
                out += indent + "]"
            default:
                out += v.serialized
            }
        }
        write(self, "")
        return out
    }
}
