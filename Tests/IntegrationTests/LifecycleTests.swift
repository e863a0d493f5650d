import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Testing

extension DaemonIntegrationTests {
    @Test func aBrokenPolicyReloadKeepsTheOldRevisionBySIGHUPAndByPolicyReload() throws {
        let d = try TestDaemon(config: #"{"access":{"methods":{"policy.reload":"anyone"}}}"#).start()
        let c = try d.client()
        let before = try #require(try c.call("policy.status").get().objectValue?["revision"]?.stringValue)
        try d.write("50-broken.cedar", "permit(principal, action, resource) when { 1 + };")
        let r = try c.call("policy.reload")
        #expect(errorCodeOf(r) == -32004)
        if case .failure(let e) = r { #expect(e.message.contains("50-broken.cedar") && e.message.contains(before)) }
        // The policy.reload above already recorded this error, so clear it first: only the
        // SIGHUP can then bring it back.
        try FileManager.default.removeItem(atPath: d.policies + "/50-broken.cedar")
        _ = try c.call("policy.reload").get()
        #expect(try c.call("policy.status").get().objectValue?["last_reload_error"] == .null)
        try d.write("50-broken.cedar", "permit(principal, action, resource) when { 1 + };")
        d.signal(SIGHUP)
        let status = try #require(eventually { () -> JSONObject? in
            let s = try? c.call("policy.status").get().objectValue
            return s?["last_reload_error"] == .null ? nil : s
        }, "the SIGHUP reload was reported")
        #expect(status["revision"] == .string(before))
        #expect(status["last_reload_error"]?.objectValue?["message"]?.stringValue?.contains("50-broken.cedar") == true)
        #expect(status["guardrails"] == .string("inactive (no configuration)"))
        #expect(decisionOf(try c.call("decide", params: try exampleRequest("allow-scientist-reads-own-study.json"))) == "allow")
        try FileManager.default.removeItem(atPath: d.policies + "/50-broken.cedar")
        let fixed = try c.call("policy.reload").get().objectValue!
        #expect(fixed["revision"] == .string(before), "the same files give the same revision")
        #expect(try c.call("policy.status").get().objectValue?["last_reload_error"] == .null)
    }

