import AuditLog
import CustosGateway
import CustosJSON
import CustosLog
import CustosServer
import Guardrails
import Metrics
import Dispatch
import Glibc
import Synchronization

/// The decision daemon: loads a policies folder, answers JSON-RPC methods (see docs/protocol.md).
public enum CustosDaemonInfo {
    public static let protocolVersion = 1
}

/// How to run the daemon; `custos serve` fills it from its options.
public struct DaemonOptions: Sendable {
    public var policiesDirectory: String
    public var socketPath: String
    public var config: DaemonConfig
    /// The audit log's hook; nil runs without recording decisions.
    public var recorder: DecisionRecorder?
    /// Where durable state lives (`--state`); nil keeps nothing on disk.
    public var stateDirectory: String?
    /// One line per lifecycle event (start, load, reload, refused call, audit error, stop);
    /// `custos serve` writes them to stderr. The default discards them.
    public var logger: Logger
    /// Tells the service manager about readiness (`READY=1`, `STATUS=`, `RELOADING=1`,
    /// `STOPPING=1`; sd_notify(3)). The default tells no one.
    public var notify: @Sendable (String) -> Void
    /// A listening socket inherited from the service manager, used instead of binding
    /// `socketPath` (which then only names it in messages).
    public var inheritedListener: Int32?
    /// Disk use of the audit log, for `health` (nil without a log).
    public var auditDiskUsage: (@Sendable () -> AuditDiskUsage?)?
    /// What `metrics` reports besides the daemon's own counters (the audit log's syncs).
    public var metricSources: [@Sendable () -> [MetricFamily]] = []
    /// Serve approved bundles from a folder instead of `policiesDirectory` (`--bundles`).
    public var bundles: BundleFolder? = nil
    /// Where consent and holds live when not in the embedded journal (fleet mode: a shared
    /// store, docs/fleet.md); needs `stateDirectory`.
    public var stateStore: (any StateStore)? = nil

    public init(policiesDirectory: String, socketPath: String, config: DaemonConfig = DaemonConfig(),
                recorder: DecisionRecorder? = nil, stateDirectory: String? = nil,
                logger: Logger = Logger.discarding, notify: @escaping @Sendable (String) -> Void = { _ in },
                inheritedListener: Int32? = nil, auditDiskUsage: (@Sendable () -> AuditDiskUsage?)? = nil) {
        self.stateDirectory = stateDirectory
        self.policiesDirectory = policiesDirectory
        self.socketPath = socketPath
        self.config = config
        self.recorder = recorder
        self.logger = logger
        self.notify = notify
        self.inheritedListener = inheritedListener
        self.auditDiskUsage = auditDiskUsage
    }
}

/// Why the daemon could not start.
public enum DaemonError: Error, Sendable, CustomStringConvertible {
    case access(AccessConfigError)
    case socket(SocketError)
    /// The state folder cannot be created or is not a folder.
    case state(String)

    public var description: String {
        switch self {
        case .access(let e): "access configuration: \(e.message)"
        case .socket(let e): e.description
        case .state(let message): "state folder: \(message)"
        }
    }
}

/// Wires the policy store, the method table, the dispatcher, the socket server and the signal
/// handling together.
public final class Daemon: Sendable {
    /// Every family of methods the daemon serves. Guardrail, audit and consent methods join this
    /// list from their own files.
    public static let methodFamilies: [MethodRegistration] = [
        DecisionMethods.register,
        StatusMethods.register,
        GuardrailMethods.register,
        AuditMethods.register,
        MetricsMethods.register,
    ]

    /// Every method the daemon serves, in registration order (for help texts): the table a
    /// daemon builds, over services that hold nothing.
    public static var methodNames: [String] {
        var table = MethodTable()
        let services = DaemonServices(store: PolicyStore(directory: "/nonexistent"))
        for register in methodFamilies { register(&table, services) }
        return table.names
    }

    public let store: PolicyStore
    public let services: DaemonServices
    public let dispatcher: Dispatcher
    public let server: Server
    private let logger: Logger
    private let notify: @Sendable (String) -> Void
    /// What the service manager is told, and whether it is told yet.
    private let readiness: LateReadiness
    /// The HTTP front door, when the configuration has listeners (docs/gateways.md).
    public let gateway: Gateway?
    private let drain: Duration
    private let noteEvent: @Sendable (DaemonEvent, String) -> Void
    /// Watches a bundles folder (`--bundles`); nil for a policies folder, or when the folder
    /// cannot be watched (said at start: new bundles are then read on SIGHUP only).
    private let bundleWatcher: FolderWatcher?

