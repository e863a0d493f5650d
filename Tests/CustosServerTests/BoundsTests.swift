import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

/// What one client can make the server hold or do (docs/security.md, "Limits"): batch arrays
/// count against the batch limit, replies of a long batch leave as they are made, a line must
/// be completed in time, and connection slots are shared out per uid with some kept for the
/// privileged.
@Suite struct BoundsTests {
    static func request(_ method: String, _ params: String? = nil, id: Int) -> String {
        #"{"jsonrpc":"2.0","method":"\#(method)""# + (params.map { #","params":\#($0)"# } ?? "") + #","id":\#(id)}"#
    }

    /// Before: 4,112 decides in one line were decided and audited whatever the batch limit.
    @Test func aBatchArrayOverTheBatchLimitIsRefusedWholeBeforeAnyRequestRuns() throws {
        try withServer("batchcap", configure: { $0.batchLimit = 3 }) { s in
            let c = try RPCClient(path: s.path)
            let four = "[" + (1...4).map { Self.request("count", id: $0) }.joined(separator: ",") + "]"
            let r = try #require(try c.roundTrip(four))
            #expect(errorCode(r) == RPCError.overloadedCode)
            #expect(r["id"] == .null)
            #expect(r["error"]?["data"] == .object(JSONObject(["limit": .int(3), "requests": .int(4)])))
            #expect(s.probe.calls.load(ordering: .relaxed) == 0)
            let three = "[" + (1...3).map { Self.request("count", id: $0) }.joined(separator: ",") + "]"
            #expect(try c.roundTrip(three)?.arrayValue?.count == 3)
            #expect(s.probe.calls.load(ordering: .relaxed) == 3)
        }
    }

    /// Before: a 1 MiB line `[1,1,...]` was answered with 56.6 MB of errors, built in memory.
    @Test func aLineOfHalfAMillionNumbersGetsOneShortError() throws {
        try withServer("amplify", configure: { $0.batchLimit = 1_000 }) { s in
            let c = try RPCClient(path: s.path)
            let line = "[" + Array(repeating: "1", count: 500_000).joined(separator: ",") + "]"
            let reply = try #require(try c.readLineAfterSending(line))
            #expect(reply.count < 300, "a \(reply.count)-byte reply")
            let r = try JSON.parse(reply)
            #expect(errorCode(r) == RPCError.overloadedCode)
            #expect(r["error"]?["data"]?["requests"] == .int(500_000))
        }
    }

