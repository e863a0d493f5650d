import CustosJSON
import CustosServer
import CustosTestSupport
import CustosVersion
import Foundation
import Glibc
import Testing

/// Default access through the real `custos serve` and a real second uid: the test runs as root
/// (the daemon's own uid, its admin) and runs `custos call` as `nobody` with setpriv.
@Suite(.serialized, .enabled(if: getuid() == 0, "running a client under another uid needs root"))
struct LeastPrivilegeDaemonTests {
    static let nobody: UInt32 = 65534

    /// A daemon whose socket `nobody` can reach: mode 0666 and a folder it may traverse.
    static func daemon(config: String = #"{"socket":{"mode":"0666"}}"#, files: [String: String] = [:]) throws -> TestDaemon {
        let d = try TestDaemon(config: config, files: files)
        try #require(chmod(d.dir, 0o711) == 0)
        return try d.start()
    }

    /// `custos ARGS` as uid and gid 65534 with no supplementary groups.
    static func asNobody(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        p.arguments = ["--reuid=\(nobody)", "--regid=\(nobody)", "--clear-groups", daemonCustosBinary] + args
        return try collectOutput(p)
    }

    static let allowRequest = #"{"principal":{"type":"User","id":"alice"},"action":{"type":"Action","id":"read"},"resource":{"type":"Dataset","id":"onc301-de-clinical"},"context":{"purpose":"primary_research","region":"eu-central-1"}}"#

