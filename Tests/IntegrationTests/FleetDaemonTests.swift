import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Testing

/// One `custos serve` of a fleet: its own state folder and socket, a copy of the example
/// policies, and a configuration naming the shared store. Unlike `TestDaemon` it can be
/// stopped, killed and started again on the same state folder.
final class FleetNode: @unchecked Sendable {
    let dir: String
    let policies: String
    let socket: String
    let state: String
    let configFile: String
    let environment: [String: String]
    private(set) var process: Process?
    private var errFile: String { dir + "/stderr.\(starts)" }
    private var starts = 0

    init(store: PostgresServer, maxStalenessMs: Int = 5000, witnessIntervalMs: Int = 1000) throws {
        try requireBinary()
        dir = makeShortTempDir()
        policies = dir + "/policies"
        socket = dir + "/c.sock"
        state = dir + "/state"
        configFile = dir + "/config.json"
        environment = store.environment
        let fm = FileManager.default
        try fm.createDirectory(atPath: policies, withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: daemonExamplePolicies) {
            var isDir: ObjCBool = false
            let src = daemonExamplePolicies + "/" + name
            if fm.fileExists(atPath: src, isDirectory: &isDir), !isDir.boolValue {
                try fm.copyItem(atPath: src, toPath: policies + "/" + name)
            }
        }
        try fm.copyItem(atPath: daemonExamplePolicies + "/guardrails", toPath: policies + "/guardrails")
        let config = """
            {"state": {"store": "\(store.uri)", "max_staleness_ms": \(maxStalenessMs), "witness_interval_ms": \(witnessIntervalMs)}}
            """
        try config.write(toFile: configFile, atomically: true, encoding: .utf8)
    }

    deinit {
        if let p = process, p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Starts `custos serve`; returns once it answers `health`, or throws with its stderr when
    /// it exited instead.
    @discardableResult
    func start() throws -> FleetNode {
        let p = try launch()
        let answered = eventually { !p.isRunning || answersHealth(socket) }
        if !p.isRunning { throw DaemonFailure(message: "custos serve exited with \(p.terminationStatus): \(stderrText())") }
        if !answered { throw DaemonFailure(message: "custos serve did not answer on \(socket)") }
        return self
    }

    /// Starts `custos serve` and returns the process without waiting for it.
    func launch() throws -> Process {
        starts += 1
        _ = FileManager.default.createFile(atPath: errFile, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: daemonCustosBinary)
        p.arguments = ["serve", "--policies", policies, "--socket", socket, "--state", state, "--config", configFile]
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, n in n }
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        p.standardError = FileHandle(forWritingAtPath: errFile)
        try p.run()
        process = p
        return p
    }

    func stderrText() -> String { (try? String(contentsOfFile: errFile, encoding: .utf8)) ?? "" }

    /// SIGTERM and wait: a clean stop (final checkpoint, published to the witness).
    func stop() {
        guard let p = process, p.isRunning else { return }
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
    }

    func kill9() {
        guard let p = process, p.isRunning else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    func call(_ method: String, _ params: JSON? = nil) throws -> Result<JSON, RPCError> {
        let c = try RPCClient(path: socket, timeout: .seconds(60))
        defer { c.close() }
        return try c.call(method, params: params)
    }

    func health() throws -> JSON? {
        guard case .success(let h) = try call("health") else { return nil }
        return h
    }

    /// `health`'s `state` member.
    func storeState() throws -> JSONObject? { try health()?.objectValue?["state"]?.objectValue }

    func custos(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: daemonCustosBinary)
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, n in n }
        return try collectOutput(p)
    }
}

/// A decide that rests on consent: erin trains a model on ONC-301 German clinical data, whose
/// purpose `ml_model_training` is consent-based (cohort `onc301-de`).
let consentDependentRequest: JSON = .object(JSONObject([
    "principal": .object(JSONObject(["type": .string("User"), "id": .string("erin")])),
    "action": .object(JSONObject(["type": .string("Action"), "id": .string("train_model")])),
    "resource": .object(JSONObject(["type": .string("Dataset"), "id": .string("onc301-de-clinical")])),
    "context": .object(JSONObject(["region": .string("eu-central-1"), "purpose": .string("ml_model_training")])),
]))