    /// The count is of elements, not of commas: commas in strings and nested values are not
    /// separators.
    @Test func commasInsideStringsAndNestedValuesDoNotCountAsBatchElements() throws {
        try withServer("commas", configure: { $0.batchLimit = 2 }) { s in
            let c = try RPCClient(path: s.path)
            let two = "[" + Self.request("echo", #"[",,,\",\\",{"a":[1,2,3],"b":","}]"#, id: 1) + " , "
                + Self.request("echo", #"[[",",","],[],{}]"#, id: 2) + "]"
            let r = try #require(try c.roundTrip(two)?.arrayValue)
            #expect(r.map { $0["id"] } == [.int(1), .int(2)])
            #expect(r[0]["result"] == .array([.string(#",,,",\"#), .object(JSONObject(["a": .array([.int(1), .int(2), .int(3)]), "b": .string(",")]))]))
        }
    }

    /// A call that carries several requests (decide.batch) counts for all of them.
    @Test func aWeightedCallCountsForItsRequestsInABatchArray() throws {
        try withServer("weights", configure: { $0.batchLimit = 3 }) { s in
            let c = try RPCClient(path: s.path)
            let over = "[" + Self.request("multi", #"{"n":2}"#, id: 1) + "," + Self.request("multi", #"{"n":2}"#, id: 2) + "]"
            let r = try #require(try c.roundTrip(over))
            #expect(r["error"]?["data"]?["requests"] == .int(4))
            #expect(s.probe.calls.load(ordering: .relaxed) == 0)
            let fits = "[" + Self.request("multi", #"{"n":2}"#, id: 1) + "," + Self.request("count", id: 2) + "]"
            #expect(try c.roundTrip(fits)?.arrayValue?.count == 2)
        }
    }

    /// A long batch does not build its whole reply first: what it has answered leaves while the
    /// rest is still running, so a client that does not read blocks the batch instead of making
    /// the server hold its replies.
    @Test func aLongBatchSendsWhatItHasAnsweredWhileTheRestIsStillRunning() throws {
        try withServer("stream") { s in
            defer { s.probe.release.signal() }
            let c = try RPCClient(path: s.path, timeout: .seconds(60))
            let blob = String(repeating: "b", count: 4_000)
            // About 320 KB of replies, more than the flush threshold, before `hold`.
            let items = (1...80).map { Self.request("echo", #"["\#(blob)"]"#, id: $0) } + [Self.request("hold", id: 81)]
            try c.send(line: "[" + items.joined(separator: ",") + "]")
            // `hold` cannot return before it is released below, so whatever arrives now was
            // sent while the batch was still running.
            var first = [UInt8](repeating: 0, count: 1)
            let n = recv(c.fileDescriptor, &first, 1, 0)
            #expect(n == 1 && first[0] == UInt8(ascii: "["), "nothing of the batch arrived while it was running")
            let returned = s.probe.holdReturned.load(ordering: .sequentiallyConsistent)
            #expect(!returned)
            s.probe.release.signal()
            let rest = try #require(try c.readLine())
            #expect(rest.count > 300_000)
        }
    }

    /// Before: a client writing a byte a second held its slot for as long as it liked, since
    /// each byte restarted the idle timeout.
    @Test func aLineThatTricklesInIsCutAtTheLineTimeoutWithAnError() throws {
        try withServer("trickle", configure: { $0.lineTimeout = .seconds(1); $0.idleTimeout = .seconds(60) }) { s in
            let c = try RPCClient(path: s.path)
            var wait = timeval(tv_sec: 0, tv_usec: 100_000)
            setsockopt(c.fileDescriptor, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
            let start = ContinuousClock.now
            var reply: [UInt8] = []
            var sent = 0
            // One byte, then up to 100 ms for the server to say something; for at most ~60 s.
            while sent < 600 && !reply.contains(0x0A) {
                var b = UInt8(ascii: "x")
                guard send(c.fileDescriptor, &b, 1, Int32(MSG_NOSIGNAL)) == 1 else { break }
                sent += 1
                var buf = [UInt8](repeating: 0, count: 512)
                let n = recv(c.fileDescriptor, &buf, buf.count, 0)
                if n > 0 { reply += buf[..<n] }
            }
            let r = try JSON.parse(Array(reply.prefix { $0 != 0x0A }))
            #expect(errorCode(r) == RPCError.invalidRequestCode)
            #expect(r["error"]?["message"]?.stringValue?.contains("not completed within 1 seconds") == true, "\(r)")
            #expect(ContinuousClock.now - start >= .seconds(1))
            #expect(eventually { s.server.activeConnections == 0 })
        }
    }

    /// Between lines only the idle timeout applies: a connection that is quiet after a whole
    /// line is closed by the idle timeout, silently, not by the (shorter) line timeout.
    @Test func aQuietConnectionBetweenLinesIsClosedByTheIdleTimeoutNotTheLineTimeout() throws {
        try withServer("between", configure: { $0.lineTimeout = .seconds(1); $0.idleTimeout = .seconds(3) }) { s in
            let c = try RPCClient(path: s.path, timeout: .seconds(60))
            #expect(try c.call("add", params: .object(JSONObject(["a": .int(1), "b": .int(1)]))) == .success(.int(2)))
            let start = ContinuousClock.now
            #expect(try c.readLine() == nil)
            #expect(ContinuousClock.now - start >= .milliseconds(2_500))
        }
    }

    @Test func aUidOverItsConnectionShareIsRefusedAndAdmittedAgainOnceOneCloses() throws {
        try withServer("peruid", configure: { $0.maxConnectionsPerUID = 3 }) { s in
            var held: [RPCClient] = []
            for _ in 0..<3 {
                let c = try RPCClient(path: s.path)
                _ = try c.call("whoami").get()
                held.append(c)
            }
            let fourth = try RPCClient(path: s.path)
            let r = try JSON.parse(try #require(try fourth.readLine()))
            #expect(errorCode(r) == RPCError.overloadedCode)
            #expect(r["error"]?["message"]?.stringValue?.contains("uid \(getuid()) already has 3 connections") == true, "\(r)")
            #expect(r["error"]?["data"]?["limit"] == .int(3))
            #expect(try fourth.readLine() == nil)
            held.removeFirst().close()
            #expect(eventually { (try? RPCClient(path: s.path).call("whoami").get()) != nil })
        }
    }

    /// The last slots are for privileged callers (the daemon's admin), so they can reach a
    /// server that everyone else has filled.
    @Test func privilegedCallersTakeTheReservedSlotsWhenEveryOtherSlotIsHeld() throws {
        let privileged = Flag()
        try withServer("reserve", configure: {
            $0.maxConnections = 5
            $0.reservedConnections = 2
            $0.isPrivileged = { _ in privileged.on.load(ordering: .sequentiallyConsistent) }
        }) { s in
            var held: [RPCClient] = []
            for _ in 0..<3 { held.append(try #require(try Self.admitted(s.path))) }
            // Three held: the two left are reserved.
            let refused = try RPCClient(path: s.path)
            let r = try JSON.parse(try #require(try refused.readLine()))
            #expect(errorCode(r) == RPCError.overloadedCode)
            privileged.on.store(true, ordering: .sequentiallyConsistent)
            held.append(try #require(try Self.admitted(s.path)))
            held.append(try #require(try Self.admitted(s.path)))
            // Five held: not even a privileged caller gets a sixth.
            #expect(try Self.admitted(s.path) == nil)
            #expect(held.count == 5)
        }
    }

    @Test func privilegedCallersHaveNoPerUIDShare() throws {
        let privileged = Flag()
        privileged.on.store(true, ordering: .sequentiallyConsistent)
        try withServer("exempt", configure: {
            $0.maxConnectionsPerUID = 1
            $0.isPrivileged = { _ in privileged.on.load(ordering: .sequentiallyConsistent) }
        }) { s in
            let held = try (0..<3).map { _ in try #require(try Self.admitted(s.path)) }
            #expect(held.count == 3)
            privileged.on.store(false, ordering: .sequentiallyConsistent)
            #expect(try Self.admitted(s.path) == nil)
            withExtendedLifetime(held) {}
        }
    }

    final class Flag: Sendable { let on = Atomic<Bool>(false) }

    /// A connection the server admitted (it answered), or nil when it was refused.
    static func admitted(_ path: String) throws -> RPCClient? {
        let c = try RPCClient(path: path)
        return (try? c.call("whoami").get()) != nil ? c : nil
    }
}

extension RPCClient {
    /// Sends a line from another thread (it may be larger than the socket buffers) and reads
    /// the first reply line.
    func readLineAfterSending(_ line: String) throws -> [UInt8]? {
        let fd = fileDescriptor
        let bytes = Array((line + "\n").utf8)
        let writer = Thread { _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
        writer.start()
        return try readLine()
    }
}
