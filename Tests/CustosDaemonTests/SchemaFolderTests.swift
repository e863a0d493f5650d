import Cedar
import CustosDaemon
import CustosJSON
import CustosServer
import Foundation
import Testing

/// A folder's schema, its templates and links.json, and `validate_requests` (issue 11, items 4
/// and 5), through the daemon's own load and method table.
@Suite struct SchemaFolderTests {
    static let schema = """
    entity Role enum ["lead", "analyst"];
    entity Team;
    entity User in [Team, Role] { level: Long };
    entity Folder;
    entity Dataset in [Folder] { owner: User, data_state: String, hold?: Bool };
    action read, list appliesTo { principal: [User], resource: [Dataset], context: { mfa: Bool, reason?: String } };
    action share appliesTo { principal: [User, Role], resource: [Folder] };
    """
    static let entities = #"""
    [{"uid": {"type": "Team", "id": "onc"}, "attrs": {}, "parents": []},
     {"uid": {"type": "User", "id": "alice"}, "attrs": {"level": 5}, "parents": [{"type": "Team", "id": "onc"}]},
     {"uid": {"type": "User", "id": "bob"}, "attrs": {"level": 1}, "parents": [{"type": "Team", "id": "onc"}]},
     {"uid": {"type": "Folder", "id": "f1"}, "attrs": {}, "parents": []},
     {"uid": {"type": "Dataset", "id": "d1"}, "attrs": {"owner": {"type": "User", "id": "alice"}, "data_state": "identified"}, "parents": [{"type": "Folder", "id": "f1"}]}]
    """#
    static let policies = """
    @id("readers")
    permit (principal, action == Action::"read", resource) when { principal.level > 3 };