    @Test func policyReloadIsForbiddenForAUIDTheConfigDeniesTestDoubleDenyingOurOwnUID() throws {
        // The test cannot switch users, so the configuration denies the uid the test runs as;
        // the daemon's check (SO_PEERCRED uid against the rule) is the same for any uid.
        let d = try TestDaemon(config: "{\"access\":{\"methods\":{\"policy.reload\":{\"deny_uids\":[\(getuid())]}}}}").start()
        let c = try d.client()
        let before = try c.call("policy.status").get().objectValue?["revision"]
        try d.write("60-new.cedar", "permit(principal, action, resource);")
        let r = try c.call("policy.reload")
        #expect(errorCodeOf(r) == RPCError.forbiddenCode)
        if case .failure(let e) = r { #expect(e.message.contains("uid \(getuid())") && e.message.contains("policy.reload")) }
        #expect(try c.call("policy.status").get().objectValue?["revision"] == before, "a refused call changes nothing")
        #expect(decisionOf(try c.call("decide", params: try exampleRequest("deny-scientist-reads-other-study.json"))) == "deny")
    }

    @Test func sigtermAnswersEveryRequestAlreadySentRemovesTheSocketAndExitsZero() throws {
        // The drain timer cuts connections that are still busy when it fires; on a loaded
        // machine 300 audited decisions can outlast the default, and this test is about what
        // is answered, not about the timer.
        let d = try TestDaemon(config: #"{"limits":{"drain_timeout_seconds":3600}}"#).start()
        let c = try d.client()
        // Small enough to sit in the socket buffers whole, so every request is in flight when
        // the signal arrives even though the test reads nothing until then.
        let n = 300
        var burst: [UInt8] = []
        let req = try exampleRequest("allow-scientist-reads-own-study.json")
        for i in 0..<n { burst += requestLine("decide", req, id: .int(Int64(i))) }
        let writer = BackgroundWriter(fd: c.fileDescriptor, bytes: burst)
        var answered = 0
        #expect(writer.wait(), "the whole burst was sent before the signal")
        d.signal(SIGTERM)
        while let l = try c.readLine() {
            let r = try decodeReply(l)
            #expect(r.id == .int(Int64(answered)) && decisionOf(r.outcome) == "allow")
            answered += 1
        }
        #expect(answered == n, "in-flight requests are answered before the daemon exits")
        #expect(d.waitForExit() == 0)
        #expect(!FileManager.default.fileExists(atPath: d.socket), "the socket file is removed")
    }

    /// Start-up errors say each thing once: no "custos: custos serve:" and no "access
    /// configuration: access configuration".
    @Test func aConfigurationErrorIsPrintedOnceWithoutRepeatedPrefixes() throws {
        let dir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #"{"access":{"methods":{"decidee":"anyone"}}}"#.write(toFile: dir + "/c.json", atomically: true, encoding: .utf8)
        let out = try runCustosCommand(["serve", "--config", dir + "/c.json", "--policies", daemonExamplePolicies,
                                        "--state", dir + "/state", "--no-audit", "--log-format", "text"])
        #expect(out.status == 2)
        #expect(out.err.contains(#"error daemon.start_failed: access configuration: access.methods names unknown method "decidee""#), "\(out.err)")
        #expect(out.err.contains("warning audit.disabled: running WITHOUT an audit log"), "\(out.err)")
        for repeated in ["custos: custos", "access configuration: access configuration"] {
            #expect(!out.err.contains(repeated), "\(out.err)")
        }
        #expect(out.err.components(separatedBy: "decidee").count == 2, "the error is printed once: \(out.err)")
    }

    /// The start-up banner suggests commands for the folder being served, naming the binary as
    /// it was started, and each of them works as printed.
    @Test(arguments: [true, false])
    func theBannersCommandsWorkForTheFolderServed(withExamples: Bool) throws {
        let d = try TestDaemon()
        if withExamples {
            try FileManager.default.createDirectory(atPath: d.policies + "/requests", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: daemonExamplePolicies + "/requests/allow-scientist-reads-own-study.json",
                                             toPath: d.policies + "/requests/allow-first.json")
        }
        try d.start()
        d.signal(SIGTERM)
        #expect(d.waitForExit() == 0)
        let banner = d.stdoutText()
        let commands = banner.split(separator: "\n").compactMap { line -> String? in
            let t = line.hasPrefix("try:") ? line.dropFirst(4) : line
            let c = t.drop(while: { $0 == " " })
            return c.hasPrefix(daemonCustosBinary + " ") ? String(c) : nil
        }
        #expect(commands.count == (withExamples ? 2 : 1), "\(banner)")
        #expect(commands.contains { $0.contains("call decide") } == withExamples, "\(banner)")
        #expect(!banner.contains("alice") || withExamples)
        // The commands name the first daemon's socket: serve the same folder there again.
        let again = try TestDaemon(socket: d.socket)
        try again.start()
        for c in commands {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", c]
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0, "\(c)")
        }
    }

    @Test func serveHelpListsEveryMethod() throws {
        let dir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #"{"access":{"methods":{"nope":"anyone"}}}"#.write(toFile: dir + "/c.json", atomically: true, encoding: .utf8)
        let refused = try runCustosCommand(["serve", "--config", dir + "/c.json", "--state", dir + "/s", "--no-audit"])
        let listed = try #require(refused.err.components(separatedBy: "known methods: ").last?.components(separatedBy: ";").first)
        let methods = listed.components(separatedBy: ", ")
        #expect(methods.count >= 19, "\(refused.err)")
        let help = try runCustosCommand(["serve", "--help"]).out
        for m in methods { #expect(help.contains(" " + m + ",") || help.contains(" " + m + "\n"), "serve --help does not list \(m)") }
    }

    @Test func aStaleSocketFileIsReplacedButALiveDaemonIsNot() throws {
        let dir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/custos.sock"
        // A socket file nobody listens on, as a crashed daemon leaves it.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in path.utf8.enumerated() { p[i] = b }
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        close(fd)
        try #require(bound == 0 && FileManager.default.fileExists(atPath: path))

        let live = try TestDaemon(socket: path).start()
        #expect((try? live.call("health").get()) != nil, "the stale socket was replaced")

        let second = try TestDaemon(socket: path)
        try second.process.run()
        #expect(second.waitForExit() == 2)
        #expect(second.stderrText().contains("already serving"))
        #expect((try? live.call("health").get()) != nil, "the live daemon keeps its socket")
    }

    @Test func connectionsOverTheLimitGetTheOverloadedError() throws {
        let d = try TestDaemon(config: #"{"limits":{"max_connections":2}}"#).start()
        // The start-up probe's connection is released asynchronously after it closes, so take
        // the two slots by retrying until both connections are admitted.
        func admitted() throws -> RPCClient? {
            try eventually { () throws -> RPCClient? in
                let c = try d.client()
                if (try? c.call("health").get()) != nil { return c }
                c.close()
                return nil
            }
        }
        let a = try #require(try admitted()), b = try #require(try admitted())
        _ = (a, b)
        let c = try d.client()
        let line = try #require(try c.readLine())
        #expect(errorCodeOf(try decodeReply(line).outcome) == RPCError.overloadedCode)
    }

    @Test func theSocketIsCreatedWithMode0660OrTheModeGiven() throws {
        let d = try TestDaemon().start()
        let e = try TestDaemon(extraArguments: ["--socket-mode", "0600"]).start()
        func mode(_ p: String) throws -> Int {
            (try FileManager.default.attributesOfItem(atPath: p)[.posixPermissions] as? NSNumber)?.intValue ?? -1
        }
        #expect(try mode(d.socket) == 0o660)
        #expect(try mode(e.socket) == 0o600)
    }

    @Test func custosDecideExitsZeroOnAllowOneOnDenyTwoOnError() throws {
        let d = try TestDaemon().start()
        let base = ["decide", "--socket", d.socket, "--principal", "User::\"alice\"", "--action", "Action::\"read\""]
        let allow = try runCustosCommand(base + ["--resource", "Dataset::\"onc301-de-clinical\"", "--context", #"{"purpose":"primary_research","region":"eu-central-1"}"#])
        #expect(allow.status == 0, "\(allow.err)")
        #expect(allow.out.contains("\"decision\":\"allow\""))
        #expect(try runCustosCommand(base + ["--resource", "Dataset::\"card201-us-ehr\""]).status == 1)
        let badUID = try runCustosCommand(base + ["--resource", "Dataset:onc301-de-clinical"])
        #expect(badUID.status == 2)
        #expect(badUID.err.contains("--resource"))
        #expect(try runCustosCommand(base + ["--resource", "Dataset::\"x\"", "--context", "[1]"]).status == 2)
        let unreachable = try runCustosCommand(["decide", "--socket", d.dir + "/nope.sock", "--principal", "User::\"a\"",
                                         "--action", "Action::\"read\"", "--resource", "Dataset::\"x\""])
        #expect(unreachable.status == 2)
    }

    @Test func custosCallPrintsTheResultOrTheErrorWithExitTwo() throws {
        let d = try TestDaemon().start()
        let ok = try runCustosCommand(["call", "policy.status", "--socket", d.socket])
        #expect(ok.status == 0)
        let status = try JSON.parse(ok.out).objectValue
        #expect(status?["policies"] == .int(15))
        #expect(status?["guardrails"] == .string("inactive (no configuration)"))
        let bad = try runCustosCommand(["call", "decide", "{}", "--socket", d.socket])
        #expect(bad.status == 2)
        #expect(bad.out.contains("-32602") && bad.err.contains("params.principal"))
    }

    @Test func twoHundredFiftySixConnectionsOpenAtOnceAreAllServed() throws {
        let d = try TestDaemon().start()
        let clients = try (0..<256).map { _ in try d.client() }
        let req = try exampleRequest("deny-scientist-reads-other-study.json")
        for c in clients { try c.send(line: requestLine("decide", req, id: .int(1))) }
        var denies = 0
        for c in clients {
            if let l = try c.readLine(), decisionOf(try decodeReply(l).outcome) == "deny" { denies += 1 }
        }
        #expect(denies == 256)
    }

    @Test func anIdleConnectionIsClosedAfterTheConfiguredTimeout() throws {
        let d = try TestDaemon(config: #"{"limits":{"idle_timeout_seconds":1}}"#).start()
        let c = try d.client()
        #expect((try? c.call("health").get()) != nil)
        let t0 = Date()
        #expect(try c.readLine() == nil, "the daemon closes a connection that sends nothing")
        #expect(Date().timeIntervalSince(t0) >= 0.9)
    }
}