    /// Builds the daemon and loads the policies once. A folder that fails to load does not
    /// stop the start: the daemon serves `health` and `policy.status` (not ready, with the
    /// reason) and answers decisions with the not-ready error until a reload succeeds.
    public init(_ options: DaemonOptions) throws(DaemonError) {
        if let state = options.stateDirectory { try Daemon.makeStateDirectory(state) }
        if let shared = options.stateStore {
            guard let state = options.stateDirectory else { throw .state("a shared state store needs a state folder (--state)") }
            try Daemon.refuseLocalJournal(state)
            GuardrailState.forStateDirectory(state).use(shared)
        }
        let region = options.config.region
        let store = PolicyStore(source: options.bundles.map { .bundles($0) } ?? .folder(options.policiesDirectory),
                                baseline: options.stateDirectory.map { GuardrailBaseline(stateDirectory: $0) }) { s throws(PolicyStoreError) in
            try DecisionMethods.checkBoundRegion(region, s)
            return s
        }
        let logger = options.logger
        let notify = options.notify
        let readiness = LateReadiness()
        self.store = store
        self.logger = logger
        self.notify = notify
        self.readiness = readiness
        let recorder = options.recorder
        // Events whose caller gets no answer to fail (start, stop, SIGHUP, refusals): a failure
        // is logged, and the recorder's health then stops every decision (fail closed).
        let noteEvent: @Sendable (DaemonEvent, String) -> Void = { event, what in
            guard let recorder else { return }
            do { try recorder.event(event) } catch {
                logger.error("audit.record_failed", "audit log could not record \(what): \(error)", ["what": .string(what), "error": .string("\(error)")])
            }
        }
        self.noteEvent = noteEvent
        let auditDiskUsage = options.auditDiskUsage
        let metrics = DaemonMetrics()
        for source in options.metricSources { metrics.addSource(source) }
        var configured = DaemonServices(store: store, limits: options.config.limits, recorder: recorder,
                                      stateDirectory: options.stateDirectory) { caller in
            let before = store.snapshot
            let previous = before?.revision
            let announce = readiness.serving.load(ordering: .acquiring)
            if announce { notify("RELOADING=1\nSTATUS=reloading the policies folder") }
            let r = store.reload { rejected in
                logger.error("bundle.refused", "bundle \(rejected.file) refused, keeping \(previous ?? "no policies"): \(rejected.reason)",
                             ["file": .string(rejected.file), "reason": .string(rejected.reason), "kept": .string(previous ?? "")])
                noteEvent(.bundleRejected(rejected, kept: previous, caller: caller), "the refused bundle")
            }
            switch r {
            case .success(let s):
                metrics.reloads.add(0)
                if let b = s.bundle, s !== before {
                    logger.info("bundle.activated", "activated bundle \(b.file): sequence \(b.sequence), change \(b.changeTicket), author \(b.author.label), approved by \(b.approvers.map(\.label).joined(separator: ", "))",
                                ["file": .string(b.file), "sequence": .uint(b.sequence), "change_ticket": .string(b.changeTicket),
                                 "revision": .string(s.revision)])
                    noteEvent(.bundleActivated(b, revision: s.revision, caller: caller), "the bundle activation")
                }
                logger.info("policy.loaded", "loaded \(s.policyCount) policies and \(s.entityCount) entities from \(store.directory), revision \(s.revision), guardrails \(s.guardrails.status)",
                            ["revision": .string(s.revision), "previous_revision": .string(previous ?? ""),
                             "policies": .uint(s.policyCount), "entities": .uint(s.entityCount),
                             "guardrails": .string(s.guardrails.status.description), "directory": .string(store.directory)])
                for w in s.warnings {
                    logger.warning("policy.warning", "warning: \(w)", ["warning": .string(w), "directory": .string(store.directory)])
                }
                noteEvent(.policyLoaded(previous: previous, revision: s.revision, caller: caller,
                                        guardrails: s.guardrails.status.description), "the policy load")
                if let off = s.switchedOff {
                    logger.warning("guardrails.switched_off", "guardrails SWITCHED OFF on purpose: \(off.lost.joined(separator: ", ")); reason (guardrails/DISABLED): \(off.reason)",
                                   ["files": .string(off.lost.joined(separator: ",")), "reason": .string(off.reason), "revision": .string(s.revision)])
                    noteEvent(.guardrailsSwitchedOff(lost: off.lost, reason: off.reason, revision: s.revision, caller: caller),
                              "the guardrail switch-off")
                }
            case .failure(let e):
                metrics.reloads.add(1)
                logger.error("policy.load_failed", "reload failed, keeping \(previous ?? "no policies"): \(e.message)",
                             ["kept_revision": .string(previous ?? ""), "error": .string(e.message), "directory": .string(store.directory)])
                noteEvent(.policyLoadFailed(kept: previous, error: e.message, caller: caller), "the failed policy load")
            }
            if announce { notify(readiness.message()) }
            return r
        }
        configured.access = options.config.access
        configured.auditDiskUsage = auditDiskUsage
        configured.metrics = metrics
        configured.region = region
        let services = configured
        self.services = services
        var table = MethodTable()
        for register in Daemon.methodFamilies { register(&table, services) }
        do {
            dispatcher = try Dispatcher(methods: table, access: options.config.access, onRefused: { method, caller in
                metrics.refused.add(0)
                logger.warning("call.refused", "refused \(method) for uid \(caller.uid) gid \(caller.gid) pid \(caller.pid)",
                               ["method": .string(method), "uid": .uint(caller.uid), "gid": .uint(caller.gid), "pid": .int(Int64(caller.pid))])
                noteEvent(.refused(method: method, caller: caller), "the refused call")
            }, commit: { index throws(RPCError) in try services.commitRecords(through: index) },
               observe: metrics.observer(methodNames: table.names))
        } catch {
            throw .access(error)
        }
        var sc = ServerConfiguration(socketPath: options.socketPath)
        let c = options.config
        sc.socketMode = c.socketMode
        sc.spinBeforeSleep = .microseconds(c.socketSpinMicroseconds)
        sc.socketGroup = c.socketGroup
        sc.maxConnections = c.limits.maxConnections
        sc.maxLineBytes = c.limits.maxLineBytes
        sc.idleTimeout = .seconds(c.limits.idleTimeoutSeconds)
        sc.writeTimeout = .seconds(c.limits.writeTimeoutSeconds)
        sc.drainTimeout = .seconds(c.limits.drainTimeoutSeconds)
        sc.lineTimeout = .seconds(c.limits.lineTimeoutSeconds)
        sc.batchLimit = c.limits.batchLimit
        sc.maxConnectionsPerUID = c.limits.maxConnectionsPerUID
        sc.reservedConnections = c.limits.reservedAdminConnections
        // The admin: the daemon's own uid, the admins of the access configuration
        // (`access.admin_uids`/`admin_gids`), and whoever the rule of policy.reload names. They
        // may take the reserved slots and have no per-uid share, so the daemon can be inspected
        // and repaired while others hold every other slot.
        let ownUID = getuid()
        let dispatcher = self.dispatcher
        let admins = c.access.defaultRule
        // An open rule names nobody (as in `namesCaller`): only listed uids and groups count.
        let adminsNamed = admins.allowedUIDs != nil || admins.allowedGIDs != nil
        sc.isPrivileged = { cred in
            cred.uid == ownUID
                || (adminsNamed && admins.permits(uid: cred.uid, gid: cred.gid, groups: cred.groups))
                || dispatcher.namesCaller(of: "policy.reload", uid: cred.uid, gid: cred.gid, groups: cred.groups)
        }
        sc.inheritedListener = options.inheritedListener
        let server = Server(configuration: sc, dispatcher: dispatcher)
        self.server = server
        readiness.bind { Daemon.readinessMessage(StatusMethods.health(services)) }
        drain = sc.drainTimeout
        let gateway = c.http.flatMap { $0.listeners.isEmpty ? nil : Gateway(config: $0, dispatcher: dispatcher) }
        self.gateway = gateway
        metrics.addSource {
            [.gauge("custos_connections", "Open connections of the JSON-RPC socket.", [MetricSample(value: .int(UInt64(max(0, server.activeConnections))))])]
                + (gateway?.families ?? [])
        }
        // Watching starts before the first load, so a bundle that lands during it is not missed.
        var bundleWatcher: FolderWatcher? = nil
        if let folder = options.bundles {
            do { bundleWatcher = try FolderWatcher(directory: folder.directory, suffix: BundleFolder.suffix) } catch {
                logger.warning("bundle.unwatched", "cannot watch \(folder.directory) (\(error.message)); new bundles are read on SIGHUP or policy.reload only",
                               ["directory": .string(folder.directory)])
            }
        }
        self.bundleWatcher = bundleWatcher
        _ = services.reload(nil)
    }

