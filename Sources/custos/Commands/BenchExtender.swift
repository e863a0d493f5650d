import CustosJSON
import CustosServer
import Foundation

extension BenchCommand {
    /// `custos bench extender --http A [--http B ...]`: the Kubernetes scheduler extender's
    /// `filter` (or `prioritize`) through the front door, one `ExtenderArgs` body POSTed over and
    /// over on one keep-alive connection per client. With several listeners (daemons of two
    /// builds, or with and without an audit log) the rounds alternate between them, so a noisy
    /// moment on a shared machine weighs on each alike; each listener's answer is checked to be
    /// the same bytes first, or the comparison would say nothing.
    static func runExtender(_ args: ParsedArguments) throws -> Int32 {
        let targets = args.all("http")
        guard !targets.isEmpty else { throw UsageError(message: "bench extender needs --http PATH or --http 127.0.0.1:PORT (a listener of the front door), repeated to compare") }
        let clients = try args.int("clients", default: 1)
        let requests = try args.int("requests", default: 300)
        let rounds = try args.int("rounds", default: 5)
        let warmup = try args.int("warmup", default: 50)
        guard clients > 0, requests > 0, rounds > 0, warmup >= 0 else { throw UsageError(message: "--clients, --requests and --rounds must be positive") }
        let verb = args.value("verb") ?? "filter"
        guard verb == "filter" || verb == "prioritize" else { throw UsageError(message: "--verb is filter or prioritize, got \(verb)") }
        let gateway = args.value("gateway") ?? "k8s"
        let file = args.value("input") ?? "Tests/SchedulerExtenderTests/Fixtures/filter-names-1000-args.json"
        let body = Array(try IO.readText(file).utf8)
        let request = Array("POST /scheduler/\(gateway)/\(verb) HTTP/1.1\r\nHost: custos\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body

        var first: [UInt8]? = nil
        for t in targets {
            let fd = try HTTPLoad.connect(t)
            defer { close(fd) }
            let (status, reply) = try HTTPLoad.exchange(fd, request)
            guard status == 200 else { throw UsageError(message: "\(t): POST /scheduler/\(gateway)/\(verb) answered \(status)") }
            let o = (try? JSON.parse(reply))
            if verb == "filter" {
                let error = o?.objectValue?["Error"]?.stringValue ?? "?"
                guard error.isEmpty else { throw UsageError(message: "\(t): the extender answered an error: \(error)") }
                let passed = o?.objectValue?["NodeNames"]?.arrayValue?.count ?? o?.objectValue?["Nodes"]?.objectValue?["items"]?.arrayValue?.count ?? 0
                let failed = o?.objectValue?["FailedAndUnresolvableNodes"]?.objectValue?.count ?? 0
                print("\(t): \(verb) -> \(passed) passed, \(failed) failed and unresolvable, \(reply.count) bytes")
            } else {
                print("\(t): \(verb) -> \(o?.arrayValue?.count ?? 0) scores, \(reply.count) bytes")
            }
            if let first, first != reply { throw UsageError(message: "\(t) answers other bytes than \(targets[0]); the comparison would say nothing") }
            first = reply
        }
        print("load: \(clients) client(s) x \(requests) requests (after \(warmup) warm-up each), \(body.count)-byte body, \(rounds) rounds alternating over \(targets.count) listener(s)")
        var results = Array(repeating: [BenchResult](), count: targets.count)
        for r in 0..<rounds {
            for (i, t) in targets.enumerated() {
                let b = try HTTPLoad.run(target: t, request: request, clients: clients, requests: requests, warmup: warmup)
                print("\(t) \(b)  [\(r + 1)/\(rounds)]")
                results[i].append(b)
            }
        }
        func ms(_ us: Double) -> String { String(format: "%.2f", us / 1000) }
        for (t, rs) in zip(targets, results) {
            let p50 = rs.map(\.p50Micros), p99 = rs.map(\.p99Micros)
            print("median \(t): p50 \(ms(median(p50))) ms (rounds \(ms(p50.min() ?? 0))-\(ms(p50.max() ?? 0))), p99 \(ms(median(p99))) ms (rounds \(ms(p99.min() ?? 0))-\(ms(p99.max() ?? 0)))")
        }
        return results.allSatisfy { $0.allSatisfy { $0.errors == 0 } } ? 0 : 1
    }
}
