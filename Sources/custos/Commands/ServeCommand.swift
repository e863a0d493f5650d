import AuditLog
import CustosDaemon
import FleetStore
import CustosLog
import CustosSystemd
import Foundation
import Metrics

/// `custos serve`: the decision daemon on a Unix socket.
enum ServeCommand {
    static let spec = CommandSpec(
        name: "serve",
        summary: "Run the decision daemon: JSON-RPC 2.0, one message per line, on a Unix socket.",
        usage: "custos serve [--policies DIR | --bundles DIR --trust FILE] [--socket PATH] [--state DIR] [--config FILE] [--socket-mode OCTAL] [--region NAME]\n       [--log-format auto|json|text] [--audit-sync always|batch|off] [--audit-batch-ms MS] [--checkpoint-every N]\n       [--audit-segment-bytes N] [--audit-segment-seconds S] [--audit-context KEY,...] [--no-audit]",
        options: [
            OptionSpec(name: "policies", valueName: "DIR", help: "Policies folder: *.cedar files and entities.json (default policies)."),
            OptionSpec(name: "bundles", valueName: "DIR", help: "Serve the newest approved policy bundle of DIR instead of a policies folder, and watch DIR for new ones (docs/change-control.md)."),
            OptionSpec(name: "trust", valueName: "FILE", help: "With --bundles: approvers.json, who may approve a bundle (keys, roles, threshold); keep it where authors cannot write."),
            OptionSpec(name: "state", valueName: "DIR", help: "Folder for the daemon's runtime files (default state; created when missing)."),
            OptionSpec(name: "socket", valueName: "PATH", help: "Socket path (default STATE/custos.sock)."),
            OptionSpec(name: "config", valueName: "FILE", help: "JSON configuration: socket mode, limits, method access by uid/gid (docs/operations.md), the HTTP front door (docs/gateways.md)."),
            OptionSpec(name: "socket-mode", valueName: "OCTAL", help: "Socket file mode, overriding the configuration (default 0660)."),
            OptionSpec(name: "region", valueName: "NAME", help: "The region this daemon decides for (a regions.json name), overriding the configuration: a decide naming another region is refused, one naming none is decided for NAME (docs/security.md)."),
            OptionSpec(name: "audit-sync", valueName: "MODE", help: "always (default): an answer leaves only after its audit entry is fdatasync'd; batch: sync every --audit-batch-ms (a crash loses at most that window); off: no sync (benchmarks only)."),
            OptionSpec(name: "audit-batch-ms", valueName: "MS", help: "Sync interval of --audit-sync batch (default 10)."),
            OptionSpec(name: "checkpoint-every", valueName: "N", help: "Add a checkpoint to the history (checkpoints.log) after N new entries (default 1024), after 1 s, and at shutdown; checkpoint.head gets one after every batch."),
            OptionSpec(name: "audit-segment-bytes", valueName: "N", help: "Seal the audit log's current segment and start a new one beyond N bytes (default 67108864, at least 4096)."),
            OptionSpec(name: "audit-segment-seconds", valueName: "S", help: "Also seal it once its first entry is S seconds old (default 86400; 0: by size only). Sealed segments are what 'custos audit archive' copies."),
            OptionSpec(name: "log-format", valueName: "FORMAT", help: "auto (default): text on a terminal, JSON lines otherwise; json: one JSON object per line (time, level, event, message, fields); text: one readable line."),
            OptionSpec(name: "audit-context", valueName: "KEYS", help: "Comma-separated request context keys whose values the audit log keeps (default none)."),
            OptionSpec(name: "no-audit", valueName: nil, help: "Run without an audit log (nothing is recorded; said at start). The state folder is still created, for the consent journal."),
        ],
        details: """
        Methods (docs/protocol.md). Without a --config, whoever can open the socket may call
        \(wrapped(openMethods))
        and every other method is for the daemon's own uid only (widen it with
        access.admin_uids/admin_gids, or give one method its own rule; docs/operations.md):
        \(wrapped(adminMethods))
        The audit log lives in STATE/audit (docs/audit.md); when it cannot be written the daemon
        stops answering decisions (fail closed).
        With an `http` member in the --config file, the daemon also serves the HTTP front door
        (MinIO, Ceph RGW, Envoy, nginx, /healthz, /readyz, /metrics) on a Unix socket or loopback
        TCP, translated onto the same methods (docs/gateways.md).
        With --bundles DIR --trust FILE the daemon serves signed policy bundles instead: the newest
        in DIR that approvers.json approves, never an older one than it has served
        (docs/change-control.md); a bundle written to DIR is put in service at once.
        SIGHUP reloads the policies folder; SIGTERM or SIGINT stop accepting, answer what is in
        flight, remove the socket and exit 0. Exit 2 when the socket, the configuration or the
        state folder is unusable.
        Under systemd (deploy/systemd): a socket passed by socket activation (LISTEN_FDS) is
        served instead of binding --socket, and left in place at stop; READY=1 is sent through
        NOTIFY_SOCKET once the policies are loaded and the audit log is open, with the revision
        in STATUS=, and RELOADING=1 then READY=1 around each reload.
        """)