    /// What the service manager is told after the start and each reload: `READY=1` only when
    /// `health` is ready (policies loaded, audit log open), with the revision in `STATUS=`;
    /// otherwise only the reasons, so a unit whose folder fails to load stays "activating"
    /// with the reason in `systemctl status` until a reload succeeds.
    static func readinessMessage(_ health: JSON) -> String {
        let o = health.objectValue
        if o?["ready"] == .bool(true) {
            return "READY=1\nSTATUS=serving revision \(o?["revision"]?.stringValue ?? "?")"
        }
        let reasons = (o?["reasons"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: "; ")
        return "STATUS=not ready: \(reasons.replacingNewlines())"
    }

    /// Creates the state folder as the audit log does (mode 0700, its parent must exist), so
    /// that the consent journal has a home with the log switched off too (`--no-audit`);
    /// without it every guardrail decision would fail on the missing folder. A path that exists
    /// and is not a folder is refused at start rather than at the first decision.
    static func makeStateDirectory(_ path: String) throws(DaemonError) {
        if mkdir(path, 0o700) != 0 {
            let e = errno
            if e != EEXIST { throw .state("cannot create \(path): \(String(cString: strerror(e)))") }
        }
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
            throw .state("\(path) exists and is not a folder")
        }
    }

    /// With a shared store the embedded journal is not read: changes in it would silently stop
    /// counting (a withdrawal forgotten), so a daemon moved to a shared store refuses to start
    /// while its folder holds one (docs/fleet.md, "Moving to a shared store").
    static func refuseLocalJournal(_ state: String) throws(DaemonError) {
        let path = (state.hasSuffix("/") ? state : state + "/") + GuardrailConfig.folderName + "/" + ConsentStore.fileName
        var st = stat()
        guard stat(path, &st) == 0, st.st_size > 0 else { return }
        throw .state("\(path) holds consent or hold changes, and with state.store set to a shared store it would no longer be read: import it first (custos state import --state \(state) --config FILE), then move it aside")
    }

