import CustosJSON
import Dispatch
import Glibc
import Synchronization

/// How to load a server.
public struct BenchOptions: Sendable {
    public var socketPath: String
    /// One thread and one connection per client.
    public var clients: Int = 1
    public var requestsPerClient: Int = 10_000
    /// 1 sends a request only after the previous answer; n keeps up to n requests in flight.
    public var pipelineDepth: Int = 1
    /// Unmeasured requests per client before timing starts (connection and caches warm).
    public var warmupPerClient: Int = 200
    /// The request line sent every time (LF added when missing).
    public var request: [UInt8]

    public init(socketPath: String, request: String) {
        self.socketPath = socketPath
        self.request = Array(request.utf8)
    }
}

/// Throughput and round-trip percentiles of one run.
public struct BenchResult: Sendable, CustomStringConvertible {
    public var requests: Int
    /// Replies that carried an "error" member.
    public var errors: Int
    public var seconds: Double
    public var requestsPerSecond: Double
    public var p50Micros: Double
    public var p99Micros: Double
    public var p999Micros: Double
    public var maxMicros: Double
    /// The server's context switches and CPU per request, when it runs on this machine in
    /// another process (read from /proc before and after the timed part).
    public var server: ServerUsage? = nil

    public var description: String {
        func f(_ v: Double, _ digits: Int) -> String {
            var s = String(Int(v.rounded(.down)))
            if digits > 0 {
                let frac = Int(((v - v.rounded(.down)) * Double(10 ^^ digits)).rounded())
                let fs = String(min(frac, 10 ^^ digits - 1))
                s += "." + String(repeating: "0", count: max(0, digits - fs.count)) + fs
            }
            return s
        }
        return "\(requests) requests in \(f(seconds, 3)) s: \(f(requestsPerSecond, 0)) req/s, "
            + "p50 \(f(p50Micros, 1)) us, p99 \(f(p99Micros, 1)) us, p999 \(f(p999Micros, 1)) us, "
            + "max \(f(maxMicros, 1)) us, errors \(errors)"
            + (server.map { ", server \(f($0.switchesPerRequest, 2)) ctx switches/req (\(f($0.voluntaryPerRequest, 2)) voluntary), \(f($0.cpuMicrosPerRequest, 1)) us CPU/req" } ?? "")
    }
}

infix operator ^^ : MultiplicationPrecedence
private func ^^ (base: Int, exp: Int) -> Int {
    var r = 1
    for _ in 0..<exp { r &*= base }
    return r
}