    static var openMethods: [String] { Daemon.methodNames.filter { DaemonConfig.openMethods.contains($0) } }
    static var adminMethods: [String] { Daemon.methodNames.filter { !DaemonConfig.openMethods.contains($0) } }

    /// Method names, comma-separated, indented two spaces, in lines of at most 96 characters.
    static func wrapped(_ names: [String]) -> String {
        var lines: [String] = [], line = " "
        for (i, n) in names.enumerated() {
            let word = " " + n + (i == names.count - 1 ? "" : ",")
            if line.count + word.count > 96 { lines.append(line); line = " " }
            line += word
        }
        return (lines + [line]).joined(separator: "\n")
    }

    /// What to try once the daemon serves, for the folder it serves: health, and a decision from
    /// the folder's own example requests when it has any. Commands name this binary as it was
    /// started, so they work as printed (`.build/release/custos` after `make run`).
    static func banner(program: String, socket: String, policies: String, bundles: Bool = false, revision: String?) -> String {
        let quoted = shellQuoted(socket)
        var s = "custos serve: socket \(socket), \(bundles ? "bundles" : "policies") \(policies), revision \(revision ?? "none (not ready: see the error above)")\n"
        s += "try:  \(program) call health --socket \(quoted)\n"
        guard revision != nil, !bundles else { return s + "      \(program) call policy.status --socket \(quoted)\n" }
        let requests = (policies as NSString).appendingPathComponent("requests")
        let examples = ((try? FileManager.default.contentsOfDirectory(atPath: requests)) ?? [])
            .filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }
            .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        if let first = examples.first(where: { $0.hasPrefix("allow") }) ?? examples.first {
            s += "      \(program) call decide --socket \(quoted) \"$(cat \(shellQuoted((requests as NSString).appendingPathComponent(first))))\"\n"
        }
        return s
    }

    /// `s` as one shell word: unchanged when it holds only safe characters, else single-quoted.
    static func shellQuoted(_ s: String) -> String {
        let safe = s.utf8.allSatisfy { b in
            (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || "/._-+,:=@".utf8.contains(b)
        }
        return safe && !s.isEmpty ? s : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    static func run(_ args: ParsedArguments) throws -> Int32 {
        let format: LogFormat
        switch args.value("log-format") ?? "auto" {
        case "auto": format = .auto
        case "json": format = .json
        case "text": format = .text
        case let other: throw UsageError(message: "--log-format expects auto, json or text, got '\(other)'")
        }
        let logger = Logger(format: format)
        // From here on every line on stderr is a log line, the reason a start failed included.
        do {
            return try serve(args, logger: logger)
        } catch let e as UsageError {
            logger.error("daemon.start_failed", e.message)
            return 2
        }
    }

    private static func serve(_ args: ParsedArguments, logger: Logger) throws -> Int32 {
        let bundlesDir = args.value("bundles")
        if bundlesDir != nil, args.value("policies") != nil {
            throw UsageError(message: "--bundles and --policies contradict each other: serve either approved bundles or a folder")
        }
        if (bundlesDir == nil) != (args.value("trust") == nil) {
            throw UsageError(message: bundlesDir == nil ? "--trust applies to --bundles only" : "--bundles needs --trust FILE (approvers.json: who may approve a bundle)")
        }
        if let b = bundlesDir, !IO.isDirectory(b) { throw UsageError(message: "--bundles \(b): no such folder") }
        let policies = bundlesDir ?? args.value("policies") ?? "policies"
        let state = args.value("state") ?? "state"
        var socket = args.value("socket") ?? (state as NSString).appendingPathComponent("custos.sock")
        var config = DaemonConfig()
        if let file = args.value("config") {
            do { config = try DaemonConfig.load(file: file) } catch { throw UsageError(message: error.description) }
        }
        if let m = args.value("socket-mode") {
            guard let mode = parseOctalMode(m) else { throw UsageError(message: "--socket-mode expects an octal mode such as 0660, got '\(m)'") }
            config.socketMode = mode
        }
        if let r = args.value("region") {
            guard !r.isEmpty else { throw UsageError(message: "--region expects the name of a region of guardrails/regions.json") }
            config.region = r
        }
        let inherited = try inheritedSocket(logger: logger, socket: &socket)
        let socketDir = (socket as NSString).deletingLastPathComponent
        if inherited == nil, !socketDir.isEmpty && !IO.isDirectory(socketDir) {
            do {
                try FileManager.default.createDirectory(atPath: socketDir, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o750])
            } catch {
                throw UsageError(message: "cannot create \(socketDir) for the socket: \(error.localizedDescription)")
            }
        }
        let audit = try openAudit(args, state: state, recordRequests: config.recordRequests, logger: logger)
        let fleet: FleetStateStore?
        do { fleet = try openSharedStore(config.state, audit: audit, state: state, logger: logger) } catch {
            try? audit?.close()
            throw error
        }
        let logDirectory = AuditState.logDirectory(state: state)
        let diskUsage: (@Sendable () -> AuditDiskUsage?)? =
            audit == nil ? nil : { @Sendable in try? AuditDiskUsage.measure(logDirectory: logDirectory) }
        let daemon: Daemon
        var options = DaemonOptions(policiesDirectory: policies, socketPath: socket, config: config,
                                    recorder: audit?.recorder, stateDirectory: state, logger: logger,
                                    notify: { ServiceManager.notify($0) }, inheritedListener: inherited,
                                    auditDiskUsage: diskUsage)
        if let b = bundlesDir, let trust = args.value("trust") {
            options.bundles = BundleFolder(directory: b, trustPath: trust, stateDirectory: state)
        }
        options.stateStore = fleet
        if let writer = audit?.writer {
            options.metricSources.append {
                writer.syncStats.families + [.gauge("custos_audit_entries", "Entries in the audit log (durable or queued).",
                                                    [MetricSample(value: .int(writer.count))])]
                    + (diskUsage?()?.metricFamilies ?? [])
            }
        }
        do {
            daemon = try Daemon(options)
        } catch {
            try? audit?.close()
            fleet?.stop()
            throw UsageError(message: error.description)
        }
        do {
            try daemon.run {
                print(banner(program: CommandLine.arguments.first ?? "custos", socket: socket, policies: policies, bundles: bundlesDir != nil,
                             revision: daemon.store.snapshot?.revision), terminator: "")
                fflush(nil)
            }
        } catch {
            try? audit?.close()
            fleet?.stop()
            throw UsageError(message: error.description)
        }
        if let audit {
            do { try audit.close() } catch {
                fleet?.stop()
                logger.error("audit.failed", "the audit log failed: \(error.description); run `custos audit verify --state \(state)`",
                             ["error": .string(error.description), "state": .string(state)])
                return 1
            }
        }
        // After the audit log's final checkpoint, so the witness sees the whole log.
        fleet?.stop()
        return 0
    }

    /// The shared state store of `state.store` (nil for the embedded journal): connected, caught
    /// up, and, with an audit log, the log checked against what the store witnessed of it before
    /// anything is served. A daemon whose log is behind its witnessed checkpoints (rolled back
    /// with its checkpoints) or disagrees with them (rewritten) refuses to start, and so does one
    /// that cannot reach the store: it could not tell (docs/fleet.md, "Starting").
    static func openSharedStore(_ config: StateConfig, audit: AuditRecorder?, state: String, logger: Logger) throws -> FleetStateStore? {
        guard let uri = config.store else { return nil }
        var key: NoteVerifierKey? = nil
        if audit != nil {
            do { key = try AuditState.readVerifierKey(path: AuditState.verifierKeyPath(state: state)) } catch {
                throw UsageError(message: "audit log: \(error.description)")
            }
        }
        // The log's name and key id: unique even when two daemons of one host share the name.
        let name = key.map { $0.text.split(separator: "+").prefix(2).joined(separator: "+") } ?? "host:" + ProcessInfo.processInfo.hostName
        let store: FleetStateStore
        do {
            store = try FleetStateStore(FleetOptions(conninfo: uri, maxStalenessMs: config.maxStalenessMs,
                                                     witnessIntervalMs: config.witnessIntervalMs, daemon: name))
        } catch {
            throw UsageError(message: "state store (state.store in the configuration): \(error.description); the daemon does not start without it (docs/fleet.md)")
        }
        guard let audit, let key else { return store }
        let witnessed: [WitnessedCheckpoint]
        do { witnessed = try store.witnessed(log: key.text) } catch {
            store.stop()
            throw UsageError(message: "state store: cannot read the witnessed checkpoints of \(key.name): \(error.description)")
        }
        let report = AuditWitness.check(logDirectory: AuditState.logDirectory(state: state), publicKey: key,
                                        witnessed: witnessed.map { WitnessNote(note: $0.note, source: "witnessed from \($0.daemon) at \($0.publishedAt)") })
        for u in report.unsigned {
            logger.warning("fleet.witness_unsigned", "the witness table holds a checkpoint of \(key.name) that does not verify, left out: \(u)",
                           ["log": .string(key.name)])
        }
        if let f = report.failure {
            store.stop()
            throw UsageError(message: "audit log in \(AuditState.logDirectory(state: state)) does not extend what the state store witnessed of it (\(AuditVerifyCommand.label(f.kind))): \(f.message). Restore the state folder from a copy that does, and see `custos audit verify --state \(state) --witness ...` (docs/fleet.md)")
        }
        let writer = audit.writer
        store.witness {
            guard let note = writer.latestCheckpoint, let cp = try? Checkpoint(signedNote: note, verifier: key) else { return nil }
            return WitnessedCheckpoint(log: key.text, size: cp.size, root: cp.root.base64, note: note)
        }
        return store
    }

    /// The listening socket systemd passed (socket activation), if any; `socket` becomes its
    /// path. More than one, or one that is not a listening Unix stream socket, is an error:
    /// binding a socket of our own beside the unit's would split the callers.
    static func inheritedSocket(logger: Logger, socket: inout String) throws -> Int32? {
        let fds: [Int32]
        switch ServiceManager.listenDescriptors() {
        case .success(let f): fds = f
        case .failure(let e): throw UsageError(message: e.description)
        }
        guard !fds.isEmpty else { return nil }
        guard fds.count == 1 else {
            throw UsageError(message: "socket activation passed \(fds.count) sockets; custos.socket must have exactly one ListenStream=")
        }
        guard ServiceManager.isListeningUnixStream(fds[0]) else {
            throw UsageError(message: "socket activation passed descriptor \(fds[0]), which is not a listening Unix stream socket; custos.socket must use ListenStream=/path")
        }
        if let path = unixSocketPath(fds[0]), !path.isEmpty {
            socket = path
        }
        logger.info("daemon.socket_activated", "using the socket passed by the service manager: \(socket) (its mode and group are the socket unit's)",
                    ["socket": .string(socket)])
        return fds[0]
    }

    private static func unixSocketPath(_ fd: Int32) -> String? {
        var addr = sockaddr_un()
        var len = socklen_t(MemoryLayout<sockaddr_un>.size)
        let rc = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard rc == 0 else { return nil }
        return withUnsafeBytes(of: addr.sun_path) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    /// The audit log per the options, or nil with --no-audit (said on stderr, so nobody runs
    /// unaudited by accident).
    static func openAudit(_ args: ParsedArguments, state: String, recordRequests: Bool = false, logger: Logger) throws -> AuditRecorder? {
        if args.flag("no-audit") {
            for o in ["audit-sync", "audit-batch-ms", "checkpoint-every", "audit-context", "audit-segment-bytes", "audit-segment-seconds"] where args.value(o) != nil {
                throw UsageError(message: "--\(o) contradicts --no-audit")
            }
            if recordRequests { throw UsageError(message: "the configuration's audit.record_requests contradicts --no-audit") }
            logger.warning("audit.disabled", "running WITHOUT an audit log (--no-audit): decisions are not recorded")
            return nil
        }
        let batchMs = try args.int("audit-batch-ms", default: 10)
        guard (1...60_000).contains(batchMs) else { throw UsageError(message: "--audit-batch-ms must be between 1 and 60000, got \(batchMs)") }
        let mode: AuditDurability
        switch args.value("audit-sync") ?? "always" {
        case "always": mode = .always
        case "batch": mode = .batch(intervalMs: batchMs)
        case "off": mode = .off
        case let other: throw UsageError(message: "--audit-sync expects always, batch or off, got '\(other)'")
        }
        if args.value("audit-batch-ms") != nil, mode != .batch(intervalMs: batchMs) {
            throw UsageError(message: "--audit-batch-ms only applies to --audit-sync batch")
        }
        let every = try args.int("checkpoint-every", default: 1024)
        guard every >= 1 else { throw UsageError(message: "--checkpoint-every must be a positive number, got \(every)") }
        let keys = (args.value("audit-context") ?? "").split(separator: ",").map { String($0) }.filter { !$0.isEmpty }
        let segmentBytes = try args.int("audit-segment-bytes", default: 64 << 20)
        guard segmentBytes >= 4096 else { throw UsageError(message: "--audit-segment-bytes must be at least 4096, got \(segmentBytes)") }
        let segmentSeconds = try args.int("audit-segment-seconds", default: 86_400)
        guard (0...(100 * 366 * 86_400)).contains(segmentSeconds) else {
            throw UsageError(message: "--audit-segment-seconds must be between 0 (by size only) and 100 years, got \(segmentSeconds)")
        }
        var options = AuditRecorderOptions(mode: mode, checkpoint: CheckpointPolicy(entries: every), contextAllowList: keys,
                                           segmentBytes: segmentBytes, segmentMaxAgeSeconds: segmentSeconds == 0 ? nil : segmentSeconds)
        options.recordRequests = recordRequests
        options.onFailure = { reason in
            logger.error("audit.failed", "the audit log stopped: \(reason); decisions are refused until the daemon is restarted on healthy storage",
                         ["error": .string(reason), "state": .string(state)])
            ServiceManager.notify("STATUS=not ready: audit log unavailable: \(reason)")
        }
        do {
            return try AuditRecorder.open(stateDirectory: state, options: options)
        } catch {
            throw UsageError(message: error.description)
        }
    }
}
