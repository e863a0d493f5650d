import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

@Test func garbageLineIsAnsweredAndTheNextRequestOnTheSameConnectionStillWorks() throws {
    try withServer("garbage") { s in
        let c = try RPCClient(path: s.path)
        try c.send(line: "this is not json")
        try c.send(line: #"{"jsonrpc":"2.0","method":"add","params":{"a":1,"b":2},"id":1}"#)
        let first = try c.readJSON()
        let second = try c.readJSON()
        #expect(errorCode(first) == RPCError.parseErrorCode)
        #expect(first?["id"] == .null)
        #expect(second?["result"] == .int(3))
        #expect(second?["id"] == .int(1))
    }
}

@Test(arguments: [true, false])
func oversizeLineGetsAnErrorThenTheConnectionIsClosed(terminated: Bool) throws {
    try withServer("oversize", configure: { $0.maxLineBytes = 1024 }) { s in
        let c = try RPCClient(path: s.path)
        var line = [UInt8](repeating: UInt8(ascii: "a"), count: 5000)
        if terminated { line.append(0x0A) }
        let ok = line.withUnsafeBytes { send(c.fileDescriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == line.count
        #expect(ok)
        let r = try c.readJSON()
        #expect(errorCode(r) == RPCError.invalidRequestCode)
        #expect(r?["error"]?["message"]?.stringValue?.contains("1024") == true)
        #expect(try c.readLine() == nil)
        // The server itself is fine.
        #expect(try RPCClient(path: s.path).call("add", params: .object(JSONObject(["a": .int(1), "b": .int(1)]))) == .success(.int(2)))
    }
}

@Test func lineOfExactlyTheLimitIsAccepted() throws {
    try withServer("limit", configure: { $0.maxLineBytes = 200 }) { s in
        let c = try RPCClient(path: s.path)
        let head = #"{"jsonrpc":"2.0","method":"echo","params":[""#
        let tail = #""],"id":1}"#
        let pad = String(repeating: "p", count: 200 - head.utf8.count - tail.utf8.count)
        let r = try c.roundTrip(head + pad + tail)
        #expect(r?["result"] == .array([.string(pad)]))
    }
}

@Test func tenThousandRandomByteLinesThenAValidRequestIsAnsweredAndTheServerStaysUp() throws {
    try withServer("fuzz") { s in
        var rng = SeededRandom(state: 0x9E3779B97F4A7C15)
        var payload: [UInt8] = []
        for _ in 0..<10_000 {
            let len = Int.random(in: 0...80, using: &rng)
            for _ in 0..<len {
                var b = UInt8.random(in: 0...255, using: &rng)
                if b == 0x0A { b = 0x0B }
                payload.append(b)
            }
            payload.append(0x0A)
        }
        payload.append(contentsOf: Array(#"{"jsonrpc":"2.0","method":"add","params":{"a":20,"b":22},"id":"final"}"#.utf8))
        payload.append(0x0A)
        let c = try RPCClient(path: s.path)
        let fd = c.fileDescriptor
        let data = payload
        // Write from another thread: replies flow back while we are still sending.
        let writer = Thread { _ = data.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
        writer.start()
        var replies = 0
        var final: JSON?
        while let r = try c.readJSON() {
            if r["id"] == .string("final") { final = r; break }
            replies += 1
            let code = try #require(errorCode(r))
            #expect(code == RPCError.parseErrorCode || code == RPCError.invalidRequestCode)
        }
        #expect(final?["result"] == .int(42))
        #expect(replies > 9_000)
        #expect(try RPCClient(path: s.path).call("add", params: .object(JSONObject(["a": .int(1), "b": .int(2)]))) == .success(.int(3)))
    }
}

@Test func sixtyFourClientsPipeliningAThousandRequestsEachGetEveryAnswerInOrder() throws {
    try withServer("many") { s in
        let clients = 64
        let perClient = 1_000
        let failures = Mutex<[String]>([])
        let connected = Atomic<Int>(0)
        onThreads(clients) { k in
            do {
                let c = try RPCClient(path: s.path)
                connected.add(1, ordering: .relaxed)
                var out: [UInt8] = []
                for i in 0..<perClient {
                    out.append(contentsOf: Array(#"{"jsonrpc":"2.0","method":"add","params":{"a":\#(i),"b":\#(k * 1_000_000)},"id":"c\#(k)-\#(i)"}"#.utf8))
                    out.append(0x0A)
                }
                let fd = c.fileDescriptor
                let data = out
                let writer = Thread { _ = data.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
                writer.start()
                for i in 0..<perClient {
                    guard let r = try c.readJSON() else { throw ClientError.closedByServer }
                    guard r["id"] == .string("c\(k)-\(i)"), r["result"] == .int(Int64(i + k * 1_000_000)) else {
                        throw RPCError.internalError("client \(k) request \(i): unexpected reply \(r.serialized)")
                    }
                }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        #expect(connected.load(ordering: .relaxed) == clients)
    }
}

@Test func idleConnectionIsClosedAfterTheIdleTimeout() throws {
    // Long enough that a busy machine cannot make the first call itself look idle.
    try withServer("idle", configure: { $0.idleTimeout = .seconds(1) }) { s in
        let c = try RPCClient(path: s.path)
        #expect(try c.call("add", params: .object(JSONObject(["a": .int(1), "b": .int(1)]))) == .success(.int(2)))
        let t0 = ContinuousClock.now
        #expect(try c.readLine() == nil) // blocks until the server gives up on us
        #expect(ContinuousClock.now - t0 >= .milliseconds(500))
        #expect(eventually { s.server.activeConnections == 0 })
    }
}

@Test func clientThatNeverReadsIsDisconnectedAfterTheWriteTimeout() throws {
    try withServer("slow", configure: { $0.writeTimeout = .milliseconds(100) }) { s in
        let c = try RPCClient(path: s.path)
        _ = try c.call("whoami")
        #expect(s.server.activeConnections == 1)
        let blob = String(repeating: "z", count: 4096)
        var out: [UInt8] = []
        for i in 0..<1_000 {
            out.append(contentsOf: Array(#"{"jsonrpc":"2.0","method":"echo","params":[""#.utf8))
            out.append(contentsOf: Array(blob.utf8))
            out.append(contentsOf: Array(#""],"id":\#(i)}"#.utf8))
            out.append(0x0A)
        }
        let fd = c.fileDescriptor
        let data = out
        // Sends about 4 MB of requests and never reads the 4 MB of replies.
        let writer = Thread { _ = data.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
        writer.start()
        #expect(eventually { s.server.activeConnections == 0 })
        // Everyone else is still served.
        #expect(try RPCClient(path: s.path).call("add", params: .object(JSONObject(["a": .int(1), "b": .int(1)]))) == .success(.int(2)))
    }
}

@Test func threeHundredConnectionsAreServedAtOnce() throws {
    try withServer("wide") { s in
        var clients: [RPCClient] = []
        for i in 0..<300 {
            let c = try RPCClient(path: s.path)
            #expect(try c.call("add", params: .object(JSONObject(["a": .int(Int64(i)), "b": .int(1)]))) == .success(.int(Int64(i + 1))))
            clients.append(c)
        }
        #expect(s.server.activeConnections == 300)
        // The first connection is still live while all the others are open.
        #expect(try clients[0].call("whoami").get()["connection"] != nil)
    }
}

@Test func requestSentByteByByteWithCRLFIsAnswered() throws {
    try withServer("bytes") { s in
        let c = try RPCClient(path: s.path)
        let line = Array(#"{"jsonrpc":"2.0","method":"add","params":{"a":4,"b":5},"id":1}"#.utf8) + [0x0D, 0x0A]
        for b in line {
            var byte = b
            #expect(send(c.fileDescriptor, &byte, 1, Int32(MSG_NOSIGNAL)) == 1)
        }
        #expect(try c.readJSON()?["result"] == .int(9))
    }
}

@Test func requestLargerThanTheInitialReadBufferIsAnswered() throws {
    try withServer("large") { s in
        let c = try RPCClient(path: s.path)
        let big = String(repeating: "0123456789", count: 50_000)
        #expect(try c.call("echo", params: .array([.string(big)])) == .success(.array([.string(big)])))
        #expect(try c.call("add", params: .object(JSONObject(["a": .int(1), "b": .int(2)]))) == .success(.int(3)))
    }
}
