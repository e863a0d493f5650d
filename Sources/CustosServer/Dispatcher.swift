import CustosJSON
import Synchronization

/// Who is calling, as the kernel reported it when the connection was accepted.
public struct CallContext: Sendable, Hashable {
    public var uid: UInt32
    public var gid: UInt32
    public var pid: Int32
    /// Unique per server run; lets logs tie calls from one connection together.
    public var connectionID: UInt64
    /// Supplementary groups (see `PeerCredentials.groups`).
    public var groups: [UInt32]
    /// The privileges (see `Privilege`) the access rules grant this caller, one bit each; set
    /// by the dispatcher before a handler runs, never from anything the caller sends.
    public var granted: UInt64 = 0
    /// The end caller an HTTP front door was told about (an S3 account, the identity header a
    /// trusted proxy set), for the audit entry's `on_behalf_of`. Set only by the front door from
    /// the sources its configuration trusts; a JSON-RPC message can never set it.
    public var onBehalfOf: String? = nil

    public init(uid: UInt32, gid: UInt32, pid: Int32, connectionID: UInt64, groups: [UInt32] = []) {
        self.uid = uid
        self.gid = gid
        self.pid = pid
        self.connectionID = connectionID
        self.groups = groups
    }

    /// Whether the access rules grant this caller `privilege`.
    @inline(__always) public func holds(_ privilege: Privilege) -> Bool { granted & privilege.bit != 0 }
}

/// A right that is not a method, such as sending request entities with `decide`: named in the
/// access configuration like a method, and checked by the handlers that need it. Unlike a
/// method, a privilege is granted only by a rule that names it: the default rule never
/// grants it.
public struct Privilege: Sendable, Hashable {
    public let name: String
    let bit: UInt64
}

public typealias RPCHandler = @Sendable (Params, CallContext) throws(RPCError) -> JSON

/// A handler on the hot path: it writes its result value straight into the reply (no JSON tree
/// to build and walk), and may leave work its answer depends on, such as the fdatasync of its
/// audit record, to be committed by the transport with `ticket`. The transport commits once
/// for every answer it is about to send, so pipelined requests share one sync. When it throws,
/// whatever it wrote is discarded.
public typealias StreamingRPCHandler = @Sendable (Params, CallContext, inout JSONWriter, inout CommitTicket) throws(RPCError) -> Void

/// The typed form of a method, for in-process callers that hold the question as values (the
/// HTTP front door's scheduler extender calling `place`): it takes the method's own input type
/// and returns its answer type, so no JSON is written and read back. It shares the method's
/// name, access rule, observer and ticket with the JSON-RPC form; a front door reaches it only
/// through `Dispatcher.call(_:typed:as:context:cache:)`, never from the wire.
public typealias TypedRPCHandler = @Sendable (_ input: Any, CallContext, inout CommitTicket) throws(RPCError) -> Any

/// What a streaming handler's answer waits for: queued work up to `through` must be committed
/// (by the dispatcher's `CommitBarrier`) before the answer may leave.
public struct CommitTicket: Sendable, Equatable {
    public private(set) var through: UInt64?

    public init() {}

    public mutating func require(_ index: UInt64) {
        if let t = through, t >= index { return }
        through = index
    }

    public mutating func require(_ other: CommitTicket) {
        if let t = other.through { require(t) }
    }
}

/// Blocks until everything up to the ticket's index is committed. Throwing means it never will
/// be: every answer that depended on it must be replaced by the error (fail closed).
public typealias CommitBarrier = @Sendable (UInt64) throws(RPCError) -> Void

/// Told about every admitted call once its handler returned: the method's index in
/// `Dispatcher.methodNames`, the handler's time in nanoseconds (monotonic, without the commit a
/// streaming answer waits for), and whether it threw. Runs on the connection's thread, on the
/// hot path: it must not lock or allocate.
public typealias CallObserver = @Sendable (_ method: Int, _ nanos: UInt64, _ failed: Bool) -> Void

/// Called for every refused call before the -32001 answer is written, so the audit log can
/// record it. Runs on the connection's thread: keep it short.
public typealias RefusalHook = @Sendable (_ method: String, _ context: CallContext) -> Void

