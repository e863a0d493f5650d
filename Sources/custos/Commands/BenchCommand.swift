import Foundation
import Cedar
import CustosJSON
import CustosServer

/// `custos bench`: benchmarks that print figures (never asserted by tests).
enum BenchCommand {
    static let spec = CommandSpec(
        name: "bench",
        summary: "Measure speed: `bench cedar` (in-process engine), `bench socket` (daemon round trips), `bench place` (scheduler hook), `bench validate` (schema validation), `bench trickle` (a slow-connection attack), `bench http` (the HTTP front door beside JSON-RPC), `bench fleet` (shared state store: writes and propagation), `bench extender` (the Kubernetes scheduler extender over HTTP), `bench fsync` (what the audit log's durable commits cost on a disk).",
        usage: "custos bench cedar [--workload grants|forbids] [--policies N] [--requests M] [--seed S] [--write DIR]\n       custos bench socket [--clients N] [--requests M] [--pipeline D] [--echo [--echo-process] [--rounds R]] [--folder DIR [--audit-sync MODE | --no-audit] | --socket PATH] [--method NAME] [--request FILE]\n       custos bench echo-server --socket PATH\n       custos bench place [--folder DIR] [--nodes N] [--iterations K]\n       custos bench validate [--policies N | --corpus DIR | --folder DIR [--request FILE]] [--rounds R]\n       custos bench trickle [--socket PATH] [--connections N] [--interval-ms MS] [--seconds S]\n       custos bench http --http PATH|127.0.0.1:PORT [--path DATA_PATH] [--input FILE] [--request FILE] [--socket PATH] [--clients N] [--requests M] [--rounds R]\n       custos bench fleet --socket PATH --socket PATH... [--changes N] [--dataset ID]\n       custos bench extender --http PATH|127.0.0.1:PORT... [--verb filter|prioritize] [--gateway NAME] [--input FILE] [--clients N] [--requests M] [--warmup W] [--rounds R]\n       custos bench fsync [--dir DIR] [--rounds R] [--syncs N] [--bytes B]",
        options: [
            OptionSpec(name: "workload", valueName: "NAME", help: "cedar: grants (default; 10,000 entities, N generated policies) or forbids (3,000 entities, 25 fixed rules, 14 of them forbids reading context and attributes)."),
            OptionSpec(name: "policies", valueName: "N", help: "Policies in the generated set (default 20; grants workload only)."),
            OptionSpec(name: "requests", valueName: "M", help: "Requests to decide (cedar: default 100000; socket: per client, default 20000; extender: per client per round, default 300)."),
            OptionSpec(name: "seed", valueName: "S", help: "Workload seed (default 1)."),
            OptionSpec(name: "folder", valueName: "DIR", help: "place: policies folder whose guardrails/ configuration is used (default policies); socket: the scratch daemon's policies folder (default policies); validate: a folder with a schema, to time validate_requests on a decide request."),
            OptionSpec(name: "nodes", valueName: "N", help: "place: candidate nodes per call (default 1000)."),
            OptionSpec(name: "iterations", valueName: "K", help: "place: timed calls (default 500)."),
            OptionSpec(name: "write", valueName: "DIR", help: "Also write the workload (policies.cedar, entities.json, requests.jsonl) to DIR."),
            OptionSpec(name: "clients", valueName: "N", help: "socket: concurrent connections, one thread each (default 1)."),
            OptionSpec(name: "pipeline", valueName: "D", help: "socket: requests in flight per connection (default 1)."),
            OptionSpec(name: "echo", valueName: nil, help: "socket: first run the same load against an in-process echo server (the floor) and compare."),
            OptionSpec(name: "echo-process", valueName: nil, help: "socket: with --echo, run the echo server as a separate process, as the daemon is."),
            OptionSpec(name: "rounds", valueName: "R", help: "socket: with --echo, alternate echo and daemon R times and report the medians (default 1); validate: timed rounds (default 20); extender: rounds over the listeners (default 5); fsync: rounds over the patterns (default 5)."),
            OptionSpec(name: "socket", valueName: "PATH", help: "socket: measure the daemon already serving PATH instead of a scratch one; its audit log records every benchmark decision, so never point it at a production daemon. trickle, http: the daemon's socket (default $CUSTOS_SOCKET, else state/custos.sock); fleet: each daemon's, repeated, the first written through."),
            OptionSpec(name: "request", valueName: "FILE", help: "socket, validate --folder: decide params to send or read (default: a data scientist reading a dataset of her study)."),
            OptionSpec(name: "audit-sync", valueName: "MODE", help: "socket: the scratch daemon's --audit-sync (always, batch, off; default always)."),
            OptionSpec(name: "no-audit", valueName: nil, help: "socket: run the scratch daemon without an audit log."),
            OptionSpec(name: "method", valueName: "NAME", help: "socket: the method to call (default decide; e.g. place with a --request of nodes)."),
            OptionSpec(name: "corpus", valueName: "DIR", help: "validate: the extracted upstream corpus-tests folder, instead of the workload."),
            OptionSpec(name: "connections", valueName: "N", help: "trickle: connections to hold, each sending a byte per interval of a line that never ends (default 1100)."),
            OptionSpec(name: "interval-ms", valueName: "MS", help: "trickle: milliseconds between bytes (default 1000)."),
            OptionSpec(name: "seconds", valueName: "S", help: "trickle: how long to keep it up (default 30)."),
            OptionSpec(name: "http", valueName: "ADDR", help: "http: a listener of the HTTP front door, a socket path or 127.0.0.1:PORT; extender: the same, repeated to compare listeners (rounds alternate)."),
            OptionSpec(name: "verb", valueName: "VERB", help: "extender: filter (default) or prioritize."),
            OptionSpec(name: "gateway", valueName: "NAME", help: "extender: the kubernetes gateway's name, /scheduler/NAME/... (default k8s)."),
            OptionSpec(name: "warmup", valueName: "W", help: "extender: untimed requests per client before each round (default 50)."),
            OptionSpec(name: "path", valueName: "DATA_PATH", help: "http: the OPA data path of a minio or rgw gateway (default minio/authz)."),
            OptionSpec(name: "input", valueName: "FILE", help: "http: the OPA request body (default: MinIO asking for alice's read of onc301/de/clinical/...); extender: the ExtenderArgs body (default Tests/SchedulerExtenderTests/Fixtures/filter-names-1000-args.json)."),
            OptionSpec(name: "changes", valueName: "N", help: "fleet: changes written through the first --socket (default 1000)."),
            OptionSpec(name: "dataset", valueName: "ID", help: "fleet: the dataset the hold.set changes name (default onc301-de-feasibility)."),
            OptionSpec(name: "dir", valueName: "DIR", help: "fsync: where to put the scratch files, on the disk the audit log lives on (default .)."),
            OptionSpec(name: "syncs", valueName: "N", help: "fsync: timed syncs per pattern and round (default 300)."),
            OptionSpec(name: "bytes", valueName: "B", help: "fsync: bytes appended per sync, a batch of entries (default 8192)."),
        ],
        details: """
        bench socket sends the same `decide` request over and over (M per client, after a warm-up)
        and prints throughput and p50/p99/p999 round-trip latency. It starts a scratch daemon of
        its own (custos serve on --folder, with its audit log in a temporary state folder that
        is removed afterwards), so no benchmark decision lands in a real log; --socket PATH
        measures a daemon already running instead. --echo puts
        the echo floor (jansson parse + fixed reply, same transport) beside it with the ratios.
        When the daemon (or the --echo-process floor) runs on this machine, each run also prints
        its context switches and CPU time per request, read from /proc/PID before and after.
        bench fsync times, on the disk of --dir, what an `always` commit is made of: a batch
        appended to a segment and fdatasync'ed, a checkpoint written into checkpoint.head and
        fdatasync'ed, the two in turn, and a write into an already-written file.
        bench http runs the same decision through the front door's OPA data API and through JSON-RPC
        (default 4 clients, 5 alternating rounds) and prints both with the p50 ratio per round.
        The cedar workloads (grants: 10,000 entities in 3-level hierarchies, five policy shapes;
        forbids: 3,000 entities, a 4-level role hierarchy, 25 rules of which 14 forbids) are
        described in docs/benchmarks.md. Prints decisions/s and p50/p99 microseconds per authorization, timed
        one by one in-process after loading. bench/cedar_vs_cedarpy.sh runs it beside cedarpy.
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        if args.positionals.first == "socket" { return try runSocket(args) }
        if args.positionals.first == "echo-server" { return try runEchoServer(args) }
        if args.positionals.first == "place" { return try runPlace(args) }
        if args.positionals.first == "validate" { return try runValidate(args) }
        if args.positionals.first == "trickle" { return try runTrickle(args) }
        if args.positionals.first == "http" { return try runHTTP(args) }
        if args.positionals.first == "fleet" { return try runFleet(args) }
        if args.positionals.first == "extender" { return try runExtender(args) }
        if args.positionals.first == "fsync" { return try runFsync(args) }
        guard args.positionals.first == "cedar" else {
            throw UsageError(message: "usage: \(spec.usage)")
        }
        let m = try args.int("requests", default: 100_000)
        let seed = UInt64(try args.int("seed", default: 1))
        let policyText: String, entitiesJSON: JSON, requestsJSON: [JSON], schemaText: String?
        switch args.value("workload") ?? "grants" {
        case "grants":
            let n = try args.int("policies", default: 20)
            guard n > 0, m > 0 else { throw UsageError(message: "--policies and --requests must be positive") }
            let w = CedarWorkload(policies: n, requests: m, seed: seed)
            (policyText, entitiesJSON, requestsJSON, schemaText) = (w.policyText, w.entitiesJSON, w.requests, CedarWorkload.schemaText)
        case "forbids":
            guard args.value("policies") == nil else { throw UsageError(message: "--policies applies to the grants workload only (forbids has 25 fixed rules)") }
            guard m > 0 else { throw UsageError(message: "--requests must be positive") }
            let w = ForbidsWorkload(requests: m, seed: seed)
            (policyText, entitiesJSON, requestsJSON, schemaText) = (w.policyText, w.entitiesJSON, w.requests, nil)
        case let other:
            throw UsageError(message: "unknown workload \"\(other)\" (grants or forbids)")
        }
        if let dir = args.value("write") {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try policyText.write(toFile: dir + "/policies.cedar", atomically: true, encoding: .utf8)
            if let schemaText { try schemaText.write(toFile: dir + "/schema.cedarschema", atomically: true, encoding: .utf8) }
            try entitiesJSON.serialized.write(toFile: dir + "/entities.json", atomically: true, encoding: .utf8)
            try requestsJSON.map(\.serialized).joined(separator: "\n").appending("\n")
                .write(toFile: dir + "/requests.jsonl", atomically: true, encoding: .utf8)
        }
        let policies = try PolicySet.parse(policyText, file: "bench.cedar")
        let entities = try EntityStore.load(json: entitiesJSON)
        let requests = try requestsJSON.map { try Request(json: $0) }

        // Warm up caches and the allocator before timing.
        var allows = 0
        for r in requests.prefix(1_000) where policies.authorize(r, entities: entities).decision == .allow { allows += 1 }
        allows = 0
        var samples = [UInt64](repeating: 0, count: requests.count)
        let start = monotonicNanos()
        for (i, r) in requests.enumerated() {
            let t0 = monotonicNanos()
            if policies.authorize(r, entities: entities).decision == .allow { allows += 1 }
            samples[i] = monotonicNanos() - t0
        }
        let total = monotonicNanos() - start
        samples.sort()
        let pct = { (p: Double) in Double(samples[min(samples.count - 1, Int(Double(samples.count) * p))]) / 1000 }
        print(String(format: "cedar in-process: policies=%d entities=%d requests=%d allow=%d", policies.policies.count, entities.count, m, allows))
        print(String(format: "  %.0f decisions/s  mean %.2f us  p50 %.2f us  p99 %.2f us",
                     Double(m) / (Double(total) / 1e9), Double(total) / Double(m) / 1000, pct(0.50), pct(0.99)))
        return 0
    }

    /// The median of rounds' figures, shared by every bench command that alternates rounds.
    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

// MARK: - bench socket

extension BenchCommand {
    /// Decide params matching the example policies in policies/: an allowed read.
    static let defaultDecideParams = #"{"principal":{"type":"User","id":"alice"},"action":{"type":"Action","id":"read"},"resource":{"type":"Dataset","id":"onc301-de-clinical"},"context":{"purpose":"primary_research","region":"eu-central-1"}}"#

    static func runSocket(_ args: ParsedArguments) throws -> Int32 {
        let clients = try args.int("clients", default: 1)
        let requests = try args.int("requests", default: 20_000)
        let depth = try args.int("pipeline", default: 1)
        guard clients > 0, requests > 0, depth > 0 else { throw UsageError(message: "--clients, --requests and --pipeline must be positive") }
        // A scratch daemon unless told otherwise: a benchmark writes hundreds of megabytes of
        // decisions nobody made, which must never reach a real audit log.
        var scratch: ScratchDaemon? = nil
        let socket: String
        if let s = args.value("socket") {
            socket = s
            print("note: measuring the daemon on \(s); its audit log records every benchmark decision")
        } else {
            var serveOptions: [String] = []
            if let mode = args.value("audit-sync") { serveOptions += ["--audit-sync", mode] }
            if args.flag("no-audit") { serveOptions.append("--no-audit") }
            let d = try ScratchDaemon(policies: args.value("folder") ?? "policies", serveOptions: serveOptions)
            scratch = d
            socket = d.socket
            print("scratch daemon: pid \(d.process.processIdentifier), state \(d.directory) (removed afterwards)")
        }
        defer { scratch?.stop() }
        var params = defaultDecideParams
        if let f = args.value("request") {
            let text = try IO.readText(f)
            do { params = try JSON.parse(text).serialized } catch { throw UsageError(message: "\(f): not valid JSON (\(error))") }
        }
        let method = args.value("method") ?? "decide"
        let line = #"{"jsonrpc":"2.0","method":"# + JSON.string(method).serialized + #","params":"# + params + #","id":1}"#

        // Check the request is answered (not refused) before measuring it.
        switch try CallCommand.call(method, params: try JSON.parse(params), socket: socket) {
        case .success(let r):
            let o = r.objectValue
            let what = o?["decision"]?.stringValue ?? o?["allowed"]?.arrayValue.map { "\($0.count) allowed" } ?? "answered"
            print("daemon \(socket): \(method) -> \(what) (revision \(o?["policy_revision"]?.stringValue ?? "?"))")
        case .failure(let e):
            throw UsageError(message: "the daemon refused the benchmark request: \(e.code) \(e.message)")
        }
        print("load: \(clients) client(s) x \(requests) requests, pipeline \(depth), request \(line.utf8.count + 1) bytes")

        let rounds = try args.int("rounds", default: 1)
        guard rounds > 0 else { throw UsageError(message: "--rounds must be positive") }
        guard args.flag("echo") else {
            let daemon = try measure(path: socket, line: line, clients: clients, requests: requests, depth: depth)
            print("daemon \(daemon)")
            return daemon.errors == 0 ? 0 : 1
        }
        // On a shared machine one pair of runs can differ by a third either way; alternating
        // the two several times and comparing medians keeps a noisy moment from deciding.
        let path = "/tmp/custos-bench-echo-\(getpid()).sock"
        var child: Process? = nil
        var inProcess: EchoServer? = nil
        if args.flag("echo-process") {
            // Same process boundary as the daemon: the client and the floor do not share an
            // address space, so context switches cost what they cost against the daemon.
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            p.arguments = ["bench", "echo-server", "--socket", path]
            try p.run()
            child = p
            var up = false
            for _ in 0..<500 where !up {
                if (try? RPCClient(path: path, timeout: .seconds(1))) != nil { up = true } else { usleep(10_000) }
            }
            guard up else { p.terminate(); throw UsageError(message: "the echo server process did not start on \(path)") }
        } else {
            let server = EchoServer(configuration: echoConfiguration(path), reply: echoReply)
            do { try server.start() } catch { throw UsageError(message: "cannot start the echo server on \(path): \(error)") }
            inProcess = server
        }
        defer {
            if let child { child.terminate(); child.waitUntilExit() }
            inProcess?.stop()
        }
        let where_ = child != nil ? "(separate process)" : "(in-process)"
        var echoes: [BenchResult] = []
        var daemons: [BenchResult] = []
        for r in 0..<rounds {
            let tag = rounds > 1 ? " [\(r + 1)/\(rounds)]" : ""
            let e = try measure(path: path, line: line, clients: clients, requests: requests, depth: depth)
            print("echo   \(e)  \(where_)\(tag)")
            let d = try measure(path: socket, line: line, clients: clients, requests: requests, depth: depth)
            print("daemon \(d)\(tag)")
            echoes.append(e)
            daemons.append(d)
        }
        func f(_ v: Double) -> String { String(format: "%.2f", v) }
        let ep50 = median(echoes.map(\.p50Micros)), dp50 = median(daemons.map(\.p50Micros))
        let ep99 = median(echoes.map(\.p99Micros)), dp99 = median(daemons.map(\.p99Micros))
        let eRate = median(echoes.map(\.requestsPerSecond)), dRate = median(daemons.map(\.requestsPerSecond))
        if rounds > 1 {
            print("median echo \(f(eRate)) req/s p50 \(f(ep50)) us p99 \(f(ep99)) us; "
                  + "daemon \(f(dRate)) req/s p50 \(f(dp50)) us p99 \(f(dp99)) us (over \(rounds) rounds)")
        }
        let usage = daemons.compactMap(\.server)
        if usage.count == daemons.count, !usage.isEmpty {
            let echoUsage = echoes.compactMap(\.server)
            let echoPart = echoUsage.count == echoes.count && !echoUsage.isEmpty
                ? "; echo \(f(median(echoUsage.map(\.switchesPerRequest)))) ctx switches/req, \(f(median(echoUsage.map(\.cpuMicrosPerRequest)))) us CPU/req" : ""
            print("median daemon \(f(median(usage.map(\.switchesPerRequest)))) ctx switches/req, "
                  + "\(f(median(usage.map(\.cpuMicrosPerRequest)))) us CPU/req\(echoPart)")
        }
        print("ratio  p50 latency daemon/echo \(f(dp50 / max(ep50, 0.001)))x, "
              + "p99 \(f(dp99 / max(ep99, 0.001)))x, "
              + "throughput daemon/echo \(f(100 * dRate / max(eRate, 0.001)))%")
        return daemons.allSatisfy({ $0.errors == 0 }) ? 0 : 1
    }

    /// The echo reply has the daemon's shape and size, so both write the same bytes.
    static let echoReply = #"{"jsonrpc":"2.0","result":{"decision":"allow","reasons":["scientist-analyses-own-study"],"errors":[],"decision_id":"019ab5c0-0000-7000-8000-000000000000","policy_revision":"sha256:0000000000000000000000000000000000000000000000000000000000000000"},"id":1}"#

    static func echoConfiguration(_ path: String) -> ServerConfiguration {
        var cfg = ServerConfiguration(socketPath: path)
        cfg.socketMode = 0o600
        return cfg
    }

    /// `custos bench echo-server --socket PATH`: the floor as its own process (see --echo-process).
    static func runEchoServer(_ args: ParsedArguments) throws -> Int32 {
        let path = try args.required("socket")
        let server = EchoServer(configuration: echoConfiguration(path), reply: echoReply)
        let stopped = DispatchSemaphore(value: 0)
        let watcher = SignalWatcher(signals: [SIGTERM, SIGINT]) { _ in
            server.stop()
            stopped.signal()
        }
        defer { watcher.cancel() }
        do { try server.start() } catch { throw UsageError(message: "cannot start the echo server on \(path): \(error)") }
        stopped.wait()
        return 0
    }

    private static func measure(path: String, line: String, clients: Int, requests: Int, depth: Int) throws -> BenchResult {
        var o = BenchOptions(socketPath: path, request: line)
        o.clients = clients
        o.requestsPerClient = requests
        o.pipelineDepth = depth
        do { return try Bench.run(o) } catch { throw UsageError(message: "\(path): \(error)") }
    }
}

/// `custos serve` in a temporary folder for `bench socket`: the same binary, the given policies,
/// its own state folder (audit log included, so the figures include logging), removed on stop.
final class ScratchDaemon {
    let directory: String
    let socket: String
    let process = Process()

    init(policies: String, serveOptions: [String] = []) throws {
        var template = Array("/tmp/custos-bench-XXXXXX".utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw UsageError(message: "cannot create a scratch folder in /tmp: \(String(cString: strerror(errno)))")
        }
        directory = String(cString: p)
        socket = directory + "/custos.sock"
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["serve", "--policies", policies, "--state", directory + "/state", "--socket", socket,
                             "--log-format", "text"] + serveOptions
        process.standardOutput = FileHandle.nullDevice
        do { try process.run() } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw UsageError(message: "cannot start a scratch daemon: \(error)")
        }
        // Up to 60 s: a loaded machine starts slowly; a daemon that exits is reported at once.
        for _ in 0..<6000 {
            if !process.isRunning { break }
            if let c = try? RPCClient(path: socket, timeout: .seconds(5)) {
                let ready = (try? c.call("health").get())?.objectValue?["ready"] == .bool(true)
                c.close()
                if ready { return }
            }
            usleep(10_000)
        }
        stop()
        throw UsageError(message: "the scratch daemon on \(policies) did not become ready (see its messages above)")
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
