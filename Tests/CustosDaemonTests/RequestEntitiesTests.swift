import CustosDaemon
import CustosJSON
import CustosServer
import Foundation
import Synchronization
import Testing

/// Request entities are a privilege, and even a granted caller may not describe what the folder
/// describes; a resource of a data type the folder does not hold is unknown data, denied
/// (issue 10 §1, docs/security.md "Request entities").
@Suite struct RequestEntitiesTests {
    static let grantEntities = AccessPolicy(entries: [.init(method: "entities", rule: .anyone)])

    /// The attack of the issue: a new User whose parent is a powerful role.
    static let mallory = #"[{"uid":{"type":"User","id":"mallory"},"attrs":{"studies":[{"__entity":{"type":"Study","id":"ONC-301"}}]},"parents":[{"type":"Role","id":"auditor"}]}]"#
    static let malloryReads = Trust.request(#"{"type":"User","id":"mallory"}"#, "read_metadata", Trust.oncClinical, context: Trust.eu, entities: mallory)

    final class Events: Sendable {
        let list = Mutex<[DaemonEvent]>([])
        var recorder: DecisionRecorder {
            DecisionRecorder(record: { _ throws(RecorderError) in }, event: { e throws(RecorderError) in self.list.withLock { $0.append(e) } })
        }
    }

    @Test func requestEntitiesWithoutTheEntitiesPrivilegeAreForbiddenAndAudited() throws {
        let events = Events()
        let f = try GuardrailFixture(recorder: events.recorder)
        let e = try #require(rpcError { () throws(RPCError) in _ = try f.call("decide", Self.malloryReads) })
        #expect(e.code == RPCError.forbiddenCode)
        #expect(e.message.contains("params.entities") && e.message.contains("\"entities\" privilege"), "\(e.message)")
        let refusals = events.list.withLock { $0 }.compactMap { ev -> String? in
            if case .refusedPrivilege(let method, let privilege, let caller) = ev, caller.uid == f.caller.uid { return method + " " + privilege }
            return nil
        }
        #expect(refusals == ["decide entities"])
        // No entities, or an empty list, asserts nothing: no privilege needed.
        _ = try f.call("decide", Trust.request(#"{"type":"User","id":"dave"}"#, "read_metadata", Trust.oncClinical, context: Trust.eu, entities: "[]"))
    }

    @Test func aBatchWithRequestEntitiesInOneElementIsRefusedWhole() throws {
        let f = try GuardrailFixture()
        let plain = Trust.request(#"{"type":"User","id":"dave"}"#, "read_metadata", Trust.oncClinical, context: Trust.eu)
        let e = try #require(rpcError { () throws(RPCError) in
            _ = try f.call("decide.batch", #"{"requests":[\#(plain),\#(Self.malloryReads)]}"#)
        })
        #expect(e.code == RPCError.forbiddenCode)
        #expect(e.message.contains("params.requests[1].entities"), "\(e.message)")
    }

    struct Refused: Sendable, CustomStringConvertible {
        var description: String
        var principal: String
        var entities: String
        var path: String
        var custos: String? = nil
        var extraEntities: String? = nil
    }

    static let refused: [Refused] = [
        Refused(description: "a principal of a type entities.json defines (User)", principal: #"{"type":"User","id":"mallory"}"#,
                entities: mallory, path: "params.entities[0]"),
        Refused(description: "a role (Role is defined by entities.json)", principal: #"{"type":"User","id":"dave"}"#,
                entities: #"[{"uid":{"type":"Role","id":"superuser"},"attrs":{},"parents":[]}]"#, path: "params.entities[0]"),
        Refused(description: "data (Dataset is a data type)", principal: #"{"type":"User","id":"dave"}"#,
                entities: #"[{"uid":{"type":"Dataset","id":"shadow"},"attrs":{},"parents":[]}]"#, path: "params.entities[0]"),
        Refused(description: "an action, which entities.json does not define but a request must never group",
                principal: #"{"type":"User","id":"dave"}"#,
                entities: #"[{"uid":{"type":"Action","id":"exfiltrate"},"attrs":{},"parents":[{"type":"Action","id":"read"}]}]"#,
                path: "params.entities[0]"),
        Refused(description: "a new type whose parent is a folder role", principal: #"{"type":"Service","id":"etl"}"#,
                entities: #"[{"uid":{"type":"Service","id":"etl"},"attrs":{},"parents":[{"type":"Service","id":"x"},{"type":"Role","id":"auditor"}]}]"#,
                path: "params.entities[0].parents[1]"),
        Refused(description: "a parent that a folder principal names without the folder defining it (configured types)",
                principal: #"{"type":"User","id":"dave"}"#,
                entities: #"[{"uid":{"type":"Group","id":"admins"},"attrs":{},"parents":[{"type":"Group","id":"root"}]}]"#,
                path: "params.entities[0]", custos: #"{"authoritative_types":["User","Role","Study"],"data_types":["Dataset"]}"#,
                extraEntities: #"{"uid":{"type":"User","id":"gus"},"attrs":{},"parents":[{"type":"Group","id":"admins"}]}"#),
        Refused(description: "a type custos.json names as authoritative though entities.json has none",
                principal: #"{"type":"User","id":"dave"}"#,
                entities: #"[{"uid":{"type":"Device","id":"d1"},"attrs":{},"parents":[]}]"#,
                path: "params.entities[0]", custos: #"{"authoritative_types":["User","Role","Study","Device"]}"#),
    ]

    @Test(arguments: refused)
    func requestEntitiesMayNotDescribeWhatTheFolderDescribes(_ c: Refused) throws {
        let f = try GuardrailFixture(access: Self.grantEntities) { dir in
            if let custos = c.custos { try custos.write(toFile: dir + "/custos.json", atomically: true, encoding: .utf8) }
            if let extra = c.extraEntities { try Trust.addEntities(extra)(dir) }
        }
        let text = Trust.request(c.principal, "read_metadata", Trust.oncClinical, context: Trust.eu, entities: c.entities)
        let e = try #require(rpcError { () throws(RPCError) in _ = try f.call("decide", text) })
        #expect(e.code == RPCError.invalidParamsCode)
        #expect(e.message.hasPrefix("invalid params: \(c.path): "), "\(e.message)")
    }

    @Test func aGrantedCallerMayStillDescribeEntitiesTheFolderHasNothingToSayAbout() throws {
        let f = try GuardrailFixture(access: Self.grantEntities) { dir in
            try #"@id("ci-reads-reports") permit(principal in Pipeline::"nightly", action == Action::"read", resource is Report);"#
                .write(toFile: dir + "/60-ci.cedar", atomically: true, encoding: .utf8)
        }
        let entities = #"[{"uid":{"type":"Service","id":"etl"},"attrs":{},"parents":[{"type":"Pipeline","id":"nightly"}]},{"uid":{"type":"Pipeline","id":"nightly"},"attrs":{},"parents":[]}]"#
        let r = try f.object("decide", Trust.request(#"{"type":"Service","id":"etl"}"#, "read", #"{"type":"Report","id":"r1"}"#, entities: entities))
        #expect(r["decision"]?.stringValue == "allow")
        #expect(r["reasons"] == .array([.string("ci-reads-reports")]))
    }

    /// Study membership comes from the folder: a principal the request defines is a member of
    /// no study, whatever `studies` it claims, so study data stays out of its reach even where
    /// a policy permits it.
    @Test func aRequestDefinedPrincipalIsAMemberOfNoStudyWhateverItClaims() throws {
        let f = try GuardrailFixture(access: Self.grantEntities) { dir in
            try #"@id("etl-reads-everything") permit(principal is Service, action == Action::"read_metadata", resource);"#
                .write(toFile: dir + "/60-etl.cedar", atomically: true, encoding: .utf8)
        }
        let claims = #"[{"uid":{"type":"Service","id":"etl"},"attrs":{"studies":["ONC-301"]},"parents":[]}]"#
        let r = try f.object("decide", Trust.request(#"{"type":"Service","id":"etl"}"#, "read_metadata", Trust.oncClinical,
                                                    context: Trust.eu, entities: claims))
        #expect(r["decision"]?.stringValue == "deny")
        #expect(codes(r["guardrail_reasons"]).contains("isolation.study_missing") || codes(r["guardrail_reasons"]).contains("isolation.not_member"),
                "\(r)")
        #expect(r["reasons"] == .array([.string("etl-reads-everything")]), "Cedar alone would have allowed it")
    }

    @Test func folderTrustDefaultsToTheTypesOfEntitiesJSONAndItsDataTypes() throws {
        let f = try GuardrailFixture()
        let trust = try #require(f.store.snapshot).trust
        #expect(Set(trust.authoritativeTypes.map(\.description)) == ["Role", "Study", "User", "Dataset"])
        #expect(Set(trust.dataTypes.map(\.description)) == ["Dataset"])
    }

    // MARK: unknown data

    @Test func aMisspeltDatasetUnderAPermitThatReadsNoAttributesIsUnknownData() throws {
        let f = try GuardrailFixture()
        let r = try f.object("decide", Trust.request(#"{"type":"User","id":"dave"}"#, "read_metadata",
                                                    #"{"type":"Dataset","id":"onc301-de-clinicl"}"#, context: Trust.eu))
        #expect(r["decision"]?.stringValue == "deny")
        #expect(r["reasons"] == .array([.string("auditor-reads-metadata")]), "Cedar alone would have allowed it")
        #expect(codes(r["guardrail_reasons"]) == ["data.unknown_dataset"])
        let known = try f.object("decide", Trust.request(#"{"type":"User","id":"dave"}"#, "read_metadata", Trust.oncClinical, context: Trust.eu))
        #expect(known["decision"]?.stringValue == "allow")
    }

    /// (custos.json, resource, denied as unknown data) over a plain-Cedar folder (no
    /// guardrails) whose permit allows everything: unknown data is denied whether or not
    /// guardrails are active.
    @Test(arguments: [
        (nil, #"{"type":"Dataset","id":"nope"}"#, true),
        (nil, #"{"type":"Dataset","id":"d1"}"#, false),
        (nil, #"{"type":"Study","id":"nope"}"#, false),
        (#"{"data_types":["Report"]}"#, #"{"type":"Report","id":"nope"}"#, true),
        (#"{"data_types":["Report"]}"#, #"{"type":"Dataset","id":"nope"}"#, false),
    ] as [(String?, String, Bool)])
    func unknownIdsOfDataTypesAreDeniedWithoutGuardrailsToo(_ custos: String?, _ resource: String, _ denied: Bool) throws {
        var files = ["p.cedar": permitAll,
                     "entities.json": #"[{"uid":{"type":"Dataset","id":"d1"},"attrs":{"data_state":"anonymised","study":"S"},"parents":[]},{"uid":{"type":"Study","id":"S"},"attrs":{},"parents":[]}]"#]
        if let custos { files["custos.json"] = custos }
        let dir = try makeFolder(files)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = PolicyStore(directory: dir)
        if case .failure(let e) = store.reload() { throw e }
        var table = MethodTable()
        for r in Daemon.methodFamilies { r(&table, DaemonServices(store: store)) }
        let d = try Dispatcher(methods: table)
        let r = try d.call("decide", params: Params(try JSON.parse(Trust.request(#"{"type":"User","id":"u"}"#, "read", resource))),
                           context: CallContext(uid: 1, gid: 1, pid: 1, connectionID: 1)).objectValue
        #expect(r?["decision"]?.stringValue == (denied ? "deny" : "allow"))
        #expect(codes(r?["guardrail_reasons"]) == (denied ? ["data.unknown_dataset"] : []))
    }
}
