import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Testing

/// Structure-aware fuzzing of the real daemon: every documented example call, mutated.
///
/// Random bytes (ProtocolTests, RobustnessTests) mostly stop at the JSON parser. These requests
/// are valid JSON-RPC far more often, so they reach each method's parameter reading, the Cedar
/// entity and value parsing, the guardrails, the node inventory and the audit log: values
/// swapped for other kinds, extreme numbers, odd Unicode, long strings, nesting at and beyond
/// the reader's depth limit, members removed and added, and a share of lines with bytes
/// flipped. After each request the client sends a `health` probe on the same connection, so
/// every request must be answered (at most one reply before the probe's), the connection must
/// stay open, and the daemon must still be running at the end. The seed is fixed so that a
/// failure replays; the message carries the request. For a longer hunt, set
/// `CUSTOS_FUZZ_REQUESTS` and `CUSTOS_FUZZ_SEED` (docs/contributing.md).
@Suite struct MutationFuzzTests {
    static let environment = ProcessInfo.processInfo.environment
    static let requests = environment["CUSTOS_FUZZ_REQUESTS"].flatMap { Int($0) } ?? 3_000
    static let seed: UInt64 = environment["CUSTOS_FUZZ_SEED"].flatMap { UInt64($0) }.map { max($0, 1) } ?? 0x6375_7374_6f73_0001

