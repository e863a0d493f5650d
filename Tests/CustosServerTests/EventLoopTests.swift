import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

/// The event-driven transport: connections share a few loop threads, so what one connection
/// waits for (a client that does not read, a commit not yet synced) must not hold up the others,
/// and replies parked for a commit must keep their order and survive a graceful stop.
@Suite struct EventLoopTests {
    /// A commit the test completes by hand: the watch parks answers until `release`.
    final class Gate: Sendable {
        struct State {
            var open = false
            var wakers: [CommitWaker] = []
            var watched = 0
        }
        let state = Mutex(State())
        let next = Atomic<UInt64>(0)

        var watched: Int { state.withLock { $0.watched } }

        func release() {
            let wakers = state.withLock { s in
                s.open = true
                defer { s.wakers = [] }
                return s.wakers
            }
            for w in wakers { w.wake() }
        }
    }

    static func methods(_ gate: Gate) -> MethodTable {
        var t = MethodTable()
        t.registerStreaming("record") { p, _, out, ticket throws(RPCError) in
            ticket.require(gate.next.add(1, ordering: .relaxed).oldValue)
            out.raw("{\"echo\":")
            out.value(p.json ?? .null)
            out.byte(UInt8(ascii: "}"))
        }
        t.register("plain") { _, _ throws(RPCError) in .string("no commit needed") }
        return t
    }

    /// One loop, so every connection of the test shares it.
    static func withGateServer(_ tag: String, _ body: (Server, String, Gate) throws -> Void) throws {
        let gate = Gate()
        let path = tempSocketPath(tag)
        let dispatcher = try Dispatcher(methods: methods(gate), commit: { _ throws(RPCError) in
            // Only a batch flushing mid-line waits here; these tests send none.
            throw .internalError("the gate is only watched")
        }, watch: { _, waker throws(RPCError) in
            gate.state.withLock { s in
                if s.open { return true }
                s.watched += 1
                s.wakers.append(waker)
                return false
            }
        })
        var config = ServerConfiguration(socketPath: path)
        config.eventLoops = 1
        config.drainTimeout = .seconds(3600)  // the test, not a timer, decides when the commit ends
        let server = Server(configuration: config, dispatcher: dispatcher)
        try server.start()
        defer { server.stop() }
        try body(server, path, gate)
    }

    /// Bytes waiting to be read on a socket (FIONREAD).
    static func unread(_ fd: Int32) -> Int {
        var n: Int32 = 0
        return ioctl(fd, 0x541B, &n) == 0 ? Int(n) : -1
    }

