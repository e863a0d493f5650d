import CustosJSON
import Dispatch
import CustosServer
import Glibc
import Synchronization
import Testing

/// Streaming handlers whose answers wait for a commit (the daemon's audit sync): the transport
/// commits once for every answer it is about to send, and if the commit fails, exactly the
/// answers that waited for it become errors.
@Suite struct CommitTests {
    /// A ledger standing in for the audit log: `record` queues, the barrier "syncs".
    final class Ledger: Sendable {
        let next = Atomic<UInt64>(0)
        let barrierCalls = Atomic<Int>(0)
        let highestCommitted = Atomic<UInt64>(0)
        let failing: Bool
        /// `gate` answers once the test signals this: until then the connection reads nothing more.
        let gate = DispatchSemaphore(value: 0)
        init(failing: Bool) { self.failing = failing }
    }

    static func methods(_ ledger: Ledger) -> MethodTable {
        var t = MethodTable()
        t.registerStreaming("record") { p, _, out, ticket throws(RPCError) in
            let n = ledger.next.add(1, ordering: .relaxed).oldValue
            ticket.require(n)
            out.raw("{\"entry\":")
            out.int(Int64(n))
            out.raw(",\"echo\":")
            out.value(p.json ?? .null)
            out.byte(UInt8(ascii: "}"))
        }
        t.registerStreaming("refuse") { _, _, out, _ throws(RPCError) in
            out.raw("{\"half\":")  // discarded: the answer is the error
            throw .invalidParams(field: "params", "always refused")
        }
        t.register("plain") { _, _ throws(RPCError) in .string("no commit needed") }
        t.register("gate") { _, _ throws(RPCError) in
            ledger.gate.wait()
            return .string("opened")
        }
        return t
    }

    static func withLedgerServer(_ tag: String, failing: Bool, _ body: (String, Ledger) throws -> Void) throws {
        let ledger = Ledger(failing: failing)
        let path = tempSocketPath(tag)
        let dispatcher = try Dispatcher(methods: methods(ledger), commit: { index throws(RPCError) in
            ledger.barrierCalls.add(1, ordering: .relaxed)
            if ledger.failing { throw .notReady("the ledger cannot sync") }
            while true {
                let h = ledger.highestCommitted.load(ordering: .relaxed)
                if h >= index || ledger.highestCommitted.compareExchange(expected: h, desired: index, ordering: .relaxed).exchanged { break }
            }
        })
        let server = Server(configuration: ServerConfiguration(socketPath: path), dispatcher: dispatcher)
        try server.start()
        defer { server.stop() }
        try body(path, ledger)
    }

