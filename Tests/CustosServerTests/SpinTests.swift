import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

/// A connection polls for its next request before it sleeps (`spinBeforeSleep`); whether a
/// request arrives during the poll, after it, in pieces, or never, it is answered in order.
@Suite struct SpinTests {
    @Test(arguments: [0, 50, 1000, 200_000])
    func aLoneConnectionIsAnsweredInOrderWhetherItPollsForItsNextRequestOrSleeps(spinMicros: Int) throws {
        try withServer("spin\(spinMicros)", configure: { $0.spinBeforeSleep = .microseconds(spinMicros) }) { t in
            let c = try RPCClient(path: t.path)
            #expect(try c.roundTrip(#"{"jsonrpc":"2.0","method":"add","params":{"a":1,"b":1},"id":1}"#)?["result"] == .int(2))
            // Sent at once: with 200 ms the connection is still polling, with 0 it sleeps in
            // read (the two paths the arguments pin down; 50 µs and 1 ms may take either).
            #expect(try c.roundTrip(#"{"jsonrpc":"2.0","method":"add","params":{"a":2,"b":2},"id":2}"#)?["result"] == .int(4))
            #expect(try c.roundTrip(#"{"jsonrpc":"2.0","method":"add","params":{"a":3,"b":3},"id":3}"#)?["result"] == .int(6))
            // A line in two writes: a partial line ends the poll, the rest is read as usual.
            try sendRaw(c, #"{"jsonrpc":"2.0","method":"add","#)
            try c.send(line: #""params":{"a":4,"b":4},"id":4}"#)
            #expect(try c.readJSON()?["result"] == .int(8))
            // Several lines in one write, answered in order.
            try sendRaw(c, #"{"jsonrpc":"2.0","method":"add","params":{"a":5,"b":5},"id":5}"# + "\n"
                       + #"{"jsonrpc":"2.0","method":"add","params":{"a":6,"b":6},"id":6}"# + "\n")
            #expect(try c.readJSON()?["id"] == .int(5))
            #expect(try c.readJSON()?["id"] == .int(6))
        }
    }

    @Test(arguments: [50, 200_000])
    func aClientThatClosesWhileItsConnectionPollsFreesItsSlot(spinMicros: Int) throws {
        try withServer("spinclose", configure: { $0.spinBeforeSleep = .microseconds(spinMicros) }) { t in
            for i in 0..<3 {
                let c = try RPCClient(path: t.path)
                #expect(try c.roundTrip(#"{"jsonrpc":"2.0","method":"add","params":{"a":1,"b":\#(i)},"id":1}"#)?["result"] == .int(Int64(1 + i)))
                c.close()
                #expect(eventually { t.server.activeConnections == 0 }, "round \(i)")
            }
        }
    }

    @Test func stoppingTheServerEndsAConnectionThatIsPolling() throws {
        let probe = Probe()
        let path = tempSocketPath("spinstop")
        var config = ServerConfiguration(socketPath: path)
        config.spinBeforeSleep = .seconds(30)  // polling for the whole test unless stop ends it
        let server = Server(configuration: config, dispatcher: try Dispatcher(methods: testMethods(probe)))
        try server.start()
        let c = try RPCClient(path: path)
        #expect(try c.roundTrip(#"{"jsonrpc":"2.0","method":"add","params":{"a":1,"b":1},"id":1}"#)?["result"] == .int(2))
        server.stop()
        #expect(server.activeConnections == 0)
        #expect(try c.readLine() == nil, "the connection was closed, not left polling")
    }
}

/// Writes bytes as they are (no LF added), in one write.
private func sendRaw(_ c: RPCClient, _ text: String) throws {
    let bytes = Array(text.utf8)
    let n = bytes.withUnsafeBytes { write(c.fileDescriptor, $0.baseAddress, $0.count) }
    try #require(n == bytes.count, "short write: \(n) of \(bytes.count)")
}
