import CustosDaemon
import CustosJSON
import CustosServer
import CustosTestSupport
import CustosVersion
import Foundation
import Glibc
import Testing

/// Least privilege by default (docs/operations.md, "Who may call what"): decisions and `health`
/// for whoever can open the socket, every other method for the admins only, and no load error
/// shown to a caller who may not read `policy.status`.
@Suite struct LeastPrivilegeTests {
    /// The daemon's admin is the uid it runs as: here, the test's.
    static let admin: UInt32 = getuid()
    static let stranger = CallContext(uid: 1234, gid: 1234, pid: 1, connectionID: 1)
    static let adminCaller = CallContext(uid: admin, gid: 1, pid: 1, connectionID: 2)

    /// The daemon's real method table and access rules, over a copy of the example policies
    /// (or the given folder); nothing is bound.
    final class Fixture: @unchecked Sendable {
        let dir: String
        let daemon: Daemon

        init(config: String? = nil, policies: String? = nil, state: String? = nil) throws {
            dir = Scratch.directory("custos-least-privilege")
            let c = try config.map { try DaemonConfig.parse(text: $0) } ?? DaemonConfig()
            daemon = try Daemon(DaemonOptions(policiesDirectory: policies ?? examplePolicies, socketPath: dir + "/unused.sock",
                                              config: c, stateDirectory: state ?? dir + "/state"))
        }

        deinit { try? FileManager.default.removeItem(atPath: dir) }

        func call(_ method: String, _ caller: CallContext, _ params: JSON? = nil) -> Result<JSON, RPCError> {
            do throws(RPCError) { return .success(try daemon.dispatcher.call(method, params: Params(params), context: caller)) } catch {
                return .failure(error)
            }
        }

        func forbidden(_ method: String, _ caller: CallContext) -> Bool {
            LeastPrivilegeTests.errorCodeOf(call(method, caller)) == RPCError.forbiddenCode
        }
    }

    static func errorCodeOf(_ r: Result<JSON, RPCError>) -> Int64? {
        if case .failure(let e) = r { return e.code }
        return nil
    }

    @Test func theOpenMethodsAreExactlyTheDecisionsAndHealth() {
        #expect(Set(DaemonConfig.openMethods) == ["decide", "decide.batch", "place", "transfer", "health"])
    }

    /// Every method the daemon serves, checked through its dispatcher: a method that is not
    /// open is refused to a uid that is not an admin, and nothing is refused to the admin.
    @Test func everyMethodButTheDecisionsAndHealthIsRefusedToANonAdminUID() throws {
        let f = try Fixture()
        let methods = f.daemon.dispatcher.methodNames
        #expect(methods.contains("consent.get") && methods.contains("policy.status"), "the real table")
        for method in methods {
            let open = DaemonConfig.openMethods.contains(method)
            #expect(f.forbidden(method, Self.stranger) == !open, "\(method) for a non-admin uid")
            #expect(!f.forbidden(method, Self.adminCaller), "\(method) for the admin uid")
        }
    }