let mlConsent: JSON = .object(JSONObject(["cohort": .string("onc301-de"), "purpose": .string("ml_model_training")]))
let mlGrant: JSON = .object(JSONObject(["cohort": .string("onc301-de"), "purpose": .string("ml_model_training"),
                                        "evidence": .string("ICF v3 section 9")]))

func guardrailCodes(_ r: Result<JSON, RPCError>) -> [String] {
    guard case .success(let j) = r else { return [] }
    return (j.objectValue?["guardrail_reasons"]?.arrayValue ?? []).compactMap { $0.objectValue?["code"]?.stringValue }
}

/// Fleet mode through the real binary: three daemons on one real PostgreSQL (docs/fleet.md).
@Suite(.serialized)
struct FleetDaemonTests {
    @Test func aWithdrawalAcceptedByOneDaemonIsHonouredByTheOtherTwo() throws {
        let pg = try PostgresServer()
        let nodes = try (0..<3).map { _ in try FleetNode(store: pg).start() }
        let granted = try nodes[0].call("consent.grant", mlGrant)
        #expect(granted.isSuccess, "\(granted)")
        for n in nodes {
            #expect(try eventually { decisionOf(try n.call("decide", consentDependentRequest)) == "allow" })
        }
        let withdrawn = try nodes[1].call("consent.withdraw", mlConsent)
        #expect(withdrawn.isSuccess, "\(withdrawn)")
        for n in nodes {
            #expect(try eventually { guardrailCodes(try n.call("decide", consentDependentRequest)) == ["consent.withdrawn"] })
        }
        // Each change carries the audit reference of the daemon that accepted it, and that
        // daemon's log holds the entry under it.
        let rows = try pg.psql("SELECT seq || ' ' || op || ' ' || audit_decision_id || ' ' || audit_seq FROM custos_state_changes ORDER BY seq")
            .split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(rows.map { $0[0] } == ["1", "2"])
        #expect(rows.map { $0[1] } == ["consent.grant", "consent.withdraw"])
        let q = try nodes[1].custos(["audit", "query", "--state", nodes[1].state, "--decision-id", rows[1][2]])
        #expect(q.status == 0)
        let entry = try JSON.parse(Array(q.out.utf8))
        #expect(entry["method"]?.stringValue == "consent.withdraw")
        #expect(entry["seq"]?.intValue.map(String.init) == rows[1][3])
        #expect(entry["context"]?["store_seq"]?.intValue == 2)
        for n in nodes { n.stop() }
    }

