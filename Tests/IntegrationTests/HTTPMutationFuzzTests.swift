import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Testing

/// The HTTP front door under mutated gateway requests (MinIO, Ceph RGW, Envoy, nginx, the
/// Kubernetes extender; the wire formats of Tests/CustosGatewayTests/Fixtures), checked against
/// what each caller relies on to fail closed (docs/gateways.md):
///
/// - OPA data paths: a JSON body with `result`; any status but 200 says `"result": false` (or
///   `{"allow": false}` for a gateway with `"result": "object"`), and an allow carries the
///   `decision_id` of its audit entry;
/// - `/authz/`: 200, naming its decision, or 403; or the 413, 414 or 431 with which the front
///   door refuses a request over its size limits (a deny for Envoy and nginx, like any status
///   but 200); never 5xx; 403 whenever a header came twice;
/// - the extender: 200, 400 or those size refusals; a node passes or is ranked only if the
///   scheduler offered it, none passes beside an `Error`, scores are 0 to 10, and a refused
///   ranking scores every node 0.
///
/// The HTTP framing stays valid (libmicrohttpd's own parsing is its project's to fuzz): bodies,
/// header values and paths are what mutate. Seeded like `MutationFuzzTests`, whose `Mutator`
/// this reuses; `CUSTOS_FUZZ_REQUESTS` and `CUSTOS_FUZZ_SEED` lengthen the hunt.
@Suite struct HTTPMutationFuzzTests {
    static let requests = MutationFuzzTests.requests / 3
    static let seed = MutationFuzzTests.seed

    struct Reply {
        var status: Int
        var headers: [String: String]  // lower-cased names
        var body: [UInt8]
        var json: JSON? { try? JSON.parse(body) }
    }

