import CustosDaemon
import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Testing

/// The repository's example policies folder (`policies/`, with `guardrails/`), from this file's path.
let exampleRepoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path
let examplePolicies = exampleRepoRoot + "/policies"

/// A daemon's method table over a private copy of the example policies (guardrails included)
/// and, unless `stateful` is false, a private state directory for the consent store.
final class GuardrailFixture: @unchecked Sendable {
    let dir: String
    let policies: String
    let state: String?
    let store: PolicyStore
    let dispatcher: Dispatcher
    let caller = CallContext(uid: 4242, gid: 4242, pid: 1, connectionID: 1)

    /// `clock` fixes the decision time as `custos test` does; by default the wall clock.
    /// `access` is the dispatcher's access policy (privileges such as `entities` are granted
    /// only by an entry naming them); `region` binds the daemon to a region. The example's
    /// schema is copied only with `schema` (most `edit`s add what it does not declare).
    init(stateful: Bool = true, clock: WallTime? = nil, access: AccessPolicy = AccessPolicy(), region: String? = nil,
         recorder: DecisionRecorder? = nil, schema: Bool = false, edit: (String) throws -> Void = { _ in }) throws {
        let fm = FileManager.default
        dir = Scratch.directory("custos-guardrails-daemon")
        policies = dir + "/policies"
        state = stateful ? dir + "/state" : nil
        try fm.createDirectory(atPath: policies + "/guardrails", withIntermediateDirectories: true)
        if let state { try fm.createDirectory(atPath: state, withIntermediateDirectories: true) }
        for sub in ["", "/guardrails"] {
            for name in try fm.contentsOfDirectory(atPath: examplePolicies + sub) {
                var isDir: ObjCBool = false
                let src = examplePolicies + sub + "/" + name
                if fm.fileExists(atPath: src, isDirectory: &isDir), !isDir.boolValue, schema || !name.hasPrefix("schema.cedarschema") {
                    try fm.copyItem(atPath: src, toPath: policies + sub + "/" + name)
                }
            }
        }
        try edit(policies)
        store = PolicyStore(directory: policies)
        if case .failure(let e) = store.reload() { throw e }
        var services = DaemonServices(store: store, recorder: recorder, stateDirectory: state)
        if let clock { services.clock = { clock } }
        services.region = region
        var table = MethodTable()
        for r in Daemon.methodFamilies { r(&table, services) }
        dispatcher = try Dispatcher(methods: table, access: access)
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    func call(_ method: String, _ params: String) throws(RPCError) -> JSON {
        let json: JSON
        do { json = try JSON.parse(params) } catch { preconditionFailure("test params are not JSON: \(params)") }
        return try dispatcher.call(method, params: Params(json), context: caller)
    }

    func object(_ method: String, _ params: String) throws -> JSONObject {
        try #require(try call(method, params).objectValue)
    }

    /// A decide request of the example deployment.
    static func decide(_ principal: String, _ action: String, _ dataset: String, _ context: String = "{}") -> String {
        #"{"principal":{"type":"User","id":"\#(principal)"},"action":{"type":"Action","id":"\#(action)"},"resource":{"type":"Dataset","id":"\#(dataset)"},"context":\#(context)}"#
    }
}

/// The codes of an answer's `guardrail_reasons` (or of one rejected node's reasons).
func codes(_ reasons: JSON?) -> [String] {
    (reasons?.arrayValue ?? []).compactMap { $0.objectValue?["code"]?.stringValue }
}

/// The kinds of an answer's obligations.
func obligationKinds(_ obligations: JSON?) -> [String] {
    (obligations?.arrayValue ?? []).compactMap { $0.objectValue?["kind"]?.stringValue }
}
