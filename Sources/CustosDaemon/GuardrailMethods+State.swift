import Cedar
import CustosServer
import Guardrails
import ReadMostly
import Synchronization

/// The consent and legal-hold store of one state directory (`<state>/guardrails`), shared by
/// `decide` and the consent/hold methods, opened on first use.
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
    private let store = ReadMostly<ConsentStore?>(nil)
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

    /// The store, opening it if needed. Nil without a state directory; the not-ready error when
    /// the journal cannot be opened (a damaged journal must be looked at, not guessed around).
    public func consentStore() throws(RPCError) -> ConsentStore? {
        guard let directory else { return nil }
        if let s = store.read() { return s }
        return try opening.withLock { _ throws(RPCError) -> ConsentStore? in
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
    /// is recorded, so consent-based purposes are refused and only holds on entities apply.
    @inline(__always) public func snapshot() throws(RPCError) -> ConsentSnapshot {
        try consentStore()?.snapshot ?? .empty
    }
}

extension CedarDatetime {
    /// A reading of `DaemonServices.clock` as a guardrail decision time. Only in-process callers
    /// (`custos test`) fix that clock; nothing a socket caller sends can.
    @inline(__always) static func daemonNow(_ t: WallTime) -> CedarDatetime {
        CedarDatetime(millisecondsSinceEpoch: t.milliseconds)
    }
}
