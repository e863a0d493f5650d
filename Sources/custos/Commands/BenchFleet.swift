import CustosJSON
import CustosServer
import Foundation

extension BenchCommand {
    /// `custos bench fleet --socket A --socket B [--socket C ...]`: fleet mode's figures
    /// (docs/fleet.md, docs/benchmarks.md). Changes are written one at a time through the first
    /// daemon (a `hold.set` each, admin access needed); after each acknowledgement the others'
    /// `health` is polled until their `state.seq` reaches the change's number. Prints consent
    /// and hold writes per second, and the propagation delay (acknowledgement on the first
    /// daemon to visible on each other one) p50, p99 and max. Every poll is a round trip, so the
    /// delay includes up to one poll's latency.
    static func runFleet(_ args: ParsedArguments) throws -> Int32 {
        let sockets = args.all("socket")
        guard sockets.count >= 2 else { throw UsageError(message: "bench fleet needs two or more --socket, the first is written through") }
        let n = try args.int("changes", default: 1000)
        guard n > 0 else { throw UsageError(message: "--changes must be positive") }
        let dataset = args.value("dataset") ?? "onc301-de-feasibility"
        var clients: [RPCClient] = []
        for s in sockets {
            do { clients.append(try RPCClient(path: s)) } catch { throw UsageError(message: "\(s): \(error.description)") }
        }
        defer { for c in clients { c.close() } }
        func seq(_ c: RPCClient, _ socket: String) throws -> Int64 {
            let r: Result<JSON, RPCError>
            do { r = try c.call("health", params: nil) } catch { throw UsageError(message: "\(socket): \(error.description)") }
            guard case .success(let h) = r, let st = h.objectValue?["state"]?.objectValue,
                  st["store"]?.stringValue == "postgres", let v = st["seq"]?.intValue else {
                throw UsageError(message: "\(socket): health shows no shared state store (state.store in its --config)")
            }
            return v
        }
        for (c, s) in zip(clients, sockets) { _ = try seq(c, s) }
        let run = "BENCH-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        print("fleet: \(n) changes (hold.set on \(dataset)) through \(sockets[0]), propagation to \(sockets.count - 1) other daemon(s)")

        var writeNanos: [UInt64] = []
        var delays: [UInt64] = []
        writeNanos.reserveCapacity(n)
        delays.reserveCapacity(n * (sockets.count - 1))
        for i in 0..<n {
            let params = JSON.object(JSONObject(["dataset": .string(dataset), "matter": .string("\(run)-\(i)"),
                                                 "reason": .string("custos bench fleet")]))
            let t0 = monotonicNanos()
            let r: Result<JSON, RPCError>
            do { r = try clients[0].call("hold.set", params: params) } catch { throw UsageError(message: "\(sockets[0]): \(error.description)") }
            let acked = monotonicNanos()
            guard case .success = r else {
                if case .failure(let e) = r { throw UsageError(message: "hold.set refused: \(e.code) \(e.message)") }
                return 1
            }
            writeNanos.append(acked - t0)
            let target = try seq(clients[0], sockets[0])
            for k in 1..<clients.count {
                while try seq(clients[k], sockets[k]) < target {}
                delays.append(monotonicNanos() - acked)
            }
        }
        let total = writeNanos.reduce(0, +)
        func pct(_ xs: [UInt64], _ p: Double) -> Double {
            let s = xs.sorted()
            return Double(s[min(s.count - 1, Int(Double(s.count) * p))]) / 1e6
        }
        print(String(format: "  writes: %.0f changes/s (one writer, one at a time), ack p50 %.2f ms  p99 %.2f ms",
                     Double(n) / (Double(total) / 1e9), pct(writeNanos, 0.5), pct(writeNanos, 0.99)))
        print(String(format: "  propagation: p50 %.2f ms  p99 %.2f ms  max %.2f ms  (%d samples)",
                     pct(delays, 0.5), pct(delays, 0.99), pct(delays, 1.0), delays.count))
        return 0
    }
}
