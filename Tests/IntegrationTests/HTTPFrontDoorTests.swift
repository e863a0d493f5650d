import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Testing

/// The gateway fixtures (the callers' documented request shapes) live with the unit tests.
let gatewayFixtures = daemonRepoRoot + "/Tests/CustosGatewayTests/Fixtures"

/// A reply as curl printed it with `-i`.
struct CurlReply {
    var status: Int
    var headers: [(String, String)]
    var body: String

    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    var json: JSONObject? { (try? JSON.parse(body))?.objectValue }
}

/// Runs Debian's curl (installed by `make deps`) and parses its `-i` output.
func curl(_ args: [String]) throws -> CurlReply {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "curl is missing: run `make deps`")
    p.arguments = ["-s", "-i", "--max-time", "120"] + args
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    var text = String(decoding: data, as: UTF8.self)
    var reply = CurlReply(status: 0, headers: [], body: "")
    while let end = text.range(of: "\r\n\r\n") {
        let head = text[..<end.lowerBound].split(separator: "\r\n")
        reply.status = Int(head.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        reply.headers = head.dropFirst().compactMap { l in
            guard let c = l.firstIndex(of: ":") else { return nil }
            return (String(l[..<c]), l[l.index(after: c)...].trimmingCharacters(in: .whitespaces))
        }
        text = String(text[end.upperBound...])
        if reply.status >= 200 { break }  // skip 100 Continue
    }
    reply.body = text
    return reply
}

/// A port nothing listens on now (the kernel's pick; closed again at once).
func freeLoopbackPort() throws -> UInt16 {
    let s = try BoundSocket.loopbackTCP(host: "127.0.0.1", port: 0)
    defer { close(s.fd) }
    return try #require(s.port)
}

/// `custos serve` with the HTTP front door: a Unix listener and two TCP listeners (uid 65534,
/// granted `metrics`; uid 65533, not), and gateways over the example study's data.
final class FrontDoor {
    let scratch: String
    let http: String
    let daemon: TestDaemon

