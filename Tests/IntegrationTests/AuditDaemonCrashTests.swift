import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

/// kill -9 under load: nothing a client was told may be missing from the log, and the log must
/// verify after every restart (a torn final entry is cut, the tree continues).
@Suite struct AuditDaemonCrashTests {
    static let rounds = 20
    static let clients = 16

    /// Starts `custos serve` on `state` and waits until `health` says ready.
    static func start(state: String, socket: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: daemonCustosBinary)
        p.arguments = ["serve", "--policies", daemonExamplePolicies, "--state", state, "--socket", socket]
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        var exited = false
        let ready = eventually {
            exited = !p.isRunning
            return exited || answersHealth(socket, ready: true)
        }
        try #require(!exited, "custos serve exited with \(p.terminationStatus) on restart")
        if !ready { throw DaemonFailure(message: "custos serve did not become ready") }
        return p
    }

    @Test func twentyKillNineRoundsUnderSixteenClientsLoseNoAcknowledgedDecision() throws {
        try requireBinary()
        let dir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let state = dir + "/state"
        let socket = dir + "/custos.sock"
        var daemon = try Self.start(state: state, socket: socket)
        var acknowledged = Set<String>()
        for round in 0..<Self.rounds {
            let received = Mutex<[String]>([])
            let answered = Atomic<Int>(0)
            let group = DispatchGroup()
            for _ in 0..<Self.clients {
                group.enter()
                Thread.detachNewThread {
                    defer { group.leave() }
                    guard let c = try? RPCClient(path: socket, timeout: .seconds(60)) else { return }
                    defer { c.close() }
                    var mine: [String] = []
                    // Until the kill breaks the connection.
                    while case .success(let answer)? = try? c.call("decide", params: AuditDaemonTests.decideParams),
                          let id = answer.objectValue?["decision_id"]?.stringValue {
                        mine.append(id)
                        answered.add(1, ordering: .relaxed)
                    }
                    received.withLock { $0 += mine }
                }
            }
            // Kill after a given amount of work, varied by round, rather than after a given time:
            // the same test then means the same on a quiet and on a busy machine.
            let target = Self.clients * (2 + round % 4)
            #expect(eventually { answered.load(ordering: .relaxed) >= target }, "round \(round): the load did not start")
            kill(daemon.processIdentifier, SIGKILL)
            daemon.waitUntilExit()
            group.wait()
            let ids = received.withLock { $0 }
            #expect(!ids.isEmpty, "round \(round): no client got an answer")
            acknowledged.formUnion(ids)

            daemon = try Self.start(state: state, socket: socket)
            let v = try AuditDaemonTests.verify(state)
            #expect(v.status == 0, "round \(round): audit verify after restart: \(v.out) \(v.err)")
            let logged = Set(try AuditDaemonTests.query(state, ["--method", "decide"]).compactMap { $0["decision_id"]?.stringValue })
            let missing = acknowledged.subtracting(logged)
            #expect(missing.isEmpty, "round \(round): \(missing.count) acknowledged decisions are not in the log, e.g. \(missing.first ?? "")")
        }
        #expect(acknowledged.count >= Self.rounds * Self.clients * 2, "every round acknowledged its target")
        kill(daemon.processIdentifier, SIGTERM)
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0)
        let v = try AuditDaemonTests.verify(state)
        #expect(v.status == 0, "audit verify after the last clean stop: \(v.out) \(v.err)")
    }
}