public enum Bench {
    /// Runs the load and returns the merged figures. Connections are opened (and warmed) before
    /// the clock starts, so throughput measures steady-state request handling.
    public static func run(_ options: BenchOptions) throws(ClientError) -> BenchResult {
        var line = options.request
        if line.last != 0x0A { line.append(0x0A) }
        let clients = max(1, options.clients)
        let perClient = max(1, options.requestsPerClient)
        let depth = max(1, options.pipelineDepth)

        var connections: [RPCClient] = []
        for _ in 0..<clients {
            connections.append(try RPCClient(path: options.socketPath, timeout: .seconds(30)))
        }

        let results = Mutex<[(latencies: [UInt64], errors: Int, failure: ClientError?)]>([])
        let ready = DispatchSemaphore(value: 0)
        let go = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        let request = line
        for c in connections {
            let client = UnsafeSend(c)
            done.enter()
            spawnThread {
                var outcome: (latencies: [UInt64], errors: Int, failure: ClientError?) = ([], 0, nil)
                do throws(ClientError) {
                    _ = try drive(client.value, request: request, count: options.warmupPerClient, depth: 1)
                    ready.signal()
                    go.wait()
                    outcome = try drive(client.value, request: request, count: perClient, depth: depth)
                } catch {
                    ready.signal()
                    outcome.failure = error
                }
                results.withLock { $0.append(outcome) }
                done.leave()
            }
        }
        // The server's own costs, when it is another process on this machine (its pid from
        // the socket's peer credentials).
        let serverPID = PeerCredentials.of(socket: connections[0].fileDescriptor).map(\.pid).flatMap { $0 > 0 && $0 != getpid() ? $0 : nil }
        for _ in 0..<clients { ready.wait() }
        let before = serverPID.flatMap { ProcessUsage.read(pid: $0) }
        let t0 = monotonicNanos()
        for _ in 0..<clients { go.signal() }
        done.wait()
        let t1 = monotonicNanos()
        let after = serverPID.flatMap { ProcessUsage.read(pid: $0) }
        for c in connections { c.close() }

        let all = results.withLock { $0 }
        if let failure = all.first(where: { $0.failure != nil })?.failure { throw failure }
        var lat: [UInt64] = []
        lat.reserveCapacity(clients * perClient)
        var errors = 0
        for r in all { lat.append(contentsOf: r.latencies); errors += r.errors }
        lat.sort()
        func pct(_ p: Double) -> Double {
            guard !lat.isEmpty else { return 0 }
            let i = min(lat.count - 1, Int((Double(lat.count) * p).rounded(.up)) - 1)
            return Double(lat[max(0, i)]) / 1000
        }
        let secs = Double(t1 - t0) / 1e9
        return BenchResult(requests: lat.count, errors: errors, seconds: secs,
                           requestsPerSecond: secs > 0 ? Double(lat.count) / secs : 0,
                           p50Micros: pct(0.50), p99Micros: pct(0.99), p999Micros: pct(0.999),
                           maxMicros: Double(lat.last ?? 0) / 1000,
                           server: serverPID.flatMap { pid in
                               before.flatMap { b in after.map { ServerUsage(pid: pid, before: b, after: $0, requests: lat.count) } }
                           })
    }

    /// Keeps up to `depth` requests in flight; each reply is matched to the oldest outstanding
    /// request, which is what the server's in-order guarantee allows.
    private static func drive(_ client: RPCClient, request: [UInt8], count: Int, depth: Int) throws(ClientError) -> (latencies: [UInt64], errors: Int, failure: ClientError?) {
        guard count > 0 else { return ([], 0, nil) }
        var sentAt = [UInt64](repeating: 0, count: count)
        var latencies = [UInt64](repeating: 0, count: count)
        var sent = 0
        var received = 0
        var errors = 0
        var burst: [UInt8] = []
        burst.reserveCapacity(request.count * min(depth, 64))
        let reader = client.reader
        while received < count {
            if sent < count && sent - received < depth {
                burst.removeAll(keepingCapacity: true)
                let now = monotonicNanos()
                while sent < count && sent - received < depth {
                    burst.append(contentsOf: request)
                    sentAt[sent] = now
                    sent += 1
                }
                let ok = burst.withUnsafeBytes { Socket.writeAll(client.fileDescriptor, $0) }
                if !ok { throw .io(call: "send", errno: errno) }
            }
            var got = false
            while !got {
                switch reader.next() {
                case .line(let l):
                    latencies[received] = monotonicNanos() &- sentAt[received]
                    if containsError(l) { errors += 1 }
                    received += 1
                    got = true
                case .oversize:
                    throw .lineTooLong(limit: reader.maxLine)
                case .needMore:
                    switch reader.fill() {
                    case .data: break
                    case .eof: throw .closedByServer
                    case .timedOut: throw .timedOut
                    case .failed(let e): throw .io(call: "read", errno: e)
                    }
                }
            }
        }
        return (latencies, errors, nil)
    }

    private static func containsError(_ l: UnsafeRawBufferPointer) -> Bool {
        let pat: [UInt8] = Array("\"error\"".utf8)
        guard l.count >= pat.count else { return false }
        var i = 0
        while i <= l.count - pat.count {
            if l[i] == pat[0] {
                var j = 1
                while j < pat.count && l[i + j] == pat[j] { j += 1 }
                if j == pat.count { return true }
            }
            i += 1
        }
        return false
    }
}

/// Hands a client to exactly one benchmark thread; it is never used by two threads at once.
private struct UnsafeSend<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
