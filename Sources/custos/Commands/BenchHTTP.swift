import CustosJSON
import CustosServer
import Dispatch
import Foundation
import Glibc

/// `custos bench http`: the same decision through the HTTP front door's OPA data API and
/// through JSON-RPC, alternating rounds in one run, with the same clients and load.
extension BenchCommand {
    /// MinIO's input for what `defaultDecideParams` asks (with the gateway mapping of
    /// docs/gateways.md, "Measuring"): alice reads an object of onc301-de-clinical.
    static let defaultOPAInput = #"{"input":{"account":"alice","groups":null,"action":"s3:GetObject","bucket":"onc301","object":"de/clinical/visits.parquet","conditions":{"SourceIp":["127.0.0.1"],"SecureTransport":["false"]},"owner":false,"claims":{},"denyOnly":false}}"#

    static func runHTTP(_ args: ParsedArguments) throws -> Int32 {
        let clients = try args.int("clients", default: 4)
        let requests = try args.int("requests", default: 20_000)
        let rounds = try args.int("rounds", default: 5)
        guard clients > 0, requests > 0, rounds > 0 else { throw UsageError(message: "--clients, --requests and --rounds must be positive") }
        let socket = args.value("socket") ?? CallCommand.defaultSocket()
        guard let target = args.value("http") else { throw UsageError(message: "bench http needs --http PATH or --http 127.0.0.1:PORT (a listener of the front door)") }
        let dataPath = args.value("path") ?? "minio/authz"
        var input = defaultOPAInput
        if let f = args.value("input") { input = try IO.readText(f).trimmingCharacters(in: .whitespacesAndNewlines) }
        var params = defaultDecideParams
        if let f = args.value("request") {
            let text = try IO.readText(f)
            do { params = try JSON.parse(text).serialized } catch { throw UsageError(message: "\(f): not valid JSON (\(error))") }
        }
        let line = #"{"jsonrpc":"2.0","method":"decide","params":"# + params + #","id":1}"#
        let body = Array(input.utf8)
        let request = Array("POST /v1/data/\(dataPath) HTTP/1.1\r\nHost: custos\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body

        // Both paths must give the same decision, or the comparison says nothing.
        let rpcDecision: String
        switch try CallCommand.call("decide", params: try JSON.parse(params), socket: socket) {
        case .success(let r): rpcDecision = r.objectValue?["decision"]?.stringValue ?? "?"
        case .failure(let e): throw UsageError(message: "the daemon refused the JSON-RPC request: \(e.code) \(e.message)")
        }
        let probe = try HTTPLoad.connect(target)
        defer { close(probe) }
        let (status, reply) = try HTTPLoad.exchange(probe, request)
        let httpAllow = (try? JSON.parse(reply))?.objectValue?["result"] == .bool(true)
        print("JSON-RPC decide -> \(rpcDecision); HTTP POST /v1/data/\(dataPath) -> \(status) \(String(decoding: reply, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))")
        guard status == 200, (rpcDecision == "allow") == httpAllow else {
            throw UsageError(message: "the two paths do not give the same decision; check the gateway mapping and --input/--request")
        }
        print("load: \(clients) clients x \(requests) requests each, one in flight per connection, \(rounds) alternating rounds")
        // The daemon's pid from the kernel (SO_PEERCRED of a connection), for its CPU time.
        let pid = (try? RPCClient(path: socket)).flatMap { c in defer { c.close() }; return PeerCredentials.of(socket: c.fileDescriptor)?.pid }
        var rpc: [BenchResult] = []
        var http: [BenchResult] = []
        var rpcCPU: [Double] = []
        var httpCPU: [Double] = []
        for r in 0..<rounds {
            var o = BenchOptions(socketPath: socket, request: line)
            o.clients = clients
            o.requestsPerClient = requests
            let c0 = HTTPLoad.cpuMicros(pid)
            let a = try Bench.run(o)
            let c1 = HTTPLoad.cpuMicros(pid)
            let b = try HTTPLoad.run(target: target, request: request, clients: clients, requests: requests)
            let c2 = HTTPLoad.cpuMicros(pid)
            // Warm-up requests (200 per client) count in the CPU time too.
            let n = Double(clients * (requests + 200))
            rpcCPU.append((c1 - c0) / n)
            httpCPU.append((c2 - c1) / n)
            print("json-rpc \(a), daemon CPU \(String(format: "%.1f", rpcCPU.last!)) us/req  [\(r + 1)/\(rounds)]")
            print("http     \(b), daemon CPU \(String(format: "%.1f", httpCPU.last!)) us/req  [\(r + 1)/\(rounds)]")
            rpc.append(a)
            http.append(b)
        }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        func spread(_ xs: [Double]) -> String { "\(f(xs.min() ?? 0))-\(f(xs.max() ?? 0))" }
        let ratios = zip(http, rpc).map { $0.p50Micros / max($1.p50Micros, 0.001) }
        print("median json-rpc: \(f(median(rpc.map(\.requestsPerSecond)))) req/s, p50 \(f(median(rpc.map(\.p50Micros)))) us (spread \(spread(rpc.map(\.p50Micros)))), p99 \(f(median(rpc.map(\.p99Micros)))) us")
        print("median http:     \(f(median(http.map(\.requestsPerSecond)))) req/s, p50 \(f(median(http.map(\.p50Micros)))) us (spread \(spread(http.map(\.p50Micros)))), p99 \(f(median(http.map(\.p99Micros)))) us")
        print(String(format: "p50 http/json-rpc: median %.2fx (rounds: %@); throughput http/json-rpc %.0f%%",
                     median(ratios), ratios.map { String(format: "%.2f", $0) }.joined(separator: ", "),
                     100 * median(http.map(\.requestsPerSecond)) / max(median(rpc.map(\.requestsPerSecond)), 0.001)))
        if pid != nil {
            print("daemon CPU per request (median): json-rpc \(f(median(rpcCPU))) us, http \(f(median(httpCPU))) us")
        }
        return rpc.allSatisfy({ $0.errors == 0 }) && http.allSatisfy({ $0.errors == 0 }) ? 0 : 1
    }
}

/// A keep-alive HTTP/1.1 client for the benchmark only: it sends one fixed request and reads
/// replies framed by Content-Length (what libmicrohttpd sends for a buffer response).
enum HTTPLoad {
    /// utime + stime of a process in microseconds (fields 14 and 15 of /proc/PID/stat); 0 when unknown.
    static func cpuMicros(_ pid: Int32?) -> Double {
        guard let pid, let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return 0 }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command: state is field 3, so utime (14) and stime (15) are at 11 and 12.
        guard fields.count > 12, let u = Double(fields[11]), let s = Double(fields[12]) else { return 0 }
        return (u + s) * 1_000_000 / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func connect(_ target: String) throws -> Int32 {
        if target.hasPrefix("/") {
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(target.utf8)
            guard bytes.count < 108 else { throw UsageError(message: "\(target): socket path too long") }
            withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes); $0[bytes.count] = 0 }
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
            guard fd >= 0, rc == 0 else { close(fd); throw UsageError(message: "cannot connect to \(target): \(String(cString: strerror(errno)))") }
            return fd
        }
        guard let colon = target.lastIndex(of: ":"), let port = UInt16(target[target.index(after: colon)...]) else {
            throw UsageError(message: "--http expects a socket path or HOST:PORT, got \(target)")
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        guard inet_pton(AF_INET, String(target[..<colon]), &addr.sin_addr) == 1 else { throw UsageError(message: "--http: not an IPv4 address: \(target)") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard fd >= 0, rc == 0 else { close(fd); throw UsageError(message: "cannot connect to \(target): \(String(cString: strerror(errno)))") }
        return fd
    }

    /// Sends the request and reads one reply: status and body.
    static func exchange(_ fd: Int32, _ request: [UInt8]) throws -> (UInt32, [UInt8]) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var used = 0
        return try exchange(fd, request, &buffer, &used)
    }