    static let gateways = #"""
      "minio": {"kind": "minio", "path": "minio/authz",
                "actions": {"s3:GetObject": "read", "s3:ListBucket": "read", "s3:PutObject": "write"},
                "resources": [{"bucket": "onc301", "prefix": "de/clinical/", "resource": {"type": "Dataset", "id": "onc301-de-clinical"}}],
                "purpose": [{"session_tag": "purpose"}, {"account": {"alice": "primary_research", "bob": "primary_research"}}],
                "region": [{"value": "eu-central-1"}]},
      "minio-object": {"kind": "minio", "result": "object", "actions": {"s3:GetObject": "read"},
                "resources": [{"bucket": "onc301", "prefix": "de/clinical/", "resource": {"type": "Dataset", "id": "onc301-de-clinical"}}],
                "purpose": [{"value": "primary_research"}], "region": [{"value": "eu-central-1"}]},
      "rgw": {"kind": "rgw", "path": "ceph/authz", "actions": {"s3:GetObject": "read", "s3:PutObject": "write"},
              "resources": [{"bucket": "onc301", "prefix": "de/clinical/", "resource": {"type": "Dataset", "id": "onc301-de-clinical"}}],
              "purpose": [{"value": "primary_research"}], "region": [{"value": "eu-central-1"}]},
      "envoy": {"kind": "envoy", "s3": true, "principal_header": "x-forwarded-user",
                "actions": {"s3:GetObject": "read", "s3:GetObjectVersion": "read"},
                "resources": [{"bucket": "onc301", "prefix": "de/clinical/", "resource": {"type": "Dataset", "id": "onc301-de-clinical"}}],
                "purpose": [{"header": "x-custos-purpose"}], "region": [{"value": "eu-central-1"}]},
      "k8s": {"kind": "kubernetes", "region_label": "node-restriction.kubernetes.io/region"},
      "files": {"kind": "nginx", "principal_header": "x-forwarded-user", "actions": {"GET": "read", "HEAD": "read"},
                "resources": [{"path_prefix": "/files/onc301-de/", "resource": {"type": "Dataset", "id": "onc301-de-clinical"}},
                              {"path_prefix": "/files/card201/", "resource": {"type": "Dataset", "id": "card201-us-ehr"}}],
                "purpose": [{"header": "x-custos-purpose"}], "region": [{"value": "eu-central-1"}]}
    """#

    init(files: [String: String] = [:], copyExample: Bool = true, limits: String = #"{"timeout_seconds": 2}"#) throws {
        scratch = makeShortTempDir()
        http = scratch + "/http.sock"
        let config = """
        {"access": {"methods": {"metrics": {"allow_uids": [\(getuid()), 65534]}}},
         "http": {"listeners": [{"unix": "\(http)", "mode": "0666"},
                                {"tcp": "127.0.0.1:0", "uid": 65534, "gid": 65534},
                                {"tcp": "127.0.0.1:0", "uid": 65533, "gid": 65533}],
                  "limits": \(limits),
                  "gateways": {\(Self.gateways)}}}
        """
        daemon = try TestDaemon(config: config, files: files, copyExample: copyExample)
        // The example's guardrails too (TestDaemon copies the folder's files only).
        if copyExample { try FileManager.default.copyItem(atPath: daemonExamplePolicies + "/guardrails", toPath: daemon.policies + "/guardrails") }
        try daemon.start()
        _ = try #require(eventually { FileManager.default.fileExists(atPath: http) ? true : nil })
    }

    deinit {
        daemon.signal(SIGTERM)
        _ = daemon.waitForExit()
        try? FileManager.default.removeItem(atPath: scratch)
    }

    /// The bound ports of the TCP listeners, in configuration order (from `metrics`).
    func tcpPorts() throws -> [UInt16] {
        let m = try daemon.call("metrics").get()
        let families = m.objectValue?["families"]?.arrayValue ?? []
        let conns = try #require(families.first { $0.objectValue?["name"] == .string("custos_http_connections") })
        return (conns.objectValue?["samples"]?.arrayValue ?? []).compactMap { s -> UInt16? in
            guard let l = s.objectValue?["labels"]?.objectValue?["listener"]?.stringValue, l.hasPrefix("tcp:127.0.0.1:") else { return nil }
            return UInt16(l.dropFirst(14))
        }
    }

    /// The sum of `custos_decisions_total` through the JSON-RPC `metrics` method.
    func decisionsCounted() throws -> Int64 {
        let m = try daemon.call("metrics").get()
        let f = try #require(m.objectValue?["families"]?.arrayValue?.first { $0.objectValue?["name"] == .string("custos_decisions_total") })
        return (f.objectValue?["samples"]?.arrayValue ?? []).reduce(0) { $0 + ($1.objectValue?["value"]?.intValue ?? 0) }
    }

    func opa(_ path: String, fixture: String? = nil, body: String? = nil) throws -> CurlReply {
        let data = fixture.map { "@" + gatewayFixtures + "/" + $0 } ?? body ?? ""
        return try curl(["--unix-socket", http, "-X", "POST", "-H", "Content-Type: application/json",
                                                            "--data-binary", data, "http://custos/v1/data/" + path])
    }

    func auditEntry(_ decisionID: String) throws -> JSONObject {
        let r = try daemon.call("audit.query", .object(JSONObject(["decision_id": .string(decisionID)]))).get()
        return try #require(r.objectValue?["entries"]?.arrayValue?.first?.objectValue)
    }
}

@Suite struct HTTPFrontDoorTests {
    @Test func minioAndRGWGetTheirAnswerShapesAndTheAuditNamesTheEndCaller() throws {
        let d = try FrontDoor()
        let allow = try d.opa("minio/authz", fixture: "minio-input.json")
        #expect(allow.status == 200)
        #expect(allow.json?["result"] == .bool(true))
        let id = try #require(allow.json?["decision_id"]?.stringValue)
        #expect(allow.header("x-custos-decision-id") == id)
        let entry = try d.auditEntry(id)
        #expect(entry["on_behalf_of"] == .string("account:alice"))
        #expect(entry["caller"]?.objectValue?["uid"] == .int(Int64(getuid())))
        #expect(entry["principal"] == .string(#"User::"alice""#))
        #expect(entry["purpose"] == .string("primary_research"))

        // The same decision through JSON-RPC hashes the same: one request, two doors.
        let rpc = try d.daemon.call("decide", try exampleRequest("allow-scientist-reads-own-study.json")).get()
        let rpcEntry = try d.auditEntry(try #require(rpc.objectValue?["decision_id"]?.stringValue))
        #expect(rpcEntry["request_sha256"] == entry["request_sha256"])
        #expect(rpcEntry["on_behalf_of"] == nil)

        let sts = try d.opa("minio/authz", fixture: "minio-sts-input.json")  // session tag purpose ml_model_training: consent missing
        #expect(sts.json?["result"] == .bool(false))
        let stsEntry = try d.auditEntry(try #require(sts.json?["decision_id"]?.stringValue))
        #expect(stsEntry["purpose"] == .string("ml_model_training"))

        #expect(try d.opa("minio-object", fixture: "minio-input.json").json?["result"] == .object(JSONObject(["allow": .bool(true)])))
        let rgw = try d.opa("ceph/authz", fixture: "rgw-input.json")
        #expect(rgw.status == 200)
        #expect(rgw.json?["result"] == .bool(true))
        let bob = try d.opa("ceph/authz", body: String(decoding: try #require(FileManager.default.contents(atPath: gatewayFixtures + "/rgw-input.json")), as: UTF8.self)
            .replacingOccurrences(of: #""user_id": "alice""#, with: #""user_id": "bob""#))
        #expect(bob.json?["result"] == .bool(false))
        #expect(try d.auditEntry(try #require(bob.json?["decision_id"]?.stringValue))["on_behalf_of"] == .string("account:bob"))
    }

    @Test func envoyChecksAre200WithHeadersOr403WithReasons() throws {
        let d = try FrontDoor()
        let base = ["--unix-socket", d.http, "-H", "x-forwarded-user: alice", "-H", "x-custos-purpose: primary_research"]
        let ok = try curl(base + ["http://s3.eu.helix.example/authz/envoy/onc301/de/clinical/visits.parquet?versionId=3HL4"])
        #expect(ok.status == 200)
        #expect(ok.header("x-custos-decision-id") != nil)
        #expect(ok.header("x-custos-obligations") == #"[{"kind":"legal_basis","purpose":"primary_research","basis":"public_task"}]"#)
        #expect(try d.auditEntry(try #require(ok.header("x-custos-decision-id")))["on_behalf_of"] == .string("header x-forwarded-user:alice"))
        let no = try curl(["--unix-socket", d.http, "-H", "x-forwarded-user: bob", "-H", "x-custos-purpose: primary_research",
                           "http://x/authz/envoy/onc301/de/clinical/visits.parquet"])
        #expect(no.status == 403)
        #expect(no.json?["decision"] == .string("deny"))
        #expect(no.json?["guardrail_reasons"]?.arrayValue?.isEmpty == false)
        // No purpose: the guardrails deny personal data (purpose.missing), with the reason.
        let why = try curl(["--unix-socket", d.http, "-H", "x-forwarded-user: alice", "http://x/authz/envoy/onc301/de/clinical/v.parquet"])
        #expect(why.status == 403)
        #expect(why.body.contains("purpose.missing"))
    }

    /// libmicrohttpd decodes the URL into a C string: a `%00` would end it, and the decision
    /// would be made on the part before while the server behind reads the rest. Refused.
    @Test func anEnvoyCheckWhoseURLHoldsAnEncodedNulIsRefusedWithoutADecision() throws {
        let d = try FrontDoor()
        let base = ["--unix-socket", d.http, "--path-as-is", "-H", "x-forwarded-user: alice", "-H", "x-custos-purpose: primary_research"]
        #expect(try curl(base + ["http://x/authz/envoy/onc301/de/clinical/x"]).status == 200, "the control")
        for url in ["http://x/authz/envoy/onc301/de/clinical/x%00/../../../card201/ehr.csv", "http://x/authz/envoy/onc301/de/clinical/x%00",
                    "http://x/authz/envoy/onc301?prefix=de/clinical/%00", "http://x/authz/envoy/onc301?pre%00fix=de/clinical/"] {
            let r = try curl(base + [url])
            #expect(r.status == 403, "\(url)")
            #expect(r.body.contains("%00"), "\(url): \(r.body)")
            #expect(r.header("x-custos-decision-id") == nil)
        }
    }

    @Test func theSchedulerExtenderFilterIsDecidedByPlace() throws {
        let d = try FrontDoor()
        let r = try curl(["--unix-socket", d.http, "-X", "POST", "-H", "Content-Type: application/json",
                          "--data-binary", "@" + gatewayFixtures + "/k8s-filter-nodes.json", "http://x/scheduler/k8s/filter"])
        #expect(r.status == 200)
        let b = try #require(r.json)
        #expect(b["Error"] == .string(""))
        #expect(b["NodeNames"] == .null)
        #expect(b["Nodes"]?.objectValue?["items"]?.arrayValue?.compactMap { $0.objectValue?["metadata"]?.objectValue?["name"]?.stringValue } == ["fra-h100-01"])
        #expect(b["FailedAndUnresolvableNodes"]?.objectValue?["ore-7"]?.stringValue?.hasPrefix("residency.cross_border: ") == true)
        let entry = try d.auditEntry(try #require(r.header("x-custos-decision-id")))
        #expect(entry["method"] == .string("place"))
        #expect(entry["on_behalf_of"] == .string("pod onc301/seg-42-0"))
    }

    @Test func tcpCallersHaveTheConfiguredIdentityAndItsAccessRules() throws {
        let d = try FrontDoor()
        let ports = try d.tcpPorts()
        try #require(ports.count == 2)
        let viaTCP = try curl(["-X", "POST", "--data-binary", "@" + gatewayFixtures + "/minio-input.json",
                               "http://127.0.0.1:\(ports[0])/v1/data/minio/authz"])
        #expect(viaTCP.json?["result"] == .bool(true))
        let caller = try d.auditEntry(try #require(viaTCP.json?["decision_id"]?.stringValue))["caller"]?.objectValue
        #expect(caller?["uid"] == .int(65534))
        #expect(caller?["pid"] == .int(0))
        // metrics is granted to 65534 only.
        #expect(try curl(["http://127.0.0.1:\(ports[0])/metrics"]).status == 200)
        #expect(try curl(["http://127.0.0.1:\(ports[1])/metrics"]).status == 403)
        // health and decisions stay open to both.
        #expect(try curl(["http://127.0.0.1:\(ports[1])/readyz"]).status == 200)
    }

    /// Malformed HTTP, oversize bodies and headers, slow clients, unknown paths and members get
    /// HTTP's errors, and none of them is ever decided.
    @Test func badHTTPGetsHTTPErrorsAndNeverADecision() throws {
        let d = try FrontDoor()
        let big = d.scratch + "/big.json"
        try String(repeating: "a", count: 2 << 20).write(toFile: big, atomically: true, encoding: .utf8)
        #expect(try curl(["--unix-socket", d.http, "-X", "POST", "--data-binary", "@" + big, "http://x/v1/data/minio/authz"]).status == 413)
        #expect(try curl(["--unix-socket", d.http, "-H", "X-Big: " + String(repeating: "b", count: 40_000), "http://x/readyz"]).status == 431)
        #expect(try curl(["--unix-socket", d.http, "http://x/v1/nothing"]).status == 404)
        #expect(try curl(["--unix-socket", d.http, "http://x/v1/data/minio/authz"]).status == 405)
        let unknown = try d.opa("minio/authz", body: #"{"input":{"account":"alice","action":"s3:GetObject","bucket":"onc301","object":"de/clinical/x","acount":"root"}}"#)
        #expect(unknown.status == 400)
        #expect(unknown.json?["result"] == .bool(false))
        #expect(try d.opa("minio/authz", body: "{\"input\":").status == 400)

        // A request line without an HTTP version.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: Array(d.http.utf8) + [0]) }
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        try #require(rc == 0)
        let garbage = Array("GARBAGE /v1/data/minio/authz\r\n\r\n".utf8)
        _ = garbage.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var buf = [UInt8](repeating: 0, count: 512)
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        #expect(String(decoding: buf.prefix(max(0, n)), as: UTF8.self).hasPrefix("HTTP/1.1 400"))

        // A slow client that never finishes its headers is closed (timeout_seconds: 2).
        let slow = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(slow) }
        let rc2 = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(slow, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        try #require(rc2 == 0)
        let partial = Array("POST /v1/data/minio/authz HTTP/1.1\r\nHost: x\r\n".utf8)
        _ = partial.withUnsafeBytes { write(slow, $0.baseAddress, $0.count) }
        var tv = timeval(tv_sec: 120, tv_usec: 0)
        _ = setsockopt(slow, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let closed = buf.withUnsafeMutableBytes { read(slow, $0.baseAddress, $0.count) }
        #expect(closed == 0)

        #expect(try d.decisionsCounted() == 0)
    }

    @Test func aDaemonThatIsNotReadyAnswersFalse403And503() throws {
        let d = try FrontDoor(files: ["10-data-scientists.cedar": "permit(principal, action, resource"])
        #expect(try curl(["--unix-socket", d.http, "http://x/healthz"]).status == 200)
        #expect(try curl(["--unix-socket", d.http, "http://x/readyz"]).status == 503)
        let minio = try d.opa("minio/authz", fixture: "minio-input.json")
        #expect(minio.status == 503)
        #expect(minio.json?["result"] == .bool(false))
        #expect(try d.opa("minio-object", fixture: "minio-input.json").json?["result"] == .object(JSONObject(["allow": .bool(false)])))
        let envoy = try curl(["--unix-socket", d.http, "-H", "x-forwarded-user: alice", "-H", "x-custos-purpose: primary_research",
                              "http://x/authz/envoy/onc301/de/clinical/visits.parquet"])
        #expect(envoy.status == 403)
        let extender = try curl(["--unix-socket", d.http, "-X", "POST", "--data-binary", "@" + gatewayFixtures + "/k8s-filter-names.json",
                                 "http://x/scheduler/k8s/filter"])
        #expect(extender.json?["Error"]?.stringValue?.hasPrefix("custos: ") == true)
        #expect(extender.json?["FailedAndUnresolvableNodes"]?.objectValue?.keys == ["fra-h100-01", "ore-7"])
    }

    @Test func nginxAuthRequestServesAllowedFilesAndRefusesTheRestEvenWithTheDaemonDown() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx"), "nginx is missing: run `make deps`")
        let d = try FrontDoor()
        let root = d.scratch + "/www"
        for (path, text) in ["files/onc301-de/visits.csv": "visit,date\n1,2026-11-02\n", "files/card201/ehr.csv": "identified\n"] {
            try FileManager.default.createDirectory(atPath: (root + "/" + path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: root + "/" + path, atomically: true, encoding: .utf8)
        }
        let nginxDir = d.scratch + "/nginx"
        try FileManager.default.createDirectory(atPath: nginxDir, withIntermediateDirectories: true)
        let listen = nginxDir + "/nginx.sock"
        let conf = """
        \(getuid() == 0 ? "user root root;" : "")
        worker_processes 1;
        pid \(nginxDir)/nginx.pid;
        error_log \(nginxDir)/error.log;
        events { worker_connections 64; }
        http {
          access_log \(nginxDir)/access.log;
          client_body_temp_path \(nginxDir)/body; proxy_temp_path \(nginxDir)/proxy;
          fastcgi_temp_path \(nginxDir)/fastcgi; uwsgi_temp_path \(nginxDir)/uwsgi; scgi_temp_path \(nginxDir)/scgi;
          server {
            listen unix:\(listen);
            location /files/ {
              root \(root);
              auth_request /_custos;
              auth_request_set $custos_decision $upstream_http_x_custos_decision_id;
              add_header X-Custos-Decision-Id $custos_decision always;
            }
            location = /_custos {
              internal;
              proxy_pass http://unix:\(d.http):/authz/files;
              proxy_pass_request_body off;
              proxy_set_header Content-Length "";
              proxy_set_header X-Original-URI $request_uri;
              proxy_set_header X-Original-Method $request_method;
              proxy_set_header X-Forwarded-User $http_x_user;
              proxy_set_header X-Custos-Purpose "primary_research";
              error_page 500 502 503 504 = @custos_unavailable;
            }
            location @custos_unavailable { internal; return 403; }
          }
        }
        """
        try conf.write(toFile: nginxDir + "/nginx.conf", atomically: true, encoding: .utf8)
        let nginx = Process()
        nginx.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
        nginx.arguments = ["-p", nginxDir, "-c", nginxDir + "/nginx.conf", "-g", "daemon off;"]
        nginx.standardError = FileHandle.nullDevice
        try nginx.run()
        defer {
            if nginx.isRunning { kill(nginx.processIdentifier, SIGTERM) }
            nginx.waitUntilExit()
        }
        try #require(eventually { FileManager.default.fileExists(atPath: listen) }, "nginx did not start: \((try? String(contentsOfFile: nginxDir + "/error.log", encoding: .utf8)) ?? "")")

        let served = try curl(["--unix-socket", listen, "-H", "X-User: alice", "http://x/files/onc301-de/visits.csv"])
        #expect(served.status == 200)
        #expect(served.body == "visit,date\n1,2026-11-02\n")
        let allowedID = try #require(served.header("X-Custos-Decision-Id"))
        #expect(try d.auditEntry(allowedID)["on_behalf_of"] == .string("header x-forwarded-user:alice"))

        let denied = try curl(["--unix-socket", listen, "-H", "X-User: alice", "http://x/files/card201/ehr.csv"])
        #expect(denied.status == 403)
        let deniedID = try #require(denied.header("X-Custos-Decision-Id"))
        #expect(try d.auditEntry(deniedID)["decision"] == .string("deny"))
        #expect(!denied.body.contains("identified"))
        #expect(try curl(["--unix-socket", listen, "-H", "X-User: alice", "http://x/files/onc301-de/%2e%2e/card201/ehr.csv"]).status != 200)

        d.daemon.signal(SIGTERM)
        try #require(d.daemon.waitForExit() == 0)
        let down = try curl(["--unix-socket", listen, "-H", "X-User: alice", "http://x/files/onc301-de/visits.csv"])
        #expect(down.status == 403)
        #expect(!down.body.contains("visit,date"))
    }

    @Test func prometheusScrapesExactlyTheDecisionsMade() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/prometheus"), "prometheus is missing: run `make deps`")
        let d = try FrontDoor()
        let port = try #require(try d.tcpPorts().first)
        let promDir = d.scratch + "/prometheus"
        try FileManager.default.createDirectory(atPath: promDir + "/data", withIntermediateDirectories: true)
        try """
        global:
          scrape_interval: 1s
          scrape_timeout: 1s
        scrape_configs:
          - job_name: custos
            static_configs:
              - targets: ["127.0.0.1:\(port)"]
        """.write(toFile: promDir + "/prometheus.yml", atomically: true, encoding: .utf8)
        let web = try freeLoopbackPort()
        let prometheus = Process()
        prometheus.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus")
        prometheus.arguments = ["--config.file=" + promDir + "/prometheus.yml", "--storage.tsdb.path=" + promDir + "/data",
                                "--web.listen-address=127.0.0.1:\(web)"]
        prometheus.standardError = FileHandle.nullDevice
        prometheus.standardOutput = FileHandle.nullDevice
        try prometheus.run()
        defer {
            if prometheus.isRunning { kill(prometheus.processIdentifier, SIGTERM) }
            prometheus.waitUntilExit()
        }

        // 4 through the front door, 2 through JSON-RPC, and one refused request that is no decision.
        for _ in 0..<3 { #expect(try d.opa("minio/authz", fixture: "minio-input.json").json?["result"] == .bool(true)) }
        #expect(try d.opa("ceph/authz", fixture: "rgw-input.json").json?["result"] == .bool(true))
        #expect(try d.opa("minio/authz", body: "{}").status == 400)
        _ = try d.daemon.call("decide", try exampleRequest("allow-scientist-reads-own-study.json")).get()
        _ = try d.daemon.call("decide", try exampleRequest("deny-scientist-reads-other-study.json")).get()
        #expect(try d.decisionsCounted() == 6)

        let query = "http://127.0.0.1:\(web)/api/v1/query?query=sum(custos_decisions_total)"
        let seen = eventually { () -> String? in
            guard let r = try? curl([query]), let result = r.json?["data"]?.objectValue?["result"]?.arrayValue,
                  let value = result.first?.objectValue?["value"]?.arrayValue, value.count == 2,
                  let v = value[1].stringValue, v == "6" else { return nil }
            return v
        }
        #expect(seen == "6")
        let deny = try curl(["http://127.0.0.1:\(web)/api/v1/query?query=custos_decisions_total%7Boutcome%3D%22deny%22%2Cmethod%3D%22decide%22%7D"])
        #expect(deny.json?["data"]?.objectValue?["result"]?.arrayValue?.first?.objectValue?["value"]?.arrayValue?[1] == .string("1"))
    }
}
