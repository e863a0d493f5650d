import AuditLog
import CustosServer
import Guardrails

/// What method handlers share. Each family of methods (decisions, status, and later
/// guardrails, audit, consent) registers itself from its own file with
/// `register(into:_:)`, reading only what it needs from here.
public struct DaemonServices: Sendable {
    public let store: PolicyStore
    public let limits: DaemonLimits
    /// The audit log's hook; nil runs without recording.
    public let recorder: DecisionRecorder?
    /// Where durable state lives (`--state`): the audit log, the consent journal.
    public let stateDirectory: String?
    /// The time decisions are made at. The daemon always uses its own wall clock; only
    /// in-process callers (`custos test`, offline commands) may fix it. Nothing a socket caller
    /// sends can change it.
    public var clock: @Sendable () -> WallTime = { WallTime.now() }
    /// The access rules the dispatcher applies, for answers whose detail depends on the caller:
    /// `health` names a load error only to a caller that may read `policy.status`. The daemon
    /// sets its configuration's; the default is the dispatcher's own default (everyone), for
    /// in-process tables built without access rules.
    public var access = AccessPolicy()
    /// The audit log's disk use for `health` (and a metrics exporter); nil without a log.
    public var auditDiskUsage: (@Sendable () -> AuditDiskUsage?)? = nil
    /// The region the daemon is bound to (`DaemonConfig.region`); nil when unbound.
    public var region: String? = nil
    /// The node inventory (`nodes.sync`), which `place` resolves names against and `decide`
    /// resolves `context.node` against. One per services value, that is per daemon (and per
    /// `custos test` suite).
    public let inventory: NodeInventory
    /// Reloads everything a SIGHUP reloads; set by the daemon. The caller is nil for SIGHUP.
    public let reload: @Sendable (CallContext?) -> Result<PolicySnapshot, PolicyStoreError>
    /// Counters of decisions, reloads and refusals, and the sources `metrics` reads.
    public var metrics = DaemonMetrics()

    public init(store: PolicyStore, limits: DaemonLimits = DaemonLimits(), recorder: DecisionRecorder? = nil,
                stateDirectory: String? = nil,
                reload: (@Sendable (CallContext?) -> Result<PolicySnapshot, PolicyStoreError>)? = nil) {
        self.store = store
        self.limits = limits
        self.recorder = recorder
        self.stateDirectory = stateDirectory
        self.inventory = GuardrailMethods.makeInventory()
        self.reload = reload ?? { _ in store.reload() }
    }

    /// The snapshot in service, or the not-ready error when no load has succeeded yet.
    @inline(__always) public func readySnapshot() throws(RPCError) -> PolicySnapshot {
        if let s = store.snapshot { return s }
        // Not the load error itself: any decision caller gets this answer, and the error can
        // quote the folder's files (policy.status, admin-only, has it).
        let why = store.lastReloadFailure == nil ? "policies not loaded yet" : "policies not loaded (policy.status has the error)"
        throw .notReady(why + "; fix the policies folder and send SIGHUP or call policy.reload")
    }
}

/// A family of methods. The daemon's table is built from a list of these, so a new family is
/// one new file plus one entry in `Daemon.methodFamilies`.
public typealias MethodRegistration = @Sendable (inout MethodTable, DaemonServices) -> Void