    static func exchange(_ fd: Int32, _ request: [UInt8], _ buffer: inout [UInt8], _ used: inout Int,
                         keepBody: Bool = true) throws -> (UInt32, [UInt8]) {
        var off = 0
        while off < request.count {
            let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw UsageError(message: "send failed: \(String(cString: strerror(errno)))") }
            off += n
        }
        while true {
            if let end = headerEnd(buffer, used) {
                // Byte scanning, no strings: the client's own cost should not weigh on the figures.
                let status = used > 12 ? UInt32(buffer[9] &- 48) * 100 + UInt32(buffer[10] &- 48) * 10 + UInt32(buffer[11] &- 48) : 0
                let length = contentLength(buffer, end)
                let total = end + 4 + length
                if used >= total {
                    let body = keepBody ? Array(buffer[(end + 4)..<total]) : []
                    buffer.withUnsafeMutableBytes { b in _ = memmove(b.baseAddress!, b.baseAddress! + total, used - total) }
                    used -= total
                    return (status, body)
                }
            }
            if used == buffer.count { buffer += [UInt8](repeating: 0, count: buffer.count) }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + used, $0.count - used, 0) }
            guard n > 0 else { throw UsageError(message: "the front door closed the connection") }
            used += n
        }
    }

    /// The value of the Content-Length header (case-insensitive) in `b[0..<end]`, else 0.
    static func contentLength(_ b: [UInt8], _ end: Int) -> Int {
        let name = Array("content-length:".utf8)
        var i = 0
        while i + name.count < end {
            if b[i] == 10 {
                var j = 0
                while j < name.count && (b[i + 1 + j] | 0x20) == name[j] { j += 1 }
                if j == name.count {
                    var k = i + 1 + j
                    var v = 0
                    while k < end && b[k] == 32 { k += 1 }
                    while k < end && b[k] >= 48 && b[k] <= 57 { v = v * 10 + Int(b[k] - 48); k += 1 }
                    return v
                }
            }
            i += 1
        }
        return 0
    }

    static func headerEnd(_ b: [UInt8], _ used: Int) -> Int? {
        guard used >= 4 else { return nil }
        for i in 0...(used - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
        return nil
    }

    /// Like `Bench.run`: connections opened and warmed (`warmup` requests each) before the clock starts.
    static func run(target: String, request: [UInt8], clients: Int, requests: Int, warmup: Int = 200) throws -> BenchResult {
        final class Slot: @unchecked Sendable { var latencies: [UInt64] = []; var errors = 0; var failure: String? }
        let fds = try (0..<clients).map { _ in try connect(target) }
        defer { for fd in fds { close(fd) } }
        let slots = (0..<clients).map { _ in Slot() }
        let ready = DispatchSemaphore(value: 0), go = DispatchSemaphore(value: 0), done = DispatchGroup()
        for (fd, slot) in zip(fds, slots) {
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                var buffer = [UInt8](repeating: 0, count: 64 * 1024)
                var used = 0
                do {
                    for _ in 0..<warmup { _ = try exchange(fd, request, &buffer, &used) }
                    ready.signal()
                    go.wait()
                    slot.latencies.reserveCapacity(requests)
                    for _ in 0..<requests {
                        var ts = timespec()
                        clock_gettime(CLOCK_MONOTONIC, &ts)
                        let t0 = UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
                        let (status, _) = try exchange(fd, request, &buffer, &used, keepBody: false)
                        clock_gettime(CLOCK_MONOTONIC, &ts)
                        slot.latencies.append(UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec) - t0)
                        if status != 200 { slot.errors += 1 }
                    }
                } catch {
                    slot.failure = "\(error)"
                    ready.signal()
                }
            }
        }
        for _ in 0..<clients { ready.wait() }
        let start = Date()
        for _ in 0..<clients { go.signal() }
        done.wait()
        let secs = Date().timeIntervalSince(start)
        if let f = slots.first(where: { $0.failure != nil })?.failure { throw UsageError(message: "http load failed: \(f)") }
        var lat = slots.flatMap(\.latencies)
        lat.sort()
        func pct(_ p: Double) -> Double {
            guard !lat.isEmpty else { return 0 }
            return Double(lat[max(0, min(lat.count - 1, Int((Double(lat.count) * p).rounded(.up)) - 1))]) / 1000
        }
        return BenchResult(measured: lat.count, errors: slots.reduce(0) { $0 + $1.errors }, seconds: secs,
                           requestsPerSecond: secs > 0 ? Double(lat.count) / secs : 0,
                           p50Micros: pct(0.5), p99Micros: pct(0.99), p999Micros: pct(0.999), maxMicros: Double(lat.last ?? 0) / 1000)
    }
}