    @Test func aClientThatDoesNotReadDoesNotStallTheOtherConnectionsOfItsLoop() throws {
        try withServer("stall", configure: { $0.eventLoops = 1; $0.writeTimeout = .seconds(3600) }) { s in
            let slow = try RPCClient(path: s.path)
            _ = try slow.call("whoami")
            var out: [UInt8] = []
            let blob = String(repeating: "z", count: 4096)
            for i in 0..<1_000 {
                out.append(contentsOf: Array(#"{"jsonrpc":"2.0","method":"echo","params":[""#.utf8))
                out.append(contentsOf: Array(blob.utf8))
                out.append(contentsOf: Array(#""],"id":\#(i)}"#.utf8))
                out.append(0x0A)
            }
            let fd = slow.fileDescriptor
            let data = out
            // About 4 MB of requests whose 4 MB of replies are never read: the server fills the
            // socket's buffer and then has replies it cannot write.
            let writer = Thread { _ = data.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
            writer.start()
            #expect(eventually { Self.unread(fd) >= 64 * 1024 })
            // The one loop still answers another connection, again and again.
            let other = try RPCClient(path: s.path)
            for i in 0..<20 {
                #expect(try other.call("add", params: .object(JSONObject(["a": .int(Int64(i)), "b": .int(1)]))) == .success(.int(Int64(i + 1))))
            }
            // The slow client is still connected: a write timeout, not a stall, would end it.
            #expect(s.server.activeConnections == 2)
            slow.close()
        }
    }

    @Test func repliesParkedForACommitKeepTheirOrderAndDoNotHoldUpTheLoop() throws {
        try Self.withGateServer("parked") { _, path, gate in
            let a = try RPCClient(path: path)
            try a.send(line: [
                #"{"jsonrpc":"2.0","method":"record","params":{"n":1},"id":1}"#,
                #"{"jsonrpc":"2.0","method":"plain","id":2}"#,
                #"{"jsonrpc":"2.0","method":"record","params":{"n":3},"id":3}"#,
            ].joined(separator: "\n"))
            #expect(eventually { gate.watched >= 1 })
            // The loop serves another connection while `a`'s replies wait for the commit.
            let b = try RPCClient(path: path)
            #expect(try b.call("plain") == .success(.string("no commit needed")))
            // Nothing of `a`'s has left: not even the reply that needed no commit, which would
            // otherwise overtake the parked one before it.
            #expect(Self.unread(a.fileDescriptor) == 0)
            gate.release()
            let answers = try (0..<3).map { _ in try #require(try a.readJSON()) }
            #expect(answers.map { $0["id"] } == [.int(1), .int(2), .int(3)])
            #expect(answers[0]["result"]?["echo"]?["n"] == .int(1))
            #expect(answers[1]["result"] == .string("no commit needed"))
            #expect(answers[2]["result"]?["echo"]?["n"] == .int(3))
        }
    }

    @Test func aGracefulStopWaitsForParkedRepliesAndSendsThem() throws {
        try Self.withGateServer("drain-parked") { server, path, gate in
            let a = try RPCClient(path: path)
            try a.send(line: #"{"jsonrpc":"2.0","method":"record","params":["kept"],"id":"last"}"#)
            #expect(eventually { gate.watched >= 1 })
            let stopped = Atomic<Bool>(false)
            let stopper = Thread {
                server.stop()
                stopped.store(true, ordering: .sequentiallyConsistent)
            }
            stopper.start()
            #expect(eventually { !fileExists(path) })
            let stoppedEarly = stopped.load(ordering: .sequentiallyConsistent)
            #expect(!stoppedEarly)
            gate.release()
            #expect(eventually { stopped.load(ordering: .sequentiallyConsistent) })
            let answer = try a.readJSON()
            #expect(answer?["id"] == .string("last"))
            #expect(answer?["result"]?["echo"] == .array([.string("kept")]))
            #expect(try a.readLine() == nil)
            #expect(server.activeConnections == 0)
        }
    }

    @Test func twoHundredFiftySixConnectionsWaitingTogetherAllGetTheirOwnAnswers() throws {
        try Self.withGateServer("wide-parked") { server, path, gate in
            var clients: [RPCClient] = []
            for _ in 0..<256 { clients.append(try RPCClient(path: path)) }
            // Every connection has a request in flight before any is answered.
            for (i, c) in clients.enumerated() {
                try c.send(line: #"{"jsonrpc":"2.0","method":"record","params":{"n":\#(i)},"id":\#(i)}"#)
            }
            #expect(eventually { gate.watched >= 1 })
            #expect(server.activeConnections == 256)
            gate.release()
            for (i, c) in clients.enumerated() {
                let a = try c.readJSON()
                #expect(a?["id"] == .int(Int64(i)))
                #expect(a?["result"]?["echo"]?["n"] == .int(Int64(i)))
            }
        }
    }

    @Test func connectionsAreSpreadOverSeveralLoopsAndAllServed() throws {
        try withServer("loops", configure: { $0.eventLoops = 3 }) { s in
            var clients: [RPCClient] = []
            for _ in 0..<256 { clients.append(try RPCClient(path: s.path)) }
            for (i, c) in clients.enumerated() {
                try c.send(line: #"{"jsonrpc":"2.0","method":"add","params":{"a":\#(i),"b":1000},"id":\#(i)}"#)
            }
            for (i, c) in clients.enumerated() {
                let a = try c.readJSON()
                #expect(a?["id"] == .int(Int64(i)))
                #expect(a?["result"] == .int(Int64(i + 1000)))
            }
            #expect(s.server.activeConnections == 256)
        }
    }
}