    @Test func aNonAdminUIDGetsDecisionsAndHealthAndIsRefusedEveryAdminMethod() throws {
        let d = try Self.daemon()
        let health = try Self.asNobody(["call", "health", "--socket", d.socket])
        #expect(health.status == 0, "\(health.err)")
        #expect(try JSON.parse(health.out).objectValue?["ready"] == .bool(true))
        let decide = try Self.asNobody(["call", "decide", Self.allowRequest, "--socket", d.socket])
        #expect(decide.status == 0, "\(decide.err)")
        #expect(try JSON.parse(decide.out).objectValue?["decision"] == .string("allow"))
        let batch = try Self.asNobody(["call", "decide.batch", #"{"requests":[\#(Self.allowRequest)]}"#, "--socket", d.socket])
        #expect(batch.status == 0, "\(batch.err)")
        for (method, params) in [("consent.get", #"{"dataset":"onc301-de-clinical"}"#), ("policy.status", nil), ("policy.reload", nil),
                                 ("nodes.list", nil), ("retention.due", nil), ("audit.query", nil), ("audit.checkpoint", nil),
                                 ("hold.set", #"{"dataset":"onc301-de-feasibility","matter":"M-1","reason":"r"}"#)] {
            let r = try Self.asNobody(["call", method] + (params.map { [$0] } ?? []) + ["--socket", d.socket])
            #expect(r.status == 2, "\(method): \(r.out)")
            #expect(try JSON.parse(r.out).objectValue?["code"] == .int(RPCError.forbiddenCode), "\(method): \(r.out)")
            #expect(r.err.contains("uid \(Self.nobody)"), "\(method): \(r.err)")
        }
        // The admin (the daemon's own uid) keeps them.
        #expect(try d.call("policy.status").get().objectValue?["ready"] == .bool(true))
        #expect(try d.call("nodes.list").get().objectValue != nil)
    }

    @Test func adminGIDsGrantTheAdminMethodsToAGroup() throws {
        let d = try Self.daemon(config: #"{"socket":{"mode":"0666"},"access":{"admin_gids":[65534]}}"#)
        let status = try Self.asNobody(["call", "policy.status", "--socket", d.socket])
        #expect(status.status == 0, "\(status.err)")
        #expect(try JSON.parse(status.out).objectValue?["ready"] == .bool(true))
    }

    /// `custos call health` is a readiness probe: 1 while the folder does not load; and the
    /// load error reaches the admin only.
    @Test func callHealthExitsOneWhenNotReadyAndShowsTheLoadErrorToAdminsOnly() throws {
        let d = try Self.daemon(files: ["50-broken.cedar": "permit(principal, action, resource) when { secret_token + };"])
        let admin = try runCustosCommand(["call", "health", "--socket", d.socket])
        #expect(admin.status == 1, "\(admin.err)")
        let answer = try #require(try JSON.parse(admin.out).objectValue)
        #expect(answer["ready"] == .bool(false) && answer["live"] == .bool(true))
        #expect(admin.out.contains("50-broken.cedar") && admin.err.contains("not ready"), "\(admin.out) \(admin.err)")
        let stranger = try Self.asNobody(["call", "health", "--socket", d.socket])
        #expect(stranger.status == 1)
        #expect(stranger.out.contains("policies not loaded"), "\(stranger.out)")
        #expect(!stranger.out.contains("50-broken.cedar") && !stranger.out.contains("secret_token"), "\(stranger.out)")
        let decide = try Self.asNobody(["call", "decide", Self.allowRequest, "--socket", d.socket])
        #expect(decide.status == 2)
        #expect(!decide.out.contains("50-broken.cedar") && !decide.out.contains("secret_token"), "\(decide.out)")
    }
}

/// The command line as a careful user expects it: help that never acts, a version, a probe,
/// and `--no-audit` with a new state folder.
@Suite struct CommandLineTests {
    /// The commands `custos --help` lists, so a command added later is covered too.
    static func listedCommands() throws -> [String] {
        let help = try runCustosCommand(["--help"])
        #expect(help.status == 0)
        let lines = help.out.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(of: "Commands:") else { return [] }
        return lines[(start + 1)...].prefix { !$0.isEmpty }.compactMap { $0.split(separator: " ").first.map(String.init) }
    }

    /// Runs custos in `cwd` with outputs in files (so a process that never ends cannot block
    /// the test on a pipe); kills it if it has not exited when `eventually` gives up.
    static func runBounded(_ args: [String], cwd: String) throws -> (status: Int32?, out: String) {
        try requireBinary()
        let outPath = Scratch.directory("custos-help") + "/out"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outPath) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: daemonCustosBinary)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: cwd)
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let exited = eventually { !p.isRunning }
        if !exited { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        let out = String(decoding: FileManager.default.contents(atPath: outPath) ?? Data(), as: UTF8.self)
        return (exited ? p.terminationStatus : nil, out)
    }

    @Test func everyListedCommandAnswersDashHAndDashDashHelpWithItsHelpAndDoesNothingElse() throws {
        let commands = try Self.listedCommands()
        #expect(commands.contains("serve") && commands.contains("call") && commands.contains("version"), "\(commands)")
        let auditSubcommands = ["verify", "query", "prove", "verify-proof", "checkpoint", "pubkey", "generate"]
        var invocations = commands.flatMap { [[$0, "-h"], [$0, "--help"]] }
        invocations += auditSubcommands.map { ["audit", $0, "-h"] }
        // Help wins wherever it stands and whatever else is wrong on the line.
        invocations += [["serve", "--policies", "policies", "-h"], ["serve", "--no-such-option", "-h"],
                        ["serve", "--state", "x", "--help", "--socket"], ["call", "health", "-h"], ["help", "serve"]]
        for args in invocations {
            let cwd = Scratch.directory("custos-help-cwd")
            defer { try? FileManager.default.removeItem(atPath: cwd) }
            let r = try Self.runBounded(args, cwd: cwd)
            #expect(r.status == 0, "custos \(args.joined(separator: " ")) exited \(r.status.map(String.init) ?? "never (killed)")")
            let name = args[0] == "help" ? args[1] : args[0]
            #expect(r.out.contains("Usage: custos \(name)"), "custos \(args.joined(separator: " ")): \(r.out)")
            #expect(r.out.contains("--help"), "the help lists --help: \(args)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: cwd).isEmpty,
                    "custos \(args.joined(separator: " ")) left files behind: it must only print help")
        }
    }

    @Test func callDashHIsHelpNotAMethodNamedDashH() throws {
        let r = try runCustosCommand(["call", "-h", "--socket", "/nonexistent/custos.sock"])
        #expect(r.status == 0)
        #expect(r.out.hasPrefix("Call one daemon method"), "\(r.out)")
    }

    @Test(arguments: [["--version"], ["version"]])
    func theVersionIsPrintedAndIsTheOneHealthReports(args: [String]) throws {
        let r = try runCustosCommand(args)
        #expect(r.status == 0)
        #expect(r.out == "custos \(CustosVersion.string)\n")
        let d = try TestDaemon().start()
        #expect(try d.call("health").get().objectValue?["version"] == .string(CustosVersion.string))
    }

    @Test func callHealthExitsZeroWhenReadyAndTwoWhenNobodyAnswers() throws {
        let d = try TestDaemon().start()
        let ready = try runCustosCommand(["call", "health", "--socket", d.socket])
        #expect(ready.status == 0, "\(ready.err)")
        let gone = try runCustosCommand(["call", "health", "--socket", d.dir + "/nobody-here.sock"])
        #expect(gone.status == 2)
    }

    /// `--no-audit` with a state folder that does not exist yet: it is created (0700, as the
    /// audit log would), and decisions that read the consent journal work.
    @Test func serveNoAuditCreatesANewStateFolderAndDecides() throws {
        let d = try TestDaemon(extraArguments: [])
        let state = d.dir + "/new-state"
        d.process.arguments! += ["--no-audit", "--state", state]  // the last --state wins
        let fm = FileManager.default
        try fm.createDirectory(atPath: d.policies + "/guardrails", withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: daemonExamplePolicies + "/guardrails") {
            try fm.copyItem(atPath: daemonExamplePolicies + "/guardrails/" + name, toPath: d.policies + "/guardrails/" + name)
        }
        try d.start()
        let c = try d.client()
        #expect(try c.call("policy.status").get().objectValue?["guardrails"]?.stringValue?.hasPrefix("active (") == true)
        let r = try c.call("decide", params: try exampleRequest("allow-scientist-reads-own-study.json"))
        #expect(decisionOf(r) == "allow", "\(r)")
        var st = stat()
        #expect(stat(state, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR && st.st_mode & 0o777 == 0o700)
        #expect(fm.fileExists(atPath: state + "/guardrails/consent.journal"))
        #expect(!fm.fileExists(atPath: state + "/audit"), "no audit log with --no-audit")
        let grant = try c.call("consent.grant", params: try JSON.parse(#"{"cohort":"onc301-de","purpose":"ml_model_training","evidence":"ICF v3"}"#))
        #expect((try? grant.get()) != nil, "\(grant)")
    }
}