    @Test func aStoppedStoreDeniesConsentDecisionsAfterMaxStalenessWhileOthersGoOnAndRefusesWrites() throws {
        let pg = try PostgresServer()
        let a = try FleetNode(store: pg, maxStalenessMs: 300).start()
        let b = try FleetNode(store: pg, maxStalenessMs: 300).start()
        #expect(try a.call("consent.grant", mlGrant).isSuccess)
        #expect(try eventually { decisionOf(try b.call("decide", consentDependentRequest)) == "allow" })
        let plain = try exampleRequest("allow-scientist-reads-own-study.json")
        pg.stop()
        for n in [a, b] {
            #expect(try eventually { guardrailCodes(try n.call("decide", consentDependentRequest)) == ["state.stale"] })
            // A decision that reads neither consent nor holds is not held up by the store.
            #expect(decisionOf(try n.call("decide", plain)) == "allow")
            let st = try #require(try n.storeState())
            #expect(st["stale"] == .bool(true))
            #expect(st["connected"] == .bool(false))
            #expect(try n.health()?.objectValue?["ready"] == .bool(true))
        }
        let refused = try a.call("consent.withdraw", mlConsent)
        #expect(errorCodeOf(refused) == -32003, "\(refused)")
        #expect(errorCodeOf(try b.call("hold.set", .object(JSONObject(["dataset": .string("onc301-de-clinical"),
            "matter": .string("LIT-1"), "reason": .string("claim")])))) == -32003)
        #expect(errorCodeOf(try b.call("consent.get", mlConsent)) == -32003)

        // Restarted: both catch up, and the change refused above was not made.
        try pg.start()
        for n in [a, b] {
            #expect(try eventually { decisionOf(try n.call("decide", consentDependentRequest)) == "allow" })
        }
        #expect(try pg.psql("SELECT count(*) FROM custos_state_changes") == "1")
        #expect(try a.call("consent.withdraw", mlConsent).isSuccess)
        #expect(try eventually { guardrailCodes(try b.call("decide", consentDependentRequest)) == ["consent.withdrawn"] })
        a.stop(); b.stop()
    }

    @Test func aRestartOfTheStoreWhileChangesAreWrittenLosesNoAcknowledgedChange() throws {
        let pg = try PostgresServer()
        let writer = try FleetNode(store: pg).start()
        let reader = try FleetNode(store: pg).start()
        let acked = LockedList()
        let stop = LockedFlag()
        let t = Thread {
            var i = 0
            while !stop.isSet {
                i += 1
                let params: JSON = .object(JSONObject(["dataset": .string("onc301-de-clinical"), "matter": .string("M-\(i)"),
                                                      "reason": .string("restart test")]))
                if case .success? = try? writer.call("hold.set", params) { acked.append("M-\(i)") }
            }
            stop.finish()
        }
        t.start()
        #expect(try eventually { acked.count >= 5 })
        pg.stop()
        try pg.start()
        let before = acked.count
        #expect(try eventually { acked.count >= before + 5 })
        stop.set()
        stop.waitFinished()
        let matters = Set(try pg.psql("SELECT change::json->>'matter' FROM custos_state_changes").split(separator: "\n").map(String.init))
        for m in acked.items { #expect(matters.contains(m), "acknowledged hold \(m) is missing from the store") }
        // The other daemon caught up with every change, across the restart.
        let rows = Int64(try pg.psql("SELECT count(*) FROM custos_state_changes"))
        #expect(try eventually { (try reader.storeState())?["seq"]?.intValue == rows })
        writer.stop(); reader.stop()
    }

    @Test func killMinus9OfADaemonWritingConsentAndHoldChangesKeepsEveryAcknowledgedChange() throws {
        let pg = try PostgresServer()
        let victim = try FleetNode(store: pg).start()
        let other = try FleetNode(store: pg).start()
        let acked = LockedList()
        let stop = LockedFlag()
        for w in 0..<3 {
            Thread.detachNewThread {
                var i = 0
                while !stop.isSet {
                    i += 1
                    // Consent grants and holds in turn: one write path, both kinds of change.
                    let key = "K-\(w)-\(i)"
                    let (method, params): (String, JSON) = i % 2 == 0
                        ? ("consent.grant", .object(JSONObject(["cohort": .string(key), "purpose": .string("secondary_research"),
                                                                 "evidence": .string("kill test")])))
                        : ("hold.set", .object(JSONObject(["dataset": .string("onc301-de-clinical"), "matter": .string(key),
                                                            "reason": .string("kill test")])))
                    guard let r = try? victim.call(method, params) else { break }
                    if case .success = r { acked.append(key) }
                }
                stop.finish()
            }
        }
        #expect(try eventually { acked.count >= 20 })
        victim.kill9()
        stop.set()
        for _ in 0..<3 { stop.waitFinished() }
        let keys = Set(try pg.psql("SELECT coalesce(change::json->>'matter', change::json->>'cohort') FROM custos_state_changes")
            .split(separator: "\n").map(String.init))
        #expect(acked.items.contains { $0.hasSuffix("-2") } && acked.items.contains { $0.hasSuffix("-1") }, "grants and holds were acknowledged")
        for k in acked.items { #expect(keys.contains(k), "acknowledged change \(k) is missing from the store") }
        // Every stored change names an audit entry that the killed daemon's log holds.
        let refs = try pg.psql("SELECT audit_decision_id FROM custos_state_changes ORDER BY seq").split(separator: "\n").map(String.init)
        try victim.start()
        for id in refs.prefix(3) + refs.suffix(3) {
            let q = try victim.custos(["audit", "query", "--state", victim.state, "--decision-id", id])
            #expect(q.out.contains("\"method\":\"hold.set\"") || q.out.contains("\"method\":\"consent.grant\""), "no audit entry \(id)")
        }
        let rows = Int64(try pg.psql("SELECT count(*) FROM custos_state_changes"))
        #expect(try eventually { (try other.storeState())?["seq"]?.intValue == rows })
        #expect(try eventually { (try victim.storeState())?["seq"]?.intValue == rows })
        victim.stop(); other.stop()
    }

    @Test func aLogRolledBackWithItsCheckpointsIsCaughtByTheWitnessAndTheDaemonRefusesToStart() throws {
        let pg = try PostgresServer()
        let node = try FleetNode(store: pg, witnessIntervalMs: 50).start()
        let plain = try exampleRequest("allow-scientist-reads-own-study.json")
        node.stop()
        // The attacker's copy of the folder, from before the decisions below.
        let saved = node.dir + "/saved-state"
        try FileManager.default.copyItem(atPath: node.state, toPath: saved)
        try node.start()
        for _ in 0..<20 { #expect(decisionOf(try node.call("decide", plain)) == "allow") }
        node.stop()
        let pubkey = node.dir + "/custos.pub"
        try FileManager.default.copyItem(atPath: node.state + "/audit/verifier.key", toPath: pubkey)
        let witnessed = try pg.psql("SELECT max(size) FROM custos_witness")
        #expect(Int(witnessed) ?? 0 >= 20)
        #expect(try node.custos(["audit", "verify", "--state", node.state, "--pubkey", pubkey, "--witness", pg.uri]).status == 0)

        // Roll the log and its checkpoints back together: locally consistent, so verify alone
        // passes; the witness shows it.
        try FileManager.default.removeItem(atPath: node.state)
        try FileManager.default.copyItem(atPath: saved, toPath: node.state)
        #expect(try node.custos(["audit", "verify", "--state", node.state, "--pubkey", pubkey]).status == 0)
        let v = try node.custos(["audit", "verify", "--state", node.state, "--pubkey", pubkey, "--witness", pg.uri])
        #expect(v.status == 6, "\(v)")
        #expect(v.out.contains("FAIL: truncated"))
        // Offline, from a dump of the witness table taken earlier.
        let dump = node.dir + "/witness.jsonl"
        let w = try node.custos(["audit", "witness", "--store", pg.uri])
        #expect(w.status == 0)
        try w.out.write(toFile: dump, atomically: true, encoding: .utf8)
        #expect(try node.custos(["audit", "verify", "--state", node.state, "--pubkey", pubkey, "--witness", dump]).status == 6)

        let p = try node.launch()
        p.waitUntilExit()
        #expect(p.terminationStatus == 2)
        #expect(node.stderrText().contains("does not extend what the state store witnessed"), "\(node.stderrText())")
        #expect(!FileManager.default.fileExists(atPath: node.socket))

        // Rewritten instead: the rolled-back log grown by other entries to the witnessed size,
        // signed with the stolen key: two histories of one size.
        let grown = Int(witnessed)! - (try JSON.parse(Array(try node.custos(["audit", "checkpoint", "--state", node.state]).out.split(separator: "\n")[1].utf8)).intValue.map(Int.init) ?? 0)
        try #require(grown > 0, "the saved copy is not behind the witness")
        #expect(try node.custos(["audit", "generate", "--state", node.state, "--entries", "\(grown)"]).status == 0)
        let f = try node.custos(["audit", "verify", "--state", node.state, "--pubkey", pubkey, "--witness", pg.uri])
        #expect(f.status == 10, "\(f)")
        #expect(f.out.contains("FAIL: forked"))
    }
}

final class LockedList: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func append(_ s: String) { lock.lock(); list.append(s); lock.unlock() }
    var count: Int { lock.lock(); defer { lock.unlock() }; return list.count }
    var items: [String] { lock.lock(); defer { lock.unlock() }; return list }
}

final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    private let finished = DispatchSemaphore(value: 0)
    func set() { lock.lock(); flag = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return flag }
    func finish() { finished.signal() }
    func waitFinished() { finished.wait() }
}

extension Result {
    var isSuccess: Bool { if case .success = self { true } else { false } }
}