    @id("no-identified-exports")
    forbid (principal, action == Action::"list", resource) when { resource.data_state == "identified" };
    """
    static let template = """
    @id("team-reads")
    permit (principal in ?principal, action == Action::"read", resource in ?resource);
    """
    static let links = #"[{"template_id": "team-reads", "link_id": "onc-reads-f1", "args": {"?principal": "Team::\"onc\"", "?resource": "Folder::\"f1\""}}]"#

    static func folder(_ extra: [String: String] = [:], schema: Bool = true) throws -> String {
        var files = ["10-policies.cedar": policies, "entities.json": entities]
        if schema { files["schema.cedarschema"] = Self.schema }
        return try makeFolder(files.merging(extra) { _, b in b })
    }

    static func loadError(_ dir: String) -> PolicyStoreError? {
        do { _ = try PolicyStore.load(directory: dir); return nil } catch { return error }
    }

    // MARK: the schema validates the folder

    @Test func aMisspeltAttributeInAForbidRefusesTheLoadWithFileLineColumnAndTheNearestName() throws {
        let typo = """
        @id("typo-forbid")
        forbid (principal, action, resource is Dataset)
        when { resource.data_stat == "identified" };
        """
        let dir = try Self.folder(["90-forbid.cedar": typo])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e = try #require(Self.loadError(dir))
        #expect(e.message == "\(dir)/90-forbid.cedar:3:8: policy \"typo-forbid\" (policy2): attribute data_stat not found on entity type Dataset; did you mean data_state?", "\(e.message)")
        #expect(e.details == [e.message])
        // Without the schema the same folder loads (and the forbid would fail closed at decision time).
        try FileManager.default.removeItem(atPath: dir + "/schema.cedarschema")
        #expect(Self.loadError(dir) == nil)
    }

    @Test func everyValidationErrorIsInTheDetailsAndTheMessageCountsTheRest() throws {
        let bad = """
        permit (principal, action == Action::"raed", resource);
        permit (principal is Usr, action, resource);
        """
        let dir = try Self.folder(["20-bad.cedar": bad])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e = try #require(Self.loadError(dir))
        #expect(e.details.count >= 2, "\(e.details)")
        #expect(e.details.contains { $0.contains("20-bad.cedar:1:1: policy policy2: action Action::\"raed\" is not declared in the schema; did you mean Action::\"read\"?") }, "\(e.details)")
        #expect(e.details.contains { $0.contains("20-bad.cedar:2:1: policy policy3: entity type Usr is not declared in the schema; did you mean User?") }, "\(e.details)")
        #expect(e.message.hasPrefix(e.details[0]))
        #expect(e.message.hasSuffix("(and \(e.details.count - 1) more validation errors; custos check lists them all)"), "\(e.message)")
    }

    @Test(arguments: [
        (#"[{"uid": {"type": "User", "id": "a"}, "attrs": {"levle": 1}, "parents": []}]"#, "entities.json:[0].attrs.levle: attribute levle is not declared (declared: level); did you mean level?"),
        (#"[{"uid": {"type": "User", "id": "a"}, "attrs": {}, "parents": []}]"#, "entities.json:[0].attrs: required attribute level is missing"),
        (#"[{"uid": {"type": "User", "id": "a"}, "attrs": {"level": "5"}, "parents": []}]"#, "entities.json:[0].attrs.level: expected Long"),
        (#"[{"uid": {"type": "Usr", "id": "a"}, "attrs": {}, "parents": []}]"#, "entities.json:[0].uid: entity type Usr is not declared in the schema; did you mean User?"),
        (#"[{"uid": {"type": "User", "id": "a"}, "attrs": {"level": 1}, "parents": [{"type": "Folder", "id": "f"}]}]"#, "entities.json:[0].parents[0]: User entities cannot be members of Folder entities"),
        (#"[{"uid": {"type": "User", "id": "a"}, "attrs": {"level": 1}, "parents": [{"type": "Role", "id": "boss"}]}]"#, "entities.json:[0].parents[0]: Role::\"boss\" is not one of the ids declared for Role"),
    ])
    func entitiesJSONThatDoesNotConformToTheSchemaIsRefusedNamingTheJSONPath(_ json: String, _ message: String) throws {
        let dir = try Self.folder(["entities.json": json])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e = try #require(Self.loadError(dir))
        #expect(e.message.hasPrefix(dir + "/"), "\(e.message)")
        #expect(e.message.contains(message), "\(e.message)")
    }

    @Test func entitiesAreReadAsTheSchemaDeclaresThemAndTheSchemasActionsJoinThem() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try PolicyStore.load(directory: dir)
        // `owner` is written {"type", "id"} without __entity: the schema says it is a User.
        let d1 = try #require(s.entities.entry(EntityUID("Dataset", "d1")))
        #expect(d1.entity.attrs["owner"] == .entity(EntityUID("User", "alice")))
        #expect(s.entityCount == 5 + 3)
        #expect(s.entities.entry(EntityUID("Action", "share")) != nil)
        #expect(s.schema != nil && s.requestSchema == nil)
    }

    @Test func theJSONSchemaFormatIsReadToo() throws {
        let json = #"""
        {"": {"entityTypes": {"User": {"shape": {"type": "Record", "attributes": {"level": {"type": "Long"}}}}, "Dataset": {}},
               "actions": {"read": {"appliesTo": {"principalTypes": ["User"], "resourceTypes": ["Dataset"]}}}}}
        """#
        let dir = try makeFolder(["schema.cedarschema.json": json, "a.cedar": #"permit (principal, action, resource) when { principal.levl > 1 };"#])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e = try #require(Self.loadError(dir))
        #expect(e.message.contains("a.cedar:1:"), "\(e.message)")
        #expect(e.message.contains("did you mean level?"), "\(e.message)")
    }

    @Test(arguments: [
        ("schema.cedarschema", "entity secretword secretword;", "schema.cedarschema:1:19: "),
        ("schema.cedarschema.json", #"{"secretword": secretword}"#, "schema.cedarschema.json:1:"),
        ("schema.cedarschema", "\u{FEFF}entity User;", "schema.cedarschema:1:1: the file starts with a UTF-8 byte-order mark"),
        ("schema.cedarschema", "entity User in [Nope];", "schema.cedarschema:1:"),
    ])
    func aSchemaThatDoesNotParseFailsTheLoadNamingTheFileAndPlaceWithoutQuotingIt(_ name: String, _ text: String, _ prefix: String) throws {
        let dir = try makeFolder([name: text, "a.cedar": permitAll])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e = try #require(Self.loadError(dir))
        #expect(e.message.hasPrefix(dir + "/" + prefix), "\(e.message)")
        #expect(!e.message.contains("secretword"), "\(e.message)")
    }

    @Test func aFolderWithBothSchemaFormatsIsRefused() throws {
        let dir = try Self.folder(["schema.cedarschema.json": #"{"": {"entityTypes": {}, "actions": {}}}"#])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e = try #require(Self.loadError(dir))
        #expect(e.message == "\(dir): holds both schema.cedarschema and schema.cedarschema.json; a folder has one schema, in one format: remove one of them")
    }

    @Test func aReloadOfAFolderThatNoLongerValidatesKeepsThePreviousPolicies() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = PolicyStore(directory: dir)
        let first = try store.reload().get()
        try #"forbid (principal, action, resource) when { resource.data_stat == "x" };"#.write(toFile: dir + "/90-typo.cedar", atomically: true, encoding: .utf8)
        guard case .failure(let e) = store.reload() else { Issue.record("the reload validated a misspelt attribute"); return }
        #expect(e.message.contains("did you mean data_state?"), "\(e.message)")
        #expect(store.snapshot?.revision == first.revision)
        #expect(store.lastReloadFailure?.error == e)
    }

    // MARK: templates and links.json

    /// A daemon method table over `dir` (its decide is what `custos serve` answers).
    static func dispatcher(_ dir: String) throws -> (PolicyStore, Dispatcher) {
        let store = PolicyStore(directory: dir)
        if case .failure(let e) = store.reload() { throw e }
        var table = MethodTable()
        for r in Daemon.methodFamilies { r(&table, DaemonServices(store: store)) }
        let access = AccessPolicy(entries: [.init(method: DecisionMethods.entitiesPrivilegeName, rule: .anyone)])
        return (store, try Dispatcher(methods: table, access: access))
    }

    static let caller = CallContext(uid: 4242, gid: 4242, pid: 1, connectionID: 1)

    static func decide(_ d: Dispatcher, _ principal: String, _ action: String, _ resource: String, context: String = #"{"mfa": true}"#) throws(RPCError) -> JSON {
        let (pt, pid) = split(principal), (rt, rid) = split(resource)
        let params = try! JSON.parse(#"{"principal": {"type": "\#(pt)", "id": "\#(pid)"}, "action": {"type": "Action", "id": "\#(action)"}, "resource": {"type": "\#(rt)", "id": "\#(rid)"}, "context": \#(context)}"#)
        return try d.call("decide", params: Params(params), context: caller)
    }

    private static func split(_ s: String) -> (String, String) {
        let parts = s.components(separatedBy: ":")
        return (parts[0], parts[1])
    }

    @Test func aLinkedTemplateDecidesAndIsNamedByItsLinkIDInReasons() throws {
        let dir = try Self.folder(["30-templates.cedar": Self.template, "links.json": Self.links])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (store, d) = try Self.dispatcher(dir)
        let s = try #require(store.snapshot)
        #expect(s.policyNames == ["readers", "no-identified-exports", "onc-reads-f1"])
        #expect(s.templates.map(\.id) == ["policy2"])
        #expect(s.warnings.isEmpty, "\(s.warnings)")
        // bob (level 1) reads only through his team's link.
        let bob = try Self.decide(d, "User:bob", "read", "Dataset:d1")
        #expect(bob["decision"] == .string("allow"))
        #expect(bob["reasons"] == .array([.string("onc-reads-f1")]))
        let alice = try Self.decide(d, "User:alice", "read", "Dataset:d1")
        #expect(alice["reasons"] == .array([.string("readers"), .string("onc-reads-f1")]))
        let status = StatusMethods.status(store)
        #expect(status["templates"] == .int(1) && status["links"] == .int(1) && status["policies"] == .int(3))
        #expect(status["schema"] == .string("schema.cedarschema"))
    }

    @Test func anUnlinkedTemplateIsAWarningEverywhereAndNeverAPolicy() throws {
        let dir = try Self.folder(["30-templates.cedar": Self.template])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (store, d) = try Self.dispatcher(dir)
        let s = try #require(store.snapshot)
        #expect(s.policyNames == ["readers", "no-identified-exports"])
        #expect(s.warnings == ["\(dir)/30-templates.cedar:1:1: template \"team-reads\" (policy2) has no link in links.json, so it decides nothing; link it (docs/cedar.md, \"Templates\") or remove it"])
        #expect(StatusMethods.status(store)["warnings"] == .array(s.warnings.map { .string($0) }))
        #expect(try Self.decide(d, "User:bob", "read", "Dataset:d1")["decision"] == .string("deny"))
    }

    @Test func templatesAreNumberedAsCedarNumbersThemSoStaticNamesDoNotShift() throws {
        let dir = try makeFolder(["a.cedar": "permit (principal == ?principal, action, resource);\npermit (principal, action, resource);\n"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try PolicyStore.load(directory: dir)
        #expect(s.policyNames == ["policy1"])
        #expect(s.templates.map(\.id) == ["policy0"])
        #expect(s.warnings.count == 1)
    }

    @Test func linksWorkWithoutASchemaToo() throws {
        let dir = try Self.folder(["30-templates.cedar": Self.template, "links.json": Self.links], schema: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (_, d) = try Self.dispatcher(dir)
        #expect(try Self.decide(d, "User:bob", "read", "Dataset:d1")["reasons"] == .array([.string("onc-reads-f1")]))
    }

    @Test(arguments: [
        (#"[{"template_id": "team-read", "link_id": "l", "args": {}}]"#, #"links.json: [0].template_id: no template is named "team-read" (templates are named by their @id; known: "team-reads")"#),
        (#"[{"template_id": "readers", "link_id": "l", "args": {}}]"#, #"links.json: [0].template_id: "readers" is a policy without slots, not a template"#),
        (#"[{"template_id": "team-reads", "link_id": "readers", "args": {"?principal": "Team::\"onc\"", "?resource": "Folder::\"f1\""}}]"#, #"links.json: [0].link_id: "readers" is already the name of policy policy0"#),
        (#"[{"template_id": "team-reads", "link_id": "team-reads", "args": {"?principal": "Team::\"onc\"", "?resource": "Folder::\"f1\""}}]"#, #"links.json: [0].link_id: "team-reads" is already the name of template policy2"#),
        (#"[{"template_id": "team-reads", "link_id": "policy1", "args": {"?principal": "Team::\"onc\"", "?resource": "Folder::\"f1\""}}]"#, #"links.json: [0].link_id: "policy1" is already the name of policy policy1"#),
        (#"[{"template_id": "policy2", "link_id": "l", "args": {"?principal": "Team::\"onc\"", "?resource": "Folder::\"f1\""}}]"#, #"links.json: [0].template_id: no template is named "policy2""#),
        (#"[{"template_id": "team-reads", "link_id": "l", "args": {"?principal": "Team::\"onc\"", "?resource": "Folder::\"f1\""}}, {"template_id": "team-reads", "link_id": "l", "args": {"?principal": "Team::\"onc\"", "?resource": "Folder::\"f2\""}}]"#, #"links.json: [1].link_id: "l" is already the name of link [0] of"#),
        (#"[{"template_id": "team-reads", "link_id": "l", "args": {"?principal": "Team::\"onc\""}}]"#, "links.json: [0].args: no value for ?resource: the template has ?principal and ?resource"),
        (#"[{"template_id": "team-reads", "link_id": "l", "arg": {}}]"#, "links.json:[0].arg: unknown key (a link has template_id, link_id and args)"),
        (#"[{"template_id": "team-reads", "link_id": "l", "args": {"?principal": "Team::\"onc\"", "?resource": "Folder::\"f1\""}}"#, "links.json:1:"),
        (#"[{"template_id": "team-reads", "link_id": "l", "args": {"?principal": "Taem::\"onc\"", "?resource": "Folder::\"f1\""}}]"#, #"links.json: [0]: link "l" of template "team-reads": ?principal is linked to Taem::"onc", whose entity type Taem is not declared in the schema; did you mean Team?"#),
        (#"[{"template_id": "team-reads", "link_id": "l", "args": {"?principal": "Team::\"onc\"", "?resource": "Dataset::\"d1\""}}]"#, ""),
        (#"[{"template_id": "team-reads", "link_id": "l", "args": {"?principal": "Role::\"boss\"", "?resource": "Folder::\"f1\""}}]"#, #"links.json: [0]: link "l" of template "team-reads": ?principal is linked to Role::"boss", which is not one of the ids enumerated for Role"#),
    ])
    func aLinkThatCannotBeMadeOrDoesNotValidateFailsTheLoad(_ links: String, _ message: String) throws {
        let dir = try Self.folder(["30-templates.cedar": Self.template, "links.json": links])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e = Self.loadError(dir)
        if message.isEmpty {
            #expect(e == nil, "\(String(describing: e))")
        } else {
            #expect(e?.message.hasPrefix(dir + "/") == true, "\(String(describing: e))")
            #expect(e?.message.contains(message) == true, "\(String(describing: e))")
        }
    }

    @Test func aTemplateThatDoesNotValidateFailsTheLoadEvenUnlinked() throws {
        let dir = try Self.folder(["30-templates.cedar": #"@id("t") permit (principal == ?principal, action, resource) when { principal.levl > 1 };"#])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e = try #require(Self.loadError(dir))
        #expect(e.message.contains("30-templates.cedar:1:") && e.message.contains("did you mean level?"), "\(e.message)")
    }

    // MARK: validate_requests

    @Test(arguments: [
        (#"{"validate_requests": "yes"}"#, #"custos.json: $.validate_requests: expected true or false, got a string"#, true),
        (#"{"validate_requests": true}"#, #"custos.json: $.validate_requests: true needs a schema in the folder (schema.cedarschema or schema.cedarschema.json)"#, false),
    ])
    func validateRequestsIsABooleanAndNeedsASchema(_ settings: String, _ message: String, _ schema: Bool) throws {
        let dir = try Self.folder(["custos.json": settings], schema: schema)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e = try #require(Self.loadError(dir))
        #expect(e.message.contains(message), "\(e.message)")
    }

    /// Every case of the Cedar request-validation table (checked against cedarpy), through
    /// `decide`'s own parsing: the field is the table's path under `params`.
    @Test(arguments: RequestCases.all)
    func aDecideRequestIsValidatedAsTheReferenceEngineValidatesIt(_ c: RequestCases.Case) throws {
        let schema = try #require(RequestCases.schema)
        let error = rpcError { () throws(RPCError) in _ = try DecideParams.parse(c.request, schema: schema) }
        if c.valid {
            #expect(error == nil, "\(String(describing: error))")
        } else {
            #expect(error?.code == RPCError.invalidParamsCode)
            #expect(error?.message.hasPrefix("invalid params: params\(c.path.isEmpty ? "" : ".")\(c.path): ") == true, "\(String(describing: error))")
            #expect(error?.message.contains(c.message) == true, "\(String(describing: error))")
        }
        // Without validate_requests the same request is read as before, whatever it names.
        #expect(rpcError { () throws(RPCError) in _ = try DecideParams.parse(c.request) } == nil)
    }

    @Test func withValidateRequestsTheDaemonRefusesANonConformingDecideAndBatchNamingTheField() throws {
        let dir = try Self.folder(["custos.json": #"{"validate_requests": true}"#])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (store, d) = try Self.dispatcher(dir)
        #expect(StatusMethods.status(store)["validate_requests"] == .bool(true))
        #expect(try Self.decide(d, "User:alice", "read", "Dataset:d1")["decision"] == .string("allow"))
        let typo = rpcError { () throws(RPCError) in _ = try Self.decide(d, "User:alice", "read", "Dataset:d1", context: #"{"mfa": true, "reasn": "x"}"#) }
        #expect(typo?.message == "invalid params: params.context.reasn: attribute reasn is not declared (declared: mfa, reason); did you mean reason?", "\(String(describing: typo))")
        let missing = rpcError { () throws(RPCError) in _ = try Self.decide(d, "User:alice", "read", "Dataset:d1", context: "{}") }
        #expect(missing?.message == "invalid params: params.context: required attribute mfa is missing")
        let group = rpcError { () throws(RPCError) in _ = try Self.decide(d, "Team:onc", "read", "Dataset:d1") }
        #expect(group?.message == "invalid params: params.principal: Action::\"read\" does not apply to principal type Team (it applies to User)")

        let batch = try JSON.parse(#"{"requests": [{"principal": {"type": "User", "id": "alice"}, "action": {"type": "Action", "id": "read"}, "resource": {"type": "Dataset", "id": "d1"}, "context": {"mfa": true}}, {"principal": {"type": "User", "id": "alice"}, "action": {"type": "Action", "id": "read"}, "resource": {"type": "Dataset", "id": "d1"}, "context": {"mfa": "yes"}}]}"#)
        let e = rpcError { () throws(RPCError) in _ = try d.call("decide.batch", params: Params(batch), context: Self.caller) }
        #expect(e?.message.hasPrefix("invalid params: params.requests[1].context.mfa: expected Bool") == true, "\(String(describing: e))")

        let withEntities = try JSON.parse(#"{"principal": {"type": "User", "id": "carl"}, "action": {"type": "Action", "id": "read"}, "resource": {"type": "Dataset", "id": "d1"}, "context": {"mfa": true}, "entities": [{"uid": {"type": "User", "id": "carl"}, "attrs": {"levl": 9}, "parents": []}]}"#)
        let ent = rpcError { () throws(RPCError) in _ = try d.call("decide", params: Params(withEntities), context: Self.caller) }
        #expect(ent?.message.hasPrefix("invalid params: params.entities[0].attrs.levl: attribute levl is not declared") == true, "\(String(describing: ent))")
    }
}

/// The request-validation table of the Cedar tests (Tests/CedarTests/Fixtures/requests).
enum RequestCases {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let request: JSON
        let valid: Bool
        let path: String
        let message: String
        var testDescription: String { name }
    }

    static let directory = exampleRepoRoot + "/Tests/CedarTests/Fixtures/requests"

    static let all: [Case] = {
        guard let data = FileManager.default.contents(atPath: directory + "/cases.json"), let doc = try? JSON.parse([UInt8](data)) else { return [] }
        return (doc["cases"]?.arrayValue ?? []).map { c in
            Case(name: c["name"]?.stringValue ?? "?", request: c["request"] ?? .null, valid: c["valid"]?.boolValue ?? false,
                 path: c["path"]?.stringValue ?? "", message: c["message"]?.stringValue ?? "")
        }
    }()

    static let schema: Schema? = try? Schema.load(path: directory + "/schema.cedarschema")
}
