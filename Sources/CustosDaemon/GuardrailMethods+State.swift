import Cedar
import CustosJSON
import CustosServer
import FleetStore
import Guardrails
import ReadMostly
import Synchronization

/// The consent and legal-hold store of one state directory (`<state>/guardrails`), shared by
/// `decide` and the consent/hold methods: the embedded journal, opened on first use, unless the
/// daemon installed another store (`use`, the shared store of fleet mode, docs/fleet.md).
///
/// One per state directory per process: two `ConsentStore`s appending to the same journal would
/// each number their changes from their own sequence, so the registry hands the same handle to
/// every method family of a daemon. Handlers capture the handle at registration, so a decision
/// pays one read lock for a reference copy, never a look-up by path.
public final class GuardrailState: Sendable {
    /// `<state>/guardrails`, or nil when the daemon runs without `--state`.
    public let directory: String?
    /// Read by every decision, hence not a `Mutex` (see `ReadMostly`); `opening` serialises
    /// the first open.
    private let store = ReadMostly<(any StateStore)?>(nil)
    private let opening = Mutex<Void>(())

    private static let registry = Mutex<[String: GuardrailState]>([:])
    private static let stateless = GuardrailState(directory: nil)

    private init(directory: String?) { self.directory = directory }

    /// The handle for `stateDirectory` (the same object for the same path).
    public static func forStateDirectory(_ stateDirectory: String?) -> GuardrailState {
        guard let state = stateDirectory else { return stateless }
        let dir = (state.hasSuffix("/") ? state : state + "/") + GuardrailConfig.folderName
        return registry.withLock { r in
            if let h = r[dir] { return h }
            let h = GuardrailState(directory: dir)
            r[dir] = h
            return h
        }
    }

    /// Makes `store` the state of this directory instead of the embedded journal (fleet mode, or
    /// a harness's own store). Called before the daemon serves; never for the stateless handle.
    public func use(_ store: any StateStore) {
        precondition(directory != nil, "a state store needs a state directory")
        opening.withLock { _ in self.store.replace(store) }
    }

    /// The store, opening it if needed. Nil without a state directory; the not-ready error when
    /// the journal cannot be opened (a damaged journal must be looked at, not guessed around).
    public func consentStore() throws(RPCError) -> (any StateStore)? {
        guard let directory else { return nil }
        if let s = store.read() { return s }
        return try opening.withLock { _ throws(RPCError) -> (any StateStore)? in
            if let s = store.read() { return s }
            let s: ConsentStore
            do throws(ConsentStoreError) { s = try ConsentStore(directory: directory) } catch {
                throw .notReady("consent store \(directory) cannot be opened: \(error.description)")
            }
            store.replace(s)
            return s
        }
    }

    /// What decisions read: the current consents and holds. Without a state directory nothing
    /// is recorded, so consent-based purposes are refused and only holds on entities apply. A
    /// shared store's view older than its bound is marked (`ConsentSnapshot.unavailable`), so
    /// the checks that depend on it deny `state.stale`.
    @inline(__always) public func snapshot() throws(RPCError) -> ConsentSnapshot {
        try consentStore()?.snapshot ?? .empty
    }

    /// What `health` says about the state store: which one, and for a shared one how old the
    /// daemon's copy is (docs/fleet.md). Never the connection string.
    public var healthJSON: JSON {
        guard directory != nil else { return .object(JSONObject(["store": .string("none")])) }
        guard let fleet = store.read() as? FleetStateStore else { return .object(JSONObject(["store": .string("embedded")])) }
        let st = fleet.status
        var o = JSONObject()
        o.append("store", .string("postgres"))
        o.append("seq", .int(st.seq))
        o.append("age_ms", .int(st.ageMs))
        o.append("max_staleness_ms", .int(Int64(st.maxStalenessMs)))
        o.append("stale", .bool(st.stale))
        o.append("connected", .bool(st.connected))
        o.append("error", st.lastError.map { .string($0) } ?? .null)
        o.append("witnessed_size", st.witnessedSize.map { .int(Int64(clamping: $0)) } ?? .null)
        o.append("witness_error", st.witnessError.map { .string($0) } ?? .null)
        return .object(o)
    }

    /// The snapshot for a method that reports the state (`consent.get`, `retention.*`): a view
    /// that may miss a change is refused (-32003) rather than shown as if it were current.
    func reportableSnapshot() throws(RPCError) -> ConsentSnapshot {
        let s = try snapshot()
        if let why = s.unavailable { throw .notReady(why) }
        return s
    }
}

extension CedarDatetime {
    /// A reading of `DaemonServices.clock` as a guardrail decision time. Only in-process callers
    /// (`custos test`) fix that clock; nothing a socket caller sends can.
    @inline(__always) static func daemonNow(_ t: WallTime) -> CedarDatetime {
        CedarDatetime(millisecondsSinceEpoch: t.milliseconds)
    }
}
