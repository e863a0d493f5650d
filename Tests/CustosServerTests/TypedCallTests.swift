import CustosServer
import Glibc
import Synchronization
import Testing

/// A method's typed form (what the front door's scheduler extender calls `place` through): the
/// method's access rule and observer apply, and its answer is handed back only once its ticket
/// is committed.
@Suite struct TypedCallTests {
    struct Question { var n: Int }
    struct Answer: Equatable { var twice: Int }

    final class Log: Sendable {
        let committed = Mutex<[UInt64]>([])
        let observed = Mutex<[(Int, Bool)]>([])
        let failCommit = Atomic<Bool>(false)
    }

    static func dispatcher(_ log: Log, access: AccessPolicy = AccessPolicy()) throws -> Dispatcher {
        var t = MethodTable()
        t.register("double") { _, _ throws(RPCError) in .null }
        t.registerTyped("double") { input, _, ticket throws(RPCError) -> Any in
            guard let q = input as? Question else { throw .internalError("not a Question") }
            ticket.require(UInt64(q.n))
            return Answer(twice: 2 * q.n)
        }
        t.register("untyped") { _, _ throws(RPCError) in .null }
        return try Dispatcher(methods: t, access: access, commit: { index throws(RPCError) in
            if log.failCommit.load(ordering: .relaxed) { throw .notReady("cannot sync") }
            log.committed.withLock { $0.append(index) }
        }, observe: { method, _, failed in log.observed.withLock { $0.append((method, failed)) } })
    }

    static let me = CallContext(uid: getuid(), gid: getgid(), pid: getpid(), connectionID: 1)

    @Test func theAnswerComesBackAfterItsTicketIsCommittedAndTheCallIsObserved() throws {
        let log = Log()
        let d = try Self.dispatcher(log)
        var cache = Dispatcher.CallerCache()
        let a = try d.call("double", typed: Question(n: 21), as: Answer.self, context: Self.me, cache: &cache)
        #expect(a == Answer(twice: 42))
        #expect(log.committed.withLock { $0 } == [21])
        #expect(log.observed.withLock { $0.map(\.0) } == [0])
        log.failCommit.store(true, ordering: .relaxed)
        #expect(throws: RPCError.self) { try d.call("double", typed: Question(n: 1), as: Answer.self, context: Self.me, cache: &cache) }
    }

    @Test func theMethodsAccessRuleApplies() throws {
        let log = Log()
        let d = try Self.dispatcher(log, access: AccessPolicy(["double": AccessRule(deniedUIDs: [getuid()])]))
        var cache = Dispatcher.CallerCache()
        do {
            _ = try d.call("double", typed: Question(n: 1), as: Answer.self, context: Self.me, cache: &cache)
            Issue.record("a denied caller got an answer")
        } catch {
            #expect(error.code == RPCError.forbiddenCode)
        }
        #expect(log.committed.withLock { $0 }.isEmpty)
    }

    @Test(arguments: ["untyped", "missing"])
    func aMethodWithoutATypedFormIsAnErrorNeverAnAnswer(_ method: String) throws {
        let d = try Self.dispatcher(Log())
        var cache = Dispatcher.CallerCache()
        #expect(throws: RPCError.self) { try d.call(method, typed: Question(n: 1), as: Answer.self, context: Self.me, cache: &cache) }
        // The wrong answer type is refused too.
        #expect(throws: RPCError.self) { try d.call("double", typed: Question(n: 1), as: Int.self, context: Self.me, cache: &cache) }
    }
}