    /// `custos call METHOD '{...}'` lines of docs/*.md, the `json call=METHOD` blocks of
    /// docs/protocol.md and the example requests of policies/requests.
    static func examples() throws -> [(method: String, params: JSON)] {
        var out: [(String, JSON)] = []
        let docs = daemonRepoRoot + "/docs"
        let inline = try NSRegularExpression(pattern: #"custos call ([a-z._]+) '(\{.*?\})'"#)
        let block = try NSRegularExpression(pattern: #"```json call=([a-z._]+)[^\n]*\n(.*?)```"#, options: .dotMatchesLineSeparators)
        for name in try FileManager.default.contentsOfDirectory(atPath: docs) where name.hasSuffix(".md") {
            let text = try String(contentsOfFile: docs + "/" + name, encoding: .utf8)
            let ns = text as NSString
            for re in [inline, block] {
                for m in re.matches(in: text, range: NSRange(location: 0, length: ns.length)) {
                    let params = ns.substring(with: m.range(at: 2))
                    // Blocks with several values (one per line) or placeholders are not one call.
                    guard let value = try? JSON.parse(Array(params.utf8)), value.objectValue != nil else { continue }
                    out.append((ns.substring(with: m.range(at: 1)), value))
                }
            }
        }
        let requests = daemonExamplePolicies + "/requests"
        for name in try FileManager.default.contentsOfDirectory(atPath: requests).sorted() {
            out.append(("decide", try exampleRequest(name)))
        }
        return out
    }

    @Test func mutatedExampleCallsOfEveryDocumentedMethodAreEachAnsweredAndTheDaemonStaysUp() throws {
        let seeds = try Self.examples()
        let methods = Set(seeds.map(\.method))
        for m in ["decide", "place", "transfer", "nodes.sync", "consent.grant", "hold.set", "audit.query"] {
            #expect(methods.contains(m), "no documented example of \(m) to mutate (docs changed?)")
        }
        let d = try TestDaemon().start()
        var fuzz = Mutator(rng: SeededRandom(state: Self.seed), seeds: seeds)
        let c = try d.client()
        defer { c.close() }
        var tally: [String: Int] = [:]
        for i in 0..<Self.requests {
            var line = fuzz.requestLine(id: i)
            line += Array(#"{"jsonrpc":"2.0","id":"probe","method":"health"}"#.utf8)
            line.append(0x0A)
            try c.send(line: line)
            var replies = 0
            var probed = false
            while !probed {
                guard let reply = try c.readLine() else {
                    Issue.record("the daemon closed the connection after request \(i) (seed \(Self.seed)): \(fuzz.lastText)")
                    return
                }
                let value = try JSON.parse(reply)
                if let batch = value.arrayValue {
                    tally["batch", default: 0] += 1
                    replies += 1
                    #expect(batch.allSatisfy { (try? RPCResponse.decode($0)) != nil }, "request \(i): \(fuzz.lastText)")
                    continue
                }
                let r = try RPCResponse.decode(value)
                if r.id == .string("probe") {
                    #expect((try? r.outcome.get()) != nil, "health failed after request \(i): \(fuzz.lastText)")
                    probed = true
                } else {
                    replies += 1
                    switch r.outcome {
                    case .success: tally["ok", default: 0] += 1
                    case .failure(let e): tally["\(e.code)", default: 0] += 1
                    }
                }
            }
            #expect(replies <= 1, "request \(i) got \(replies) replies: \(fuzz.lastText)")
        }
        #expect(d.process.isRunning)
        print("MutationFuzzTests: \(Self.requests) requests, seed \(Self.seed): \(tally.sorted { $0.value > $1.value })")
        // The mutations reach past the parser: calls succeed, and parameters are refused.
        #expect(tally["ok", default: 0] > Self.requests / 20, "\(tally)")
        #expect(tally["\(RPCError.invalidParamsCode)", default: 0] > Self.requests / 20, "\(tally)")
        let health = try #require(try d.call("health").get().objectValue)
        #expect(health["ready"] == .bool(true))
    }
}

/// Mutations of JSON values and request lines, from a seeded generator (`SeededRandom`).
struct Mutator {
    var rng: SeededRandom
    let seeds: [(method: String, params: JSON)]
    /// The last request line, for failure messages (cut to a readable length).
    private(set) var lastText = ""

    static let methods = ["decide", "decide.batch", "place", "transfer", "health", "metrics", "policy.status",
                          "audit.query", "audit.checkpoint", "consent.grant", "consent.withdraw", "consent.get", "hold.set",
                          "hold.release", "retention.status", "retention.due", "nodes.sync", "nodes.remove", "nodes.list",
                          "nodes.status", "no.such.method", ""]
    static let words = ["", "User", "Action", "Dataset", "alice", "carol", "read", "eu-central-1", "us-west-2",
                        "primary_research", "ml_model_training", "onc301-de-clinical", "onc301-de", "ONC-301", "fra-h100-01",
                        "User::\"alice\"", "Role::\"x\"", "::", "\"", "\\", "2026-01-01T00:00:00Z", "2026-02-30", "9999-99-99",
                        "-1", "1e400", "ip(\"10.0.0.1\")", "decimal(\"1.0\")", "sha256:", "*", "../../etc/passwd"]
    static let scalars: [UInt32] = [0, 1, 0x1F, 0x7F, 0x41, 0xE9, 0x301, 0x2028, 0xFEFF, 0xFFFD, 0x1F600, 0x10FFFF]

    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
    mutating func pick<T>(_ xs: [T]) -> T { xs[Int.random(in: 0..<xs.count, using: &rng)] }

    mutating func string() -> String {
        switch Int.random(in: 0..<10, using: &rng) {
        case 0: return String(repeating: "x", count: pick([300, 5_000, 70_000]))
        case 1, 2:
            var s = ""
            for _ in 0..<Int.random(in: 1...8, using: &rng) { s.unicodeScalars.append(Unicode.Scalar(pick(Self.scalars))!) }
            return s
        default: return pick(Self.words)
        }
    }

    /// A value of any kind; deep nesting is a marker that `requestLine` replaces with brackets.
    mutating func value(depth: Int = 0) -> JSON {
        switch Int.random(in: 0..<20, using: &rng) {
        case 0..<3: return pick([.null, .bool(true), .bool(false), .int(0), .int(-1), .int(.max), .int(.min),
                                 .double(1e308), .double(-0.0), .double(1.5), .double(4e-320)])
        case 3..<9: return .string(string())
        case 9..<12 where depth < 3: return .array((0..<Int.random(in: 0...4, using: &rng)).map { _ in value(depth: depth + 1) })
        case 12: return .string("\u{1}deep:\(pick([10, 60, 63, 64, 65, 200, 5_000]))")
        case 13..<16 where depth < 3:
            var o = JSONObject()
            for _ in 0..<Int.random(in: 0...4, using: &rng) { o.append(string(), value(depth: depth + 1)) }
            return .object(o)
        default: return .string(pick(Self.words))
        }
    }

    mutating func mutate(_ v: JSON, depth: Int = 0) -> JSON {
        switch v {
        case .object(let o):
            var out = JSONObject()
            for m in o.members {
                let r = Double.random(in: 0..<1, using: &rng)
                if r < 0.1 { continue }
                out.append(m.key, r < 0.25 ? value() : r < 0.6 ? mutate(m.value, depth: depth + 1) : m.value)
            }
            // A new member; an existing key now and then, which the daemon must refuse (-32700).
            if chance(0.1) { out.append(chance(0.5) || o.isEmpty ? string() : pick(o.keys), value()) }
            return .object(out)
        case .array(let a):
            var out = a.map { chance(0.5) ? mutate($0, depth: depth + 1) : $0 }
            if chance(0.1), let first = out.first { out.append(first) }
            if chance(0.1) { out.append(value()) }
            if chance(0.05), out.count < 8 { out = Array(repeating: out, count: pick([10, 300])).flatMap { $0 } }
            return .array(out)
        default:
            return chance(0.3) ? value() : v
        }
    }

    /// One request line (ending in LF) under the daemon's line limit (1 MiB; a longer line
    /// closes the connection, as documented): a mutated example, sometimes of another method,
    /// sometimes a batch, sometimes with bytes flipped, deleted or inserted.
    mutating func requestLine(id: Int) -> [UInt8] {
        while true {
            let line = anyRequestLine(id: id)
            if line.count < 1 << 20 { return line }
        }
    }

    private mutating func anyRequestLine(id: Int) -> [UInt8] {
        let (seedMethod, params) = pick(seeds)
        let method = chance(0.15) ? pick(Self.methods) : seedMethod
        let request = JSONObject(["jsonrpc": .string("2.0"), "id": .int(Int64(id)), "method": .string(method),
                                  "params": chance(0.9) ? mutate(params) : value()])
        var v = JSON.object(request)
        if chance(0.03) { v = .array((0..<Int.random(in: 0...20, using: &rng)).map { _ in .object(request) }) }
        var text = v.serialized
        // Deep nesting, at and around the reader's limit (64) and far beyond it.
        while let r = text.range(of: #""\u0001deep:"#) {
            let end = text[r.upperBound...].firstIndex(of: "\"")!
            let n = Int(text[r.upperBound..<end])!
            let open = chance(0.5) ? "[" : #"{"a":"#, close = open == "[" ? "]" : "}"
            text.replaceSubrange(r.lowerBound...end, with: String(repeating: open, count: n) + String(repeating: close, count: n))
        }
        var bytes = Array(text.utf8)
        if chance(0.1), !bytes.isEmpty {
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[i] = UInt8.random(in: 0...255, using: &rng)
                case 1: if bytes.count > 1 { bytes.remove(at: i) }
                default: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: i)
                }
            }
            bytes = bytes.map { $0 == 0x0A ? 0x20 : $0 }
        }
        bytes.append(0x0A)
        lastText = String(decoding: bytes.prefix(2_000), as: UTF8.self)
        return bytes
    }
}