/// The methods a server offers, built before the server starts.
public struct MethodTable: Sendable {
    enum Handler: Sendable {
        case value(RPCHandler)
        case streaming(StreamingRPCHandler)
    }

    struct Method: Sendable {
        let name: String
        let handler: Handler
        /// How many requests one call counts for against a line's batch limit (nil: one).
        var weight: (@Sendable (Params) -> Int)? = nil
        /// The method's typed form, when it has one (see `TypedRPCHandler`).
        var typed: TypedRPCHandler? = nil
    }

    var methods: [Method] = []
    var privileges: [Privilege] = []

    public init() {}

    /// Registering one name twice is a programming error.
    public mutating func register(_ name: String, _ handler: @escaping RPCHandler) {
        precondition(index(of: name) == nil && privilege(named: name) == nil, "method \(name) registered twice")
        methods.append(Method(name: name, handler: .value(handler)))
    }

    /// Registers a method that carries several requests in one call (such as `decide.batch`):
    /// `weight` says how many, so a batch array of such calls counts what it really asks for
    /// against the batch limit.
    public mutating func register(_ name: String, weight: @escaping @Sendable (Params) -> Int, _ handler: @escaping RPCHandler) {
        register(name, handler)
        methods[methods.count - 1].weight = weight
    }

    /// Registers a hot-path method (see `StreamingRPCHandler`).
    public mutating func registerStreaming(_ name: String, _ handler: @escaping StreamingRPCHandler) {
        precondition(index(of: name) == nil && privilege(named: name) == nil, "method \(name) registered twice")
        methods.append(Method(name: name, handler: .streaming(handler)))
    }

    /// Gives the already registered method `name` a typed form (see `TypedRPCHandler`).
    public mutating func registerTyped(_ name: String, _ handler: @escaping TypedRPCHandler) {
        guard let i = index(of: name) else { preconditionFailure("method \(name) is not registered") }
        precondition(methods[i].typed == nil, "method \(name) has a typed form already")
        methods[i].typed = handler
    }

    /// Registers a privilege (see `Privilege`); the handlers that need it keep the value returned.
    public mutating func registerPrivilege(_ name: String) -> Privilege {
        precondition(index(of: name) == nil && privilege(named: name) == nil, "privilege \(name) registered twice")
        precondition(privileges.count < 64, "at most 64 privileges")
        let p = Privilege(name: name, bit: 1 << UInt64(privileges.count))
        privileges.append(p)
        return p
    }

    public var names: [String] { methods.map(\.name) }
    public var privilegeNames: [String] { privileges.map(\.name) }

    func privilege(named name: String) -> Privilege? {
        privileges.first { $0.name.utf8.elementsEqual(name.utf8) }
    }

    /// Method names compare by bytes: a caller cannot reach a method through a canonically
    /// equivalent but differently encoded name. The table is small, so a scan beats hashing.
    @inline(__always) func index(of name: String) -> Int? {
        let n = name.utf8.count
        for i in methods.indices {
            let m = methods[i].name.utf8
            if m.count == n && m.elementsEqual(name.utf8) { return i }
        }
        return nil
    }
}

/// Routes validated requests to handlers after checking the caller against the access policy.
/// The policy can be replaced while serving (SIGHUP reload); calls already past the check finish
/// under the old policy.
public final class Dispatcher: Sendable {
    let table: MethodTable
    let onRefused: RefusalHook?
    let barrier: CommitBarrier?
    let observer: CallObserver?
    private let rules: Mutex<Resolved>
    /// Bumped on every policy change so connections know when their cached verdicts are stale.
    private let generation = Atomic<UInt64>(1)

    /// `commit` keeps the promises of streaming handlers' tickets; without one a ticket is
    /// taken as already kept.
    public init(methods: MethodTable, access: AccessPolicy = AccessPolicy(), onRefused: RefusalHook? = nil,
                commit: CommitBarrier? = nil, observe: CallObserver? = nil) throws(AccessConfigError) {
        self.table = methods
        self.onRefused = onRefused
        self.barrier = commit
        self.observer = observe
        self.rules = Mutex(try Dispatcher.resolve(access, in: methods))
    }