    /// Sends every line in one write and reads `answers` replies (notifications get none).
    static func pipeline(_ c: RPCClient, _ lines: [String], answers: Int? = nil) throws -> [JSON] {
        try c.send(line: lines.joined(separator: "\n"))
        var out: [JSON] = []
        for _ in 0..<(answers ?? lines.count) { out.append(try #require(try c.readJSON())) }
        return out
    }

    @Test func pipelinedAnswersShareCommitsAndComeBackInOrder() throws {
        try Self.withLedgerServer("commit-share", failing: false) { path, ledger in
            let c = try RPCClient(path: path)
            // The first request holds the connection until every other line is in the socket,
            // so the transport finds the 63 `record`s in at most two reads (the one that brought
            // the gate, and the rest), whatever the scheduler does.
            let lines = [#"{"jsonrpc":"2.0","method":"gate","id":"gate"}"#]
                + (1..<64).map { #"{"jsonrpc":"2.0","method":"record","params":{"n":\#($0)},"id":\#($0)}"# }
            try c.send(line: lines.joined(separator: "\n"))
            ledger.gate.signal()
            var answers: [JSON] = []
            for _ in lines { answers.append(try #require(try c.readJSON())) }
            #expect(answers[0]["result"] == .string("opened"))
            for (i, a) in answers.enumerated().dropFirst() {
                #expect(a["id"] == .int(Int64(i)))
                #expect(a["result"]?["echo"]?["n"] == .int(Int64(i)))
            }
            // One commit per read of the connection, not one per request.
            #expect(ledger.barrierCalls.load(ordering: .relaxed) <= 2)
            #expect(ledger.highestCommitted.load(ordering: .relaxed) == 62)
        }
    }

    @Test func aFailedCommitTurnsExactlyTheWaitingAnswersIntoErrors() throws {
        try Self.withLedgerServer("commit-fail", failing: true) { path, _ in
            let c = try RPCClient(path: path)
            let answers = try Self.pipeline(c, [
                #"{"jsonrpc":"2.0","method":"record","params":{"n":1},"id":"a"}"#,
                #"{"jsonrpc":"2.0","method":"plain","id":"b"}"#,
                #"{"jsonrpc":"2.0","method":"record","id":"c"}"#,
                #"{"jsonrpc":"2.0","method":"record"}"#,
                #"[{"jsonrpc":"2.0","method":"plain","id":"d"},{"jsonrpc":"2.0","method":"record","id":"e"}]"#,
            ], answers: 4)
            #expect(answers.count == 4)
            #expect(answers[0]["id"] == .string("a"))
            #expect(answers[0]["error"]?["code"] == .int(RPCError.notReadyCode))
            #expect(answers[0]["result"] == nil)
            #expect(answers[1] == (try JSON.parse(#"{"jsonrpc":"2.0","result":"no commit needed","id":"b"}"#)))
            #expect(answers[2]["id"] == .string("c"))
            #expect(answers[2]["error"]?["message"] == .string("not ready: the ledger cannot sync"))
            // In a batch only the element that waited is replaced; the array stays well formed.
            guard case .array(let batch) = answers[3] else { Issue.record("expected a batch answer, got \(answers[3])"); return }
            #expect(batch.count == 2)
            #expect(batch[0]["result"] == .string("no commit needed"))
            #expect(batch[1]["id"] == .string("e"))
            #expect(batch[1]["error"]?["code"] == .int(RPCError.notReadyCode))
        }
    }

    @Test func aStreamingHandlerThatThrowsLeavesOnlyItsError() throws {
        try Self.withLedgerServer("commit-throw", failing: false) { path, _ in
            let c = try RPCClient(path: path)
            let answers = try Self.pipeline(c, [
                #"{"jsonrpc":"2.0","method":"refuse","id":1}"#,
                #"{"jsonrpc":"2.0","method":"record","params":["x"],"id":2}"#,
            ])
            #expect(answers[0] == (try JSON.parse(#"{"jsonrpc":"2.0","error":{"code":-32602,"message":"invalid params: params: always refused"},"id":1}"#)))
            #expect(answers[1]["result"]?["echo"] == .array([.string("x")]))
        }
    }

    @Test func anInProcessCallCommitsBeforeReturningAndReadsTheAnswerBack() throws {
        let ledger = Ledger(failing: false)
        let d = try Dispatcher(methods: Self.methods(ledger), commit: { index throws(RPCError) in
            ledger.barrierCalls.add(1, ordering: .relaxed)
            ledger.highestCommitted.store(index, ordering: .relaxed)
        })
        let ctx = CallContext(uid: 0, gid: 0, pid: 0, connectionID: 0)
        let r = try d.call("record", params: Params(.string("in-process")), context: ctx)
        #expect(r["echo"] == .string("in-process"))
        #expect(ledger.barrierCalls.load(ordering: .relaxed) == 1)
        let failing = Ledger(failing: true)
        let f = try Dispatcher(methods: Self.methods(failing), commit: { _ throws(RPCError) in throw .notReady("no sync") })
        #expect(throws: RPCError.self) { try f.call("record", params: Params(nil), context: ctx) }
    }
}
