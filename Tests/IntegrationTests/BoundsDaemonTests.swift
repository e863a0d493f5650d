import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Testing

/// The attacks of issue 10 §3 against the real binary over a real socket: entity chains in a
/// request and in the folder, reply amplification, batch arrays, and connections that trickle
/// (docs/security.md, "Limits"). Each ends with the daemon still answering.
@Suite struct BoundsDaemonTests {
    /// `type::"0"` whose parent is `type::"1"`, ..., compact, as an attacker would write it.
    static func chain(_ n: Int, type: String = "U", top: String? = nil) -> String {
        "[" + (0..<n).map { i in
            let parent = i + 1 < n ? #"{"type":"\#(type)","id":"\#(i + 1)"}"# : (top ?? "")
            return #"{"uid":{"type":"\#(type)","id":"\#(i)"},"attrs":{},"parents":[\#(parent)]}"#
        }.joined(separator: ",") + "]"
    }

    static func decideLine(entities: String, id: Int) -> [UInt8] {
        Array(#"{"jsonrpc":"2.0","method":"decide","params":{"principal":{"type":"U","id":"0"},"action":{"type":"Action","id":"read"},"resource":{"type":"Dataset","id":"onc301-de-clinical"},"entities":\#(entities)},"id":\#(id)}"#.utf8) + [0x0A]
    }

    /// Peak resident memory of a process, in bytes (VmHWM).
    static func peakRSS(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }
            return kb.map { $0 * 1024 }
        }
        return nil
    }

    /// Before: 12,850 entities in one chain (under the 1 MiB line limit) took 5.9 GB and 30-46 s;
    /// two at once killed the daemon. Now each is refused by count, a chain past the depth limit
    /// by depth, and a chain within the limits is decided through the folder's hierarchy.
    @Test func requestEntityChainsAreRefusedByCountAndDepthAndTheDaemonKeepsDeciding() throws {
        // The cost limits, not the trust rules, are under test: the caller holds the `entities`
        // privilege and the folder leaves `Role` open to request entities.
        let d = try TestDaemon(config: #"{"access":{"methods":{"entities":"anyone"}}}"#,
                               files: ["custos.json": #"{"authoritative_types":["User","Study"]}"#]).start()
        let long = Self.decideLine(entities: Self.chain(12_850), id: 1)
        #expect(long.count < 1 << 20)
        let a = try d.client(), b = try d.client()
        let wa = BackgroundWriter(fd: a.fileDescriptor, bytes: long)
        let wb = BackgroundWriter(fd: b.fileDescriptor, bytes: long)
        for c in [a, b] {
            let r = try decodeReply(try #require(try c.readLine()))
            #expect(errorCodeOf(r.outcome) == RPCError.invalidParamsCode)
            if case .failure(let e) = r.outcome {
                #expect(e.message.contains("params.entities") && e.message.contains("limits.max_request_entities"), "\(e.message)")
            }
        }
        #expect(wa.wait() && wb.wait())
        try a.send(line: Self.decideLine(entities: Self.chain(33), id: 2))
        let deep = try decodeReply(try #require(try a.readLine()))
        if case .failure(let e) = deep.outcome {
            #expect(e.code == RPCError.invalidParamsCode && e.message.contains("limits.max_request_entity_depth"), "\(e.message)")
        } else {
            Issue.record("a 33-deep request chain was decided")
        }
        // Within the limits, the chain reaches the folder's Role::"data_scientist" (a deny
        // here, decided, since the chain's users carry no study).
        try a.send(line: Self.decideLine(entities: Self.chain(32, top: #"{"type":"Role","id":"data_scientist"}"#), id: 3))
        let fine = try decodeReply(try #require(try a.readLine()))
        #expect(decisionOf(fine.outcome) != nil, "\(fine.outcome)")
        #expect(answersHealth(d.socket, ready: true))
    }

    static let deepFolderText = chain(16_000, type: "G")

    /// Before: a 16,000-deep chain in entities.json made `check` and `authorize` abort (exit 134).
    @Test func checkAndAuthorizeRefuseADeepFolderHierarchyWithTheLimitInsteadOfAborting() throws {
        let dir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/p", withIntermediateDirectories: true)
        try "permit(principal, action, resource);\n".write(toFile: dir + "/p/p.cedar", atomically: true, encoding: .utf8)
        try Self.deepFolderText.write(toFile: dir + "/p/entities.json", atomically: true, encoding: .utf8)
        try #"{"principal":{"type":"G","id":"0"},"action":{"type":"Action","id":"read"},"resource":{"type":"G","id":"1"}}"#
            .write(toFile: dir + "/req.json", atomically: true, encoding: .utf8)
        let check = try Binary.run(["check", "--policies", dir + "/p"])
        #expect(!check.crashed && check.status == 1, "check: \(check.status) \(check.stderr)")
        #expect(check.stderr.contains("entities.json") && check.stderr.contains("the limit is 1000"), "\(check.stderr)")
        let authorize = try Binary.run(["authorize", "--policies", dir + "/p", "--entities", dir + "/p/entities.json",
                                        "--request", dir + "/req.json"])
        #expect(!authorize.crashed && authorize.status != 0, "authorize: \(authorize.status) \(authorize.stderr)")
        #expect(authorize.stderr.contains("the limit is 1000"), "\(authorize.stderr)")
    }

    /// Before: SIGHUP with such a folder killed the daemon, which then crash-looped on restart.
    @Test func aDeepFolderHierarchyFailsTheReloadAndTheStartWithoutKillingTheDaemon() throws {
        let d = try TestDaemon().start()
        let before = try d.call("policy.status").get().objectValue?["revision"]
        try d.write("entities.json", Self.deepFolderText)
        d.signal(SIGHUP)
        let status = try #require(eventually { () -> JSONObject? in
            guard let s = try? d.call("policy.status").get().objectValue, s["last_reload_error"]?.isNull == false else { return nil }
            return s
        })
        #expect(status["revision"] == before)
        #expect(status["last_reload_error"]?.serialized.contains("the limit is 1000") == true, "\(status)")
        #expect(answersHealth(d.socket, ready: true))
        // A daemon started on that folder serves, not ready, and says why.
        let fresh = try TestDaemon(files: ["entities.json": Self.deepFolderText]).start()
        let health = try fresh.call("health").get().objectValue
        #expect(health?["ready"] == .bool(false))
        #expect(health?["reasons"]?.serialized.contains("the limit is 1000") == true, "\(String(describing: health))")
    }

    /// Nesting is bounded by the JSON reader (jansson stops at 2048 levels), and every
    /// recursion of ours over a value (to Cedar values, evaluation, the audit entry and back)
    /// handles what it lets through on a connection's stack.
    @Test func valuesNestedToTheReadersDepthLimitAreDecidedAndDeeperOnesAreParseErrors() throws {
        let d = try TestDaemon(extraArguments: ["--audit-context", "x"]).start()
        func line(_ depth: Int, _ open: String, _ leaf: String, _ close: String) -> String {
            #"{"jsonrpc":"2.0","method":"decide","params":{"principal":{"type":"User","id":"alice"},"action":{"type":"Action","id":"read"},"resource":{"type":"Dataset","id":"onc301-de-clinical"},"context":{"purpose":"primary_research","region":"eu-central-1","x":"#
                + String(repeating: open, count: depth) + leaf + String(repeating: close, count: depth) + #"}},"id":1}"#
        }
        let c = try d.client()
        for (open, leaf, close) in [("[", "", "]"), (#"{"a":"#, "1", "}")] {
            try c.send(line: line(2_040, open, leaf, close))
            #expect(decisionOf(try decodeReply(try #require(try c.readLine())).outcome) == "allow")
            try c.send(line: line(5_000, open, leaf, close))
            #expect(errorCodeOf(try decodeReply(try #require(try c.readLine())).outcome) == RPCError.parseErrorCode)
        }
        #expect(answersHealth(d.socket, ready: true))
        #expect(try AuditDaemonTests.verify(d.dir).status == 0)
    }

    /// Before: a 1 MiB line `[1,1,...]` made a 56.6 MB reply in memory; 129 such connections
    /// that never read exhausted 8 GiB. Now each gets one short error, and 40 of them at once
    /// leave the daemon's peak memory within a few line limits per connection.
    @Test func fortyConnectionsSendingAMebibyteArrayAndNeverReadingCostOnlyTheirLineBuffers() throws {
        let d = try TestDaemon().start()
        let pid = d.process.processIdentifier
        let baseline = try #require(Self.peakRSS(pid))
        var line = Array("[".utf8)
        line.reserveCapacity(1 << 20)
        while line.count < (1 << 20) - 4 { line.append(contentsOf: Array("1,".utf8)) }
        line.append(contentsOf: Array("1]".utf8) + [0x0A])
        #expect(line.count <= (1 << 20) + 1)
        var clients: [RPCClient] = []
        var writers: [BackgroundWriter] = []
        for _ in 0..<40 {
            let c = try d.client()
            writers.append(BackgroundWriter(fd: c.fileDescriptor, bytes: line))
            clients.append(c)
        }
        for w in writers { #expect(w.wait()) }
        // Every connection has been answered (its reply waits unread).
        #expect(eventually {
            clients.allSatisfy { c in
                var p = pollfd(fd: c.fileDescriptor, events: Int16(POLLIN), revents: 0)
                return poll(&p, 1, 0) == 1
            }
        })
        let peak = try #require(Self.peakRSS(pid))
        let grown = peak - baseline
        #expect(grown < 40 * 4 * (1 << 20), "the daemon's peak grew by \(grown / (1 << 20)) MiB")
        let reply = try decodeReply(try #require(try clients[0].readLine()))
        #expect(errorCodeOf(reply.outcome) == RPCError.overloadedCode)
        #expect(answersHealth(d.socket, ready: true))
    }

    /// A batch array within the limit can still ask for much more than it sends: here 1,000
    /// `nodes.list` calls (45 KB) over a 2,000-node inventory, about 300 MB of replies. They
    /// leave as they are made, so a client that never reads holds up its own batch (until the
    /// write timeout closes it) and the daemon holds one reply at a time, not all of them.
    @Test func aBatchWhoseRepliesDwarfItsLineHoldsOnlyAFewRepliesForAClientThatNeverReads() throws {
        let d = try TestDaemon(config: #"{"limits":{"write_timeout_seconds":2}}"#).start()
        let pad = String(repeating: "n", count: 120)
        let nodes = JSON.array((0..<2_000).map { .object(JSONObject(["name": .string("\(pad)-\($0)")])) })
        _ = try d.call("nodes.sync", .object(JSONObject(["nodes": nodes, "replace": .bool(true)]))).get()
        let pid = d.process.processIdentifier
        let baseline = try #require(Self.peakRSS(pid))
        let c = try d.client()
        try c.send(line: "[" + (1...1_000).map { #"{"jsonrpc":"2.0","method":"nodes.list","id":\#($0)}"# }.joined(separator: ",") + "]")
        // The first replies have arrived (and the client reads none of them).
        #expect(eventually {
            var p = pollfd(fd: c.fileDescriptor, events: Int16(POLLIN), revents: 0)
            return poll(&p, 1, 0) == 1
        })
        let grown = try #require(Self.peakRSS(pid)) - baseline
        #expect(grown < 64 << 20, "the daemon's peak grew by \(grown >> 20) MiB")
        #expect(answersHealth(d.socket, ready: true))
        // The write timeout ends the connection (seen without reading, which would let the
        // batch go on); the daemon lives on.
        #expect(eventually {
            var p = pollfd(fd: c.fileDescriptor, events: Int16(POLLIN), revents: 0)
            return poll(&p, 1, 0) == 1 && p.revents & Int16(POLLHUP) != 0
        })
        #expect(answersHealth(d.socket, ready: true))
    }

    /// Before: 4,112 decides in one batch array were decided and audited whatever batch_limit said.
    @Test func aBatchArrayOverTheBatchLimitIsRefusedWholeAndNothingIsDecidedOrAudited() throws {
        let d = try TestDaemon(config: #"{"limits":{"batch_limit":3}}"#).start()
        let params = try exampleRequest("allow-scientist-reads-own-study.json")
        func decide(_ id: Int) -> String { String(decoding: requestLine("decide", params, id: .int(Int64(id))).dropLast(), as: UTF8.self) }
        let c = try d.client()
        try c.send(line: "[" + (1...4).map(decide).joined(separator: ",") + "]")
        let r = try decodeReply(try #require(try c.readLine()))
        #expect(r.id == .null)
        guard case .failure(let e) = r.outcome else { Issue.record("the batch was answered"); return }
        #expect(e.code == RPCError.overloadedCode)
        #expect(e.data == .object(JSONObject(["limit": .int(3), "requests": .int(4)])))
        // A decide.batch inside a batch array counts its requests: 2 + 1 + 1 > 3.
        let inner = String(decoding: requestLine("decide.batch", .object(JSONObject(["requests": .array([params, params])])), id: .int(9)).dropLast(), as: UTF8.self)
        try c.send(line: "[" + inner + "," + decide(10) + "," + decide(11) + "]")
        let r2 = try decodeReply(try #require(try c.readLine()))
        if case .failure(let e2) = r2.outcome { #expect(e2.data?["requests"] == .int(4)) } else { Issue.record("answered: \(r2)") }
        #expect(try AuditDaemonTests.query(d.dir, ["--method", "decide"]).isEmpty)
        #expect(try AuditDaemonTests.query(d.dir, ["--method", "decide.batch"]).isEmpty)
        // Three fit.
        try c.send(line: "[" + (1...3).map(decide).joined(separator: ",") + "]")
        #expect(try JSON.parse(try #require(try c.readLine())).arrayValue?.count == 3)
    }

    /// Before: 1,100 connections writing a byte a second held all 1,024 slots. Now another uid
    /// trickling gets its share (then -32002), each of its lines is cut at the line timeout,
    /// and the admin (the daemon's uid) and other uids are still served meanwhile.
    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
                   "needs root and setpriv to attack as another uid"))
    func tricklingConnectionsFromAnotherUIDStarveNeitherTheAdminNorOtherUIDs() throws {
        let d = try TestDaemon(config: #"""
        {"socket":{"mode":"0666"},
         "limits":{"max_connections":48,"max_connections_per_uid":16,"reserved_admin_connections":8,"line_timeout_seconds":2}}
        """#)
        chmod(d.dir, 0o755)
        try d.start()
        let report = d.dir + "/trickle.out"
        _ = FileManager.default.createFile(atPath: report, contents: nil)
        let attacker = Process()
        attacker.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        attacker.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", daemonCustosBinary,
                              "bench", "trickle", "--socket", d.socket, "--connections", "200",
                              "--interval-ms", "200", "--seconds", "8"]
        attacker.standardOutput = FileHandle(forWritingAtPath: report)
        attacker.standardError = attacker.standardOutput
        try attacker.run()
        defer { if attacker.isRunning { attacker.terminate() }; attacker.waitUntilExit() }
        func counts() -> [String: Int] {
            let text = (try? String(contentsOfFile: report, encoding: .utf8)) ?? ""
            guard let last = text.split(separator: "\n").last(where: { $0.hasPrefix("t=") || $0.hasPrefix("done:") }) else { return [:] }
            var out: [String: Int] = [:]
            for field in last.split(separator: " ") {
                let kv = field.split(separator: "=")
                if kv.count == 2, let v = Int(kv[1]) { out[String(kv[0])] = v }
            }
            return out
        }
        // The attacker holds its share: the daemon refuses the rest.
        #expect(eventually { (counts()["refused"] ?? 0) > 0 }, "\((try? String(contentsOfFile: report, encoding: .utf8)) ?? "")")
        // The admin is served, health and reload alike.
        #expect(answersHealth(d.socket, ready: true))
        #expect((try? d.call("policy.reload").get()) != nil)
        // So is another uid: the attacker's uid holds 16 of the 40 unreserved slots.
        let other = Process()
        other.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        other.arguments = ["--reuid=65533", "--regid=65533", "--clear-groups", daemonCustosBinary, "call", "health", "--socket", d.socket]
        other.standardOutput = FileHandle.nullDevice
        other.standardError = FileHandle.nullDevice
        try other.run()
        other.waitUntilExit()
        #expect(other.terminationStatus == 0)
        attacker.waitUntilExit()
        let done = counts()
        #expect((done["cut"] ?? 0) > 0, "no line was cut at the line timeout: \(done)")
        #expect((done["refused"] ?? 0) > 0)
        #expect(answersHealth(d.socket, ready: true))
    }
}