    /// One request on a connection of its own (`Connection: close`), its whole reply.
    static func exchange(_ socket: String, _ request: [UInt8]) throws -> Reply? {
        let c = try RPCClient(path: socket, timeout: .seconds(60))
        defer { c.close() }
        var off = 0
        while off < request.count {
            let n = request[off...].withUnsafeBytes { Glibc.write(c.fileDescriptor, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }  // the server may answer and close before reading it all
            off += n
        }
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(c.fileDescriptor, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            data += buf[..<n]
        }
        guard let split = data.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
        let head = String(decoding: data[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusLine = head[0].split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Reply(status: status, headers: headers, body: Array(data[split.upperBound...]))
    }

    static func fixture(_ name: String) throws -> JSON {
        try JSON.parse(Array(try #require(FileManager.default.contents(atPath: gatewayFixtures + "/" + name))))
    }

    /// What the front door answers a request over its limits with: a body over
    /// `http.limits` (413, ours) or a request line or headers over libmicrohttpd's memory per
    /// connection (414, 431, the library's).
    static let sizeRefusals: Set<Int> = [413, 414, 431]

    /// A header value or path piece that keeps the HTTP framing: printable, no CR or LF.
    static func printable(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }.prefix(8_000)))
    }

    @Test func mutatedGatewayRequestsAreEachAnsweredTheWayTheirCallersFailClosed() throws {
        let d = try FrontDoor()
        let opa: [(path: String, body: JSON)] = [
            ("/v1/data/minio/authz", try Self.fixture("minio-input.json")), ("/v1/data/minio/authz", try Self.fixture("minio-sts-input.json")),
            ("/v1/data/minio/authz", try Self.fixture("minio-list-input.json")), ("/v1/data/minio-object", try Self.fixture("minio-input.json")),
            ("/v1/data/ceph/authz", try Self.fixture("rgw-input.json")), ("/v1/data/ceph/authz", try Self.fixture("rgw-multipart-input.json")),
        ]
        let extender: [JSON] = [try Self.fixture("k8s-filter-names.json"), try Self.fixture("k8s-filter-nodes.json")]
        // Envoy's and nginx's checks: a copy of the client's request, no body.
        let checks: [(gateway: String, fixture: JSON)] = [("envoy", try Self.fixture("envoy-check.json")), ("files", try Self.fixture("nginx-subrequest.json"))]
        var fuzz = Mutator(rng: SeededRandom(state: Self.seed), seeds: opa.map { (method: "", params: $0.body) })
        var tally: [String: Int] = [:]
        for i in 0..<Self.requests {
            var method = "POST", path: String, headers: [(String, String)] = [("content-type", "application/json")], body: [UInt8] = []
            let kind = Int.random(in: 0..<3, using: &fuzz.rng)
            switch kind {
            case 0:
                let seed = fuzz.pick(opa)
                path = seed.path
                body = Array((fuzz.chance(0.9) ? fuzz.mutate(seed.body) : fuzz.value()).serialized.utf8)
            case 1:
                path = "/scheduler/k8s/" + (fuzz.chance(0.7) ? "filter" : "prioritize")
                body = Array((fuzz.chance(0.9) ? fuzz.mutate(fuzz.pick(extender)) : fuzz.value()).serialized.utf8)
            default:
                let (gateway, check) = fuzz.pick(checks)
                method = fuzz.chance(0.8) ? check["method"]?.stringValue ?? "GET" : fuzz.pick(["HEAD", "PUT", "DELETE", "POST"])
                let original = (check["path"]?.stringValue ?? "").replacingOccurrences(of: "/authz/" + gateway, with: "")
                var tail = original
                if fuzz.chance(0.3) { tail += "/" + (Self.printable(fuzz.string()).addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? "") }
                path = "/authz/" + gateway + tail
                headers = []
                for pair in check["headers"]?.arrayValue ?? [] {
                    guard let name = pair.arrayValue?.first?.stringValue, var value = pair.arrayValue?.last?.stringValue,
                          !["host", "content-length"].contains(name), !fuzz.chance(0.1) else { continue }
                    if fuzz.chance(0.3) { value = Self.printable(fuzz.string()) }
                    headers.append((name, value))
                }
                if fuzz.chance(0.05) { headers.append(("x-forwarded-user", "mallory")) }  // a second identity header
            }
            var head = "\(method) \(path) HTTP/1.1\r\nhost: custos\r\nconnection: close\r\n"
            for (k, v) in headers { head += "\(k): \(v)\r\n" }
            head += "content-length: \(body.count)\r\n\r\n"
            let request = Array(head.utf8) + body
            let what = "request \(i) (seed \(Self.seed)): \(String(decoding: request.prefix(1_500), as: UTF8.self))"
            guard let r = try Self.exchange(d.http, request) else {
                Issue.record("no HTTP reply to \(what)")
                return
            }
            tally["\(path.hasPrefix("/v1") ? "opa" : path.hasPrefix("/authz") ? "authz" : "extender") \(r.status)", default: 0] += 1
            switch kind {
            case 0:
                let result = try #require(r.json?["result"], "no result member: \(what)")
                if r.status != 200 {
                    #expect(result == .bool(false) || result == .object(JSONObject(["allow": .bool(false)])),
                            "\(r.status) without result false: \(what)")
                }
                if result == .bool(true) || result["allow"] == .bool(true) {
                    #expect(r.json?["decision_id"]?.stringValue != nil, "an allow without its decision id: \(what)")
                }
            case 1:
                // The nodes the scheduler offered: none other may pass or be ranked.
                let sent = Set((try? JSON.parse(body))?["NodeNames"]?.arrayValue?.compactMap(\.stringValue) ?? [])
                    .union(((try? JSON.parse(body))?["Nodes"]?["items"]?.arrayValue ?? []).compactMap { $0["metadata"]?["name"]?.stringValue })
                #expect(r.status == 200 || r.status == 400 || Self.sizeRefusals.contains(r.status),
                        "\(r.status): \(what.prefix(300)) \(String(decoding: r.body.prefix(300), as: UTF8.self))")
                if Self.sizeRefusals.contains(r.status) { continue }
                let reply = try #require(r.json, "not JSON: \(what)")
                if path.hasSuffix("filter") {
                    let passed = (reply["NodeNames"]?.arrayValue?.compactMap(\.stringValue) ?? [])
                        + (reply["Nodes"]?["items"]?.arrayValue ?? []).compactMap { $0["metadata"]?["name"]?.stringValue }
                    #expect(passed.allSatisfy { sent.contains($0) }, "a node passed that was not offered: \(passed): \(what)")
                    if let e = reply["Error"]?.stringValue, !e.isEmpty { #expect(passed.isEmpty, "nodes passed beside an error: \(what)") }
                } else {
                    let ranked = try #require(reply.arrayValue, "a ranking that is not a list: \(what)")
                    let scores = ranked.map { $0["Score"]?.intValue ?? -1 }
                    #expect(scores.allSatisfy { (0...10).contains($0) }, "\(scores): \(what)")
                    if r.status != 200 { #expect(scores.allSatisfy { $0 == 0 }, "a refused ranking with a preference: \(what)") }
                    #expect(ranked.allSatisfy { $0["Host"]?.stringValue.map(sent.contains) == true }, "a node ranked that was not offered: \(what)")
                }
            default:
                let names = headers.map { $0.0.lowercased() }
                if Set(names).count < names.count, !Self.sizeRefusals.contains(r.status) {
                    #expect(r.status == 403, "a decision header sent twice was not refused: \(what)")
                }
                #expect(r.status == 200 || r.status == 403 || Self.sizeRefusals.contains(r.status),
                        "\(r.status) from /authz/: \(what.prefix(300)) \(String(decoding: r.body.prefix(300), as: UTF8.self))")
                if r.status == 200 { #expect(r.headers["x-custos-decision-id"] != nil, "an allow without its decision id: \(what)") }
            }
        }
        print("HTTPMutationFuzzTests: \(Self.requests) requests, seed \(Self.seed): \(tally.sorted { $0.key < $1.key })")
        #expect(d.daemon.process.isRunning)
        // The mutations reach decisions, not only refusals.
        #expect(tally["opa 200", default: 0] > Self.requests / 30 && tally["authz 200", default: 0] > 0, "\(tally)")
        #expect(try d.daemon.call("health").get().objectValue?["ready"] == .bool(true))
    }
}
