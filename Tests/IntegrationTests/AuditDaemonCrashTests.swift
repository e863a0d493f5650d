import CustosJSON
import CustosServer
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
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            try #require(p.isRunning, "custos serve exited with \(p.terminationStatus) on restart")
            if let c = try? RPCClient(path: socket, timeout: .seconds(5)) {
                defer { c.close() }
                if case .success(let h)? = try? c.call("health"), h.objectValue?["ready"] == .bool(true) { return p }
            }
            usleep(10_000)
        }
        throw DaemonFailure(message: "custos serve was not ready within 15 s")
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
            let group = DispatchGroup()
            for _ in 0..<Self.clients {
                group.enter()
                Thread.detachNewThread {
                    defer { group.leave() }
                    guard let c = try? RPCClient(path: socket, timeout: .seconds(5)) else { return }
                    defer { c.close() }
                    var mine: [String] = []
                    // Until the kill breaks the connection.
                    while case .success(let answer)? = try? c.call("decide", params: AuditDaemonTests.decideParams),
                          let id = answer.objectValue?["decision_id"]?.stringValue {
                        mine.append(id)
                    }
                    received.withLock { $0 += mine }
                }
            }
            usleep(useconds_t(150_000 + (round % 4) * 50_000))
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
        #expect(acknowledged.count >= Self.rounds * Self.clients, "the load was too light to test anything")
        kill(daemon.processIdentifier, SIGTERM)
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0)
        let v = try AuditDaemonTests.verify(state)
        #expect(v.status == 0, "audit verify after the last clean stop: \(v.out) \(v.err)")
    }
}