    /// docs/operations.md, "Who may call what", lists every method with its default, exactly.
    @Test func theOperationsGuideListsEveryMethodWithItsDefaultAccess() throws {
        let text = try String(contentsOfFile: exampleRepoRoot + "/docs/operations.md", encoding: .utf8)
        var documented: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 2, cells[1] == "open" || cells[1] == "admin" else { continue }
            documented[String(cells[0].dropFirst().dropLast())] = cells[1]
        }
        let f = try Fixture()
        var served: [String: String] = [:]
        for method in f.daemon.dispatcher.methodNames {
            served[method] = f.forbidden(method, Self.stranger) ? "admin" : "open"
        }
        #expect(documented == served)
    }

    @Test(arguments: ["consent.get", "policy.status", "nodes.list", "retention.due", "audit.query", "hold.set", "policy.reload"])
    func aRefusedAdminMethodIsForbiddenNamingTheMethodAndTheUID(method: String) throws {
        let f = try Fixture()
        guard case .failure(let e) = f.call(method, Self.stranger) else { Issue.record("\(method) answered a non-admin uid"); return }
        #expect(e.code == RPCError.forbiddenCode)
        #expect(e.message.contains(method) && e.message.contains("uid 1234"))
    }

    @Test func aRefusedHoldChangesNothing() throws {
        let f = try Fixture()
        let hold = try JSON.parse(#"{"dataset":"onc301-de-feasibility","matter":"LIT-1","reason":"claim"}"#)
        func holds() throws -> JSON? {
            try f.call("retention.status", Self.adminCaller, try JSON.parse(#"{"dataset":"onc301-de-feasibility"}"#)).get().objectValue?["holds"]
        }
        let before = try #require(try holds())
        #expect(Self.errorCodeOf(f.call("hold.set", Self.stranger, hold)) == RPCError.forbiddenCode)
        #expect(try holds() == before)
        _ = try f.call("hold.set", Self.adminCaller, hold).get()
        #expect(try holds() != before, "the admin may set it")
    }

    @Test func aMethodAddedLaterIsClosedUntilItIsListedAsOpen() throws {
        var table = MethodTable()
        for register in Daemon.methodFamilies { register(&table, DaemonServices(store: PolicyStore(directory: examplePolicies))) }
        table.register("someday.new") { _, _ throws(RPCError) in .bool(true) }
        let d = try Dispatcher(methods: table, access: DaemonConfig.defaultAccess(adminUID: Self.admin))
        do {
            _ = try d.call("someday.new", params: Params(nil), context: Self.stranger)
            Issue.record("a method nobody listed as open answered a non-admin uid")
        } catch {
            #expect(error.code == RPCError.forbiddenCode)
        }
        #expect(try d.call("someday.new", params: Params(nil), context: Self.adminCaller) == .bool(true))
    }

    @Test func adminGIDsGrantEveryAdminMethodToAGroupEvenAsASupplementaryGroup() throws {
        let f = try Fixture(config: #"{"access":{"admin_gids":[990]}}"#)
        let member = CallContext(uid: 2000, gid: 2000, pid: 1, connectionID: 3, groups: [990])
        for method in ["consent.get", "policy.status", "nodes.list", "retention.due", "audit.checkpoint"] {
            #expect(!f.forbidden(method, member), "\(method) for a member of an admin group")
            #expect(f.forbidden(method, Self.stranger), "\(method) for a uid outside it")
        }
        #expect(!f.forbidden("policy.status", Self.adminCaller), "the daemon's own uid stays an admin")
    }

    @Test func adminUIDsAndAPerMethodRuleOverrideTheAdminDefault() throws {
        let f = try Fixture(config: #"{"access":{"admin_uids":[3000],"methods":{"nodes.sync":{"allow_uids":[1200]},"decide":{"deny_uids":[1234]}}}}"#)
        let sidecar = CallContext(uid: 1200, gid: 1200, pid: 1, connectionID: 4)
        let operatorUID = CallContext(uid: 3000, gid: 3000, pid: 1, connectionID: 5)
        #expect(!f.forbidden("nodes.sync", sidecar))
        #expect(f.forbidden("nodes.remove", sidecar), "a rule for one method grants only that method")
        #expect(f.forbidden("nodes.sync", operatorUID), "the per-method rule replaces the admin rule for that method")
        #expect(!f.forbidden("nodes.remove", operatorUID) && !f.forbidden("consent.get", operatorUID))
        #expect(f.forbidden("decide", Self.stranger), "an open method can be closed per method")
        #expect(!f.forbidden("health", Self.stranger))
    }

    @Test func healthAnswersAnyoneWithTheVersionAndTheRevision() throws {
        let f = try Fixture()
        let h = try #require(try f.call("health", Self.stranger).get().objectValue)
        #expect(h["ready"] == .bool(true))
        #expect(h["version"] == .string(CustosVersion.string))
        #expect(h["revision"] == f.daemon.store.snapshot.map { .string($0.revision) })
    }

    /// A folder that does not load: its error (which may quote the folder's files) reaches the
    /// admins only; health and the decisions tell everyone else only that it did not load.
    @Test func aLoadErrorIsShownToAdminsOnly() throws {
        let folder = try makeFolder(["10-broken.cedar": "permit(principal, action, resource) when { secret_token + };"])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let f = try Fixture(policies: folder)
        func reasons(_ caller: CallContext) throws -> String {
            let h = try #require(try f.call("health", caller).get().objectValue)
            #expect(h["ready"] == .bool(false))
            #expect(h["revision"] == .null)
            return (h["reasons"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: "; ")
        }
        let adminView = try reasons(Self.adminCaller)
        #expect(adminView.contains("10-broken.cedar"), "the admin sees the error: \(adminView)")
        let strangerView = try reasons(Self.stranger)
        #expect(strangerView.contains("policies not loaded") && strangerView.contains("policy.status"))
        #expect(!strangerView.contains("10-broken.cedar") && !strangerView.contains("secret_token"), "\(strangerView)")
        let request = try JSON.parse(#"{"principal":{"type":"User","id":"a"},"action":{"type":"Action","id":"read"},"resource":{"type":"Dataset","id":"d"}}"#)
        guard case .failure(let e) = f.call("decide", Self.stranger, request) else { Issue.record("decided without policies"); return }
        #expect(e.code == RPCError.notReadyCode)
        #expect(!e.message.contains("10-broken.cedar") && !e.message.contains("secret_token"), "\(e.message)")
        #expect(f.forbidden("policy.status", Self.stranger))
        let status = try #require(try f.call("policy.status", Self.adminCaller).get().objectValue)
        #expect(status["last_reload_error"]?.objectValue?["message"]?.stringValue?.contains("10-broken.cedar") == true)
    }

    /// `--no-audit` leaves nothing else to create the state folder: the daemon does, as the
    /// audit log would (0700), and a decision that reads the consent journal succeeds.
    @Test func theDaemonCreatesAMissingStateFolderWithTheLogsPermissions() throws {
        let parent = Scratch.directory("custos-new-state")
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let state = parent + "/state"
        let f = try Fixture(state: state)
        var st = stat()
        #expect(stat(state, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR)
        #expect(st.st_mode & 0o777 == 0o700)
        let request = try JSON.parse(#"{"principal":{"type":"User","id":"alice"},"action":{"type":"Action","id":"read"},"resource":{"type":"Dataset","id":"onc301-de-clinical"},"context":{"purpose":"primary_research","region":"eu-central-1"}}"#)
        let r = f.call("decide", Self.stranger, request)
        #expect(r.map { $0.objectValue?["decision"] } == .success(.string("allow")), "\(r)")
        #expect(FileManager.default.fileExists(atPath: state + "/guardrails/consent.journal"))
    }

    @Test func aStatePathThatIsAFileIsRefusedAtStart() throws {
        let file = Scratch.directory("custos-state-file") + "/state"
        try "not a folder".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(throws: DaemonError.self) { _ = try Fixture(state: file) }
    }
}