    /// Binds the socket (replacing a stale one, refusing a live one) and serves until SIGTERM
    /// or SIGINT, reloading on SIGHUP. The signal handlers are installed before the socket
    /// exists, so a client that sees the socket can never kill the daemon with SIGHUP's default
    /// action. In-flight requests are answered and the socket removed before this returns.
    public func run(onServing: () -> Void = {}) throws(DaemonError) {
        let server = self.server
        let services = self.services
        let logger = self.logger
        let noteEvent = self.noteEvent
        let gateway = self.gateway
        let drain = self.drain
        let terminated = Atomic<Bool>(false)
        // A parent may have started us with these blocked (the mask is inherited through exec,
        // e.g. from a test runner's worker thread); blocked, they would never reach the watcher.
        var set = sigset_t()
        sigemptyset(&set)
        for sig in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&set, sig) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        let notify = self.notify
        let watcher = SignalWatcher(onTerminate: { sig in
            logger.info("daemon.stopping", "signal \(sig): draining and stopping", ["signal": .int(Int64(sig))])
            notify("STOPPING=1\nSTATUS=draining and stopping")
            terminated.store(true, ordering: .sequentiallyConsistent)
            gateway?.stop(drain: drain)
            server.stop()
        }, onReload: {
            _ = services.reload(nil)
        })
        defer { watcher.cancel() }
        // A new bundle is put in service as soon as it lands in the folder; SIGHUP still works.
        bundleWatcher?.start {
            logger.info("bundle.folder_changed", "bundles folder changed: reloading", ["directory": .string(services.store.directory)])
            _ = services.reload(nil)
        }
        defer { bundleWatcher?.stop() }
        do { try server.start() } catch { throw .socket(error) }
        let inherited = server.configuration.inheritedListener != nil
        logger.info("daemon.serving", "serving on \(server.configuration.socketPath)\(inherited ? " (socket passed by the service manager)" : "")",
                    ["socket": .string(server.configuration.socketPath), "socket_activated": .bool(inherited),
                     "revision": .string(services.store.snapshot?.revision ?? "")])
        if let gateway {
            do { try gateway.start() } catch {
                server.stop()
                throw .socket(error)
            }
            logger.info("gateway.serving", "HTTP front door on \(gateway.listenerNames.joined(separator: ", "))",
                        ["listeners": .string(gateway.listenerNames.joined(separator: ", "))])
        }
        noteEvent(.started(revision: services.store.snapshot?.revision), "the start")
        // Recorded first: READY=1 promises the audit log took the start.
        readiness.serving.store(true, ordering: .releasing)
        notify(Daemon.readinessMessage(StatusMethods.health(services)))
        // A terminate signal that arrived while the socket was being bound found nothing to stop.
        if terminated.load(ordering: .sequentiallyConsistent) {
            gateway?.stop(drain: drain)
            server.stop()
        }
        onServing()
        server.wait()
        noteEvent(.stopped, "the stop")
        logger.info("daemon.stopped", "stopped")
    }

    /// Stops accepting, answers what is in flight, removes the socket.
    public func stop() {
        gateway?.stop(drain: drain)
        server.stop()
    }
}

extension String {
    /// One line: sd_notify's STATUS= ends at a newline.
    func replacingNewlines() -> String {
        split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r" }).joined(separator: " ")
    }
}

/// The readiness message needs the services, whose reload hook sends it: bound once they exist.
private final class LateReadiness: Sendable {
    /// Set once the socket accepts: from then on loads are reloads the service manager hears of.
    let serving = Atomic<Bool>(false)
    private let make = Mutex<(@Sendable () -> String)?>(nil)
    func bind(_ f: @escaping @Sendable () -> String) { make.withLock { $0 = f } }
    func message() -> String { make.withLock { $0 }?() ?? "" }
}
