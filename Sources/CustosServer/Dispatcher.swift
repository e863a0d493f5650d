import CustosJSON
import Synchronization

/// Who is calling, as the kernel reported it when the connection was accepted.
public struct CallContext: Sendable, Hashable {
    public var uid: UInt32
    public var gid: UInt32
    public var pid: Int32
    /// Unique per server run; lets logs tie calls from one connection together.
    public var connectionID: UInt64

    public init(uid: UInt32, gid: UInt32, pid: Int32, connectionID: UInt64) {
        self.uid = uid
        self.gid = gid
        self.pid = pid
        self.connectionID = connectionID
    }
}

public typealias RPCHandler = @Sendable (Params, CallContext) throws(RPCError) -> JSON

/// Called for every refused call before the -32001 answer is written, so the audit log can
/// record it. Runs on the connection's thread: keep it short.
public typealias RefusalHook = @Sendable (_ method: String, _ context: CallContext) -> Void

/// The methods a server offers, built before the server starts.
public struct MethodTable: Sendable {
    struct Method: Sendable {
        let name: String
        let handler: RPCHandler
    }

    var methods: [Method] = []

    public init() {}

    /// Registering one name twice is a programming error.
    public mutating func register(_ name: String, _ handler: @escaping RPCHandler) {
        precondition(index(of: name) == nil, "method \(name) registered twice")
        methods.append(Method(name: name, handler: handler))
    }

    public var names: [String] { methods.map(\.name) }

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
    private let rules: Mutex<[AccessRule]>
    /// Bumped on every policy change so connections know when their cached verdicts are stale.
    private let generation = Atomic<UInt64>(1)

    public init(methods: MethodTable, access: AccessPolicy = AccessPolicy(), onRefused: RefusalHook? = nil) throws(AccessConfigError) {
        self.table = methods
        self.onRefused = onRefused
        self.rules = Mutex(try Dispatcher.resolve(access, in: methods))
    }

    public var methodNames: [String] { table.names }

    public func updateAccess(_ policy: AccessPolicy) throws(AccessConfigError) {
        let resolved = try Dispatcher.resolve(policy, in: table)
        rules.withLock { $0 = resolved }
        generation.add(1, ordering: .releasing)
    }

    private static func resolve(_ policy: AccessPolicy, in table: MethodTable) throws(AccessConfigError) -> [AccessRule] {
        var out = Array(repeating: policy.defaultRule, count: table.methods.count)
        for e in policy.entries {
            guard let i = table.index(of: e.method) else {
                throw AccessConfigError(message: "access configuration names unknown method \"\(e.method)\"; known methods: \(table.names.joined(separator: ", "))")
            }
            out[i] = e.rule
        }
        return out
    }

    /// Calls a method outside any connection, e.g. from the CLI or a test.
    public func call(_ method: String, params: Params, context: CallContext) throws(RPCError) -> JSON {
        var verdicts = Verdicts()
        return try call(method, params: params, context: context, verdicts: &verdicts)
    }

    /// Per-connection cache of which methods the (fixed) caller may use, so the shared policy
    /// is read once per connection and reload, not once per request.
    struct Verdicts {
        var generation: UInt64 = 0
        var allowed: [Bool] = []
    }

    @inline(__always)
    func call(_ method: String, params: Params, context: CallContext, verdicts: inout Verdicts) throws(RPCError) -> JSON {
        guard let i = table.index(of: method) else { throw .methodNotFound(method) }
        let g = generation.load(ordering: .acquiring)
        if verdicts.generation != g {
            verdicts.allowed = rules.withLock { rs in rs.map { $0.permits(uid: context.uid, gid: context.gid) } }
            verdicts.generation = g
        }
        guard verdicts.allowed[i] else {
            onRefused?(method, context)
            throw .forbidden(method: method, uid: context.uid, gid: context.gid)
        }
        return try table.methods[i].handler(params, context)
    }
}