    public var methodNames: [String] { table.names }

    /// How many requests a call counts for against the batch limit: one, unless its method
    /// registered a weight; at least one.
    func weight(_ method: String, params: Params) -> Int {
        guard let i = table.index(of: method), let w = table.methods[i].weight else { return 1 }
        return max(1, w(params))
    }

    /// Whether `policy.reload`-style access is granted to this caller by name: the method's
    /// rule lists allowed uids or groups and the caller is among them. An open rule
    /// ("anyone") names nobody.
    public func namesCaller(of method: String, uid: UInt32, gid: UInt32, groups: [UInt32]) -> Bool {
        guard let i = table.index(of: method) else { return false }
        let rule = rules.withLock { $0.methods[i] }
        guard rule.allowedUIDs != nil || rule.allowedGIDs != nil else { return false }
        return rule.permits(uid: uid, gid: gid, groups: groups)
    }

    public func updateAccess(_ policy: AccessPolicy) throws(AccessConfigError) {
        let resolved = try Dispatcher.resolve(policy, in: table)
        rules.withLock { $0 = resolved }
        generation.add(1, ordering: .releasing)
    }

    /// The rule of every method, in table order, and of every privilege with its bit.
    struct Resolved {
        var methods: [AccessRule]
        var privileges: [(Privilege, AccessRule)]
    }

    private static func resolve(_ policy: AccessPolicy, in table: MethodTable) throws(AccessConfigError) -> Resolved {
        var out = Resolved(methods: Array(repeating: policy.defaultRule, count: table.methods.count),
                           privileges: table.privileges.map { ($0, AccessRule.nobody) })
        for e in policy.entries {
            if let i = table.index(of: e.method) {
                out.methods[i] = e.rule
            } else if let k = out.privileges.firstIndex(where: { $0.0.name.utf8.elementsEqual(e.method.utf8) }) {
                out.privileges[k].1 = e.rule
            } else {
                let privileges = table.privilegeNames.isEmpty ? "" : "; privileges: \(table.privilegeNames.joined(separator: ", "))"
                throw AccessConfigError(message: "access.methods names unknown method \"\(e.method)\"; known methods: \(table.names.joined(separator: ", "))\(privileges)")
            }
        }
        return out
    }

    /// Calls a method outside any connection, e.g. from the CLI or a test. A streaming method's
    /// answer is committed before this returns and read back into a tree.
    public func call(_ method: String, params: Params, context: CallContext) throws(RPCError) -> JSON {
        var cache = CallerCache()
        return try call(method, params: params, context: context, cache: &cache)
    }

    /// What one caller may call, kept by a front door for each of its connections (whose
    /// caller does not change) so the access rules are read once per connection and reload.
    public struct CallerCache: Sendable {
        var verdicts = Verdicts()
        public init() {}
    }

    /// `call` for a caller whose verdicts are cached in `cache`.
    public func call(_ method: String, params: Params, context: CallContext,
                     cache: inout CallerCache) throws(RPCError) -> JSON {
        let i = try admit(method, context: context, verdicts: &cache.verdicts)
        let verdicts = cache.verdicts
        var context = context
        context.granted = verdicts.granted
        let start = observer == nil ? 0 : monotonicNanos()
        switch table.methods[i].handler {
        case .value(let handler):
            do {
                let v = try handler(params, context)
                observer?(i, monotonicNanos() &- start, false)
                return v
            } catch {
                observer?(i, monotonicNanos() &- start, true)
                throw error
            }
        case .streaming(let handler):
            var w = JSONWriter(capacity: 512)
            var ticket = CommitTicket()
            do {
                try handler(params, context, &w, &ticket)
                observer?(i, monotonicNanos() &- start, false)
            } catch {
                observer?(i, monotonicNanos() &- start, true)
                throw error
            }
            try commit(ticket)
            do { return try w.bytes.withUnsafeBytes { b throws(JSONParseError) in try JSON.parse(b) } } catch {
                throw .internalError("method \(method) wrote a result that does not parse: \(error)")
            }
        }
    }

    /// Calls the typed form of a method (see `TypedRPCHandler`) with the same access check and
    /// observer as any call, and keeps the promise of its ticket (the audit sync) before handing
    /// the answer back: the answer exists only once its decision is recorded.
    public func call<Input, Answer>(_ method: String, typed input: Input, as: Answer.Type, context: CallContext,
                                    cache: inout CallerCache) throws(RPCError) -> Answer {
        let i = try admit(method, context: context, verdicts: &cache.verdicts)
        guard let handler = table.methods[i].typed else { throw .internalError("method \(method) has no typed form") }
        var context = context
        context.granted = cache.verdicts.granted
        let start = observer == nil ? 0 : monotonicNanos()
        var ticket = CommitTicket()
        let out: Any
        do {
            out = try handler(input, context, &ticket)
            observer?(i, monotonicNanos() &- start, false)
        } catch {
            observer?(i, monotonicNanos() &- start, true)
            throw error
        }
        try commit(ticket)
        guard let answer = out as? Answer else { throw .internalError("method \(method) answered \(type(of: out)), not \(Answer.self)") }
        return answer
    }

    /// Writes a method's result value into `out` and keeps the promise of its ticket (the audit
    /// sync) before returning: for a front door that reads the answer itself, without a tree.
    public func write(_ method: String, params: Params, context: CallContext, cache: inout CallerCache,
                      into out: inout JSONWriter) throws(RPCError) {
        var ticket = CommitTicket()
        try write(method, params: params, context: context, verdicts: &cache.verdicts, into: &out, ticket: &ticket)
        try commit(ticket)
    }

    /// Per-connection cache of which methods the (fixed) caller may use, so the shared policy
    /// is read once per connection and reload, not once per request.
    struct Verdicts {
        var generation: UInt64 = 0
        var allowed: [Bool] = []
        /// The privilege bits the caller holds (see `CallContext.granted`).
        var granted: UInt64 = 0
    }

    /// Writes the result value of one call into `out` (the transport writes the envelope). On a
    /// throw, `out` may hold part of a result: the caller cuts it.
    @inline(__always)
    func write(_ method: String, params: Params, context: CallContext, verdicts: inout Verdicts,
               into out: inout JSONWriter, ticket: inout CommitTicket) throws(RPCError) {
        let i = try admit(method, context: context, verdicts: &verdicts)
        var context = context
        context.granted = verdicts.granted
        guard let observer else {
            switch table.methods[i].handler {
            case .value(let handler): out.value(try handler(params, context))
            case .streaming(let handler): try handler(params, context, &out, &ticket)
            }
            return
        }
        let start = monotonicNanos()
        do {
            switch table.methods[i].handler {
            case .value(let handler): out.value(try handler(params, context))
            case .streaming(let handler): try handler(params, context, &out, &ticket)
            }
        } catch {
            observer(i, monotonicNanos() &- start, true)
            throw error
        }
        observer(i, monotonicNanos() &- start, false)
    }

    /// Keeps a ticket's promise (see `CommitBarrier`).
    func commit(_ ticket: CommitTicket) throws(RPCError) {
        guard let t = ticket.through, let barrier else { return }
        try barrier(t)
    }

    @inline(__always)
    private func admit(_ method: String, context: CallContext, verdicts: inout Verdicts) throws(RPCError) -> Int {
        guard let i = table.index(of: method) else { throw .methodNotFound(method) }
        let g = generation.load(ordering: .acquiring)
        if verdicts.generation != g {
            let (allowed, granted) = rules.withLock { rs in
                (rs.methods.map { $0.permits(uid: context.uid, gid: context.gid, groups: context.groups) },
                 rs.privileges.reduce(UInt64(0)) { bits, p in
                     p.1.permits(uid: context.uid, gid: context.gid, groups: context.groups) ? bits | p.0.bit : bits
                 })
            }
            verdicts.allowed = allowed
            verdicts.granted = granted
            verdicts.generation = g
        }
        guard verdicts.allowed[i] else {
            onRefused?(method, context)
            throw .forbidden(method: method, uid: context.uid, gid: context.gid)
        }
        return i
    }
}
