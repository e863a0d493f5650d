import Testing
import Cedar
import CustosJSON

/// Entities, contexts and requests read against a schema (Fixtures/validation/clinic.cedarschema):
/// implicit entity references and extension values are read as the schema declares them, and
/// anything that does not conform is refused with the JSON path of the offending value.
struct SchemaEntitiesTests {
    static let schema = ValidationFixture.schemas["clinic.cedarschema"]!

    static func user(_ attrs: String, parents: String = "[]") -> String {
        #"{"uid": {"type": "User", "id": "ana"}, "attrs": \#(attrs), "parents": \#(parents)}"#
    }
    static let anaAttrs = #"{"name": "Ana", "level": 3, "home": {"city": "Basel"}, "teams": [{"type": "Team", "id": "t"}], "active": true}"#
    static let dataset = #"""
    {"uid": {"type": "Dataset", "id": "d1"}, "parents": [{"type": "Site", "id": "s"}], "tags": {"study": "ONC"},
     "attrs": {"owner": {"type": "User", "id": "ana"}, "state": "raw", "labels": ["x"], "created": "2024-01-01",
               "retention": "30d", "size": "1.5", "source": {"fn": "ip", "arg": "10.0.0.1"}}}
    """#

    @Test func implicitEntityReferencesAndExtensionValuesAreReadAsDeclared() throws {
        let store = try EntityStore.load(text: "[\(Self.user(Self.anaAttrs)), \(Self.dataset)]", file: "e.json", schema: Self.schema)
        let d = try #require(store.entry(EntityUID("Dataset", "d1"))).entity
        #expect(d.attrs["owner"] == .entity(EntityUID("User", "ana")))
        #expect(d.attrs["created"]?.typeName == "datetime")
        #expect(d.attrs["retention"]?.typeName == "duration")
        #expect(d.attrs["size"]?.typeName == "decimal")
        #expect(d.attrs["source"]?.typeName == "ipaddr")
        #expect(d.tags["study"] == .string("ONC"))
        let ana = try #require(store.entry(EntityUID("User", "ana"))).entity
        #expect(ana.attrs["home"] == .record(CedarRecord([("city", .string("Basel"))])))
        // The schema's actions are in the store with their groups.
        #expect(store.isDescendant(EntityUID("Action", "read"), of: EntityUID("Action", "access")))
    }

    @Test func withoutTheSchemaTheSameEntitiesReadDifferently() throws {
        let store = try EntityStore.load(text: "[\(Self.dataset)]", file: "e.json")
        let d = try #require(store.entry(EntityUID("Dataset", "d1"))).entity
        #expect(d.attrs["owner"]?.typeName == "record")
        #expect(d.attrs["size"] == .string("1.5"))
    }

    /// (entity JSON, JSON path, what the error says)
    @Test(arguments: [
        (user(#"{"name": "Ana", "levle": 3, "home": {"city": "B"}, "teams": [], "active": true}"#), "[0].attrs.levle", "did you mean level?"),
        (user(#"{"name": "Ana", "home": {"city": "B"}, "teams": [], "active": true}"#), "[0].attrs", "required attribute level is missing"),
        (user(#"{"name": "Ana", "level": "3", "home": {"city": "B"}, "teams": [], "active": true}"#), "[0].attrs.level", "expected Long, got string"),
        (user(#"{"name": "Ana", "level": 3, "home": {"city": "B", "country": "CH"}, "teams": [], "active": true}"#), "[0].attrs.home.country", "not declared"),
        (user(#"{"name": "Ana", "level": 3, "home": {}, "teams": [], "active": true}"#), "[0].attrs.home", "required attribute city is missing"),
        (user(#"{"name": "Ana", "level": 3, "home": {"city": "B"}, "teams": [{"type": "Site", "id": "s"}], "active": true}"#), "[0].attrs.teams[0]", "expected an entity of type Team"),
        (user(#"{"name": "Ana", "level": 3, "home": {"city": "B"}, "teams": "t", "active": true}"#), "[0].attrs.teams", "a JSON array"),
        (user(anaAttrs, parents: #"[{"type": "Dataset", "id": "d"}]"#), "[0].parents[0]", "User entities cannot be members of Dataset entities"),
        (user(anaAttrs, parents: #"[{"type": "Role", "id": "admin"}]"#), "[0].parents[0]", "not one of the ids declared for Role"),
        (user(anaAttrs, parents: #"[{"type": "Site", "id": "s"}]"#), "", ""),
        (#"{"uid": {"type": "Usr", "id": "x"}, "attrs": {}, "parents": []}"#, "[0].uid", "entity type Usr is not declared in the schema; did you mean User?"),
        (#"{"uid": {"type": "Role", "id": "boss"}, "attrs": {}, "parents": []}"#, "[0].uid", "not one of the ids declared for Role"),
        (#"{"uid": {"type": "Site", "id": "s"}, "attrs": {}, "parents": [], "tags": {"a": "b"}}"#, "[0].tags.a", "has no tags"),
        (#"{"uid": {"type": "Device", "id": "v"}, "attrs": {"ip": "10.0.0.1"}, "parents": [], "tags": {"a": "b"}}"#, "[0].tags.a", "expected Long"),
        (#"{"uid": {"type": "Device", "id": "v"}, "attrs": {"ip": "10.0.0.300"}, "parents": []}"#, "[0].attrs.ip", "not a valid ipaddr"),
        (#"{"uid": {"type": "Device", "id": "v"}, "attrs": {"ip": 10}, "parents": []}"#, "[0].attrs.ip", "expected a ipaddr value"),
        (#"{"uid": {"type": "Action", "id": "delete"}, "attrs": {}, "parents": []}"#, "[0].uid", "action Action::\"delete\" is not declared"),
        (#"{"uid": {"type": "Action", "id": "read"}, "attrs": {}, "parents": []}"#, "", "different action groups"),
        (#"{"uid": {"type": "Action", "id": "read"}, "attrs": {}, "parents": [{"type": "Action", "id": "access"}]}"#, "", ""),
    ])
    func nonConformingEntitiesNameTheJSONPath(_ entity: String, _ path: String, _ says: String) {
        do {
            _ = try EntityStore.load(text: "[\(entity)]", file: "e.json", schema: Self.schema)
            #expect(says.isEmpty, "accepted: \(entity)")
        } catch {
            #expect(!says.isEmpty, "refused: \(error)")
            #expect(error.file == "e.json")
            #expect(error.path == path, "\(error)")
            #expect(error.message.contains(says), "\(error)")
        }
    }

    static let request = #"{"principal": {"type": "User", "id": "ana"}, "action": {"type": "Action", "id": "read"}, "resource": {"type": "Dataset", "id": "d1"}, "context": {"mfa": true, "ip": "10.1.2.3", "now": "2024-06-01T12:00:00Z"}}"#

    @Test func contextsAreReadByTheActionsContextType() throws {
        let r = try Request(json: JSON.parse(Self.request), schema: Self.schema)
        #expect(r.context["ip"]?.typeName == "ipaddr")
        #expect(r.context["now"]?.typeName == "datetime")
    }

    /// (request JSON, JSON path, what the error says)
    @Test(arguments: [
        (#"{"principal": {"type": "Team", "id": "t"}, "action": {"type": "Action", "id": "read"}, "resource": {"type": "Dataset", "id": "d1"}, "context": {"mfa": true, "ip": "10.1.2.3", "now": "2024-06-01"}}"#, "principal", "does not apply to principal type Team"),
        (#"{"principal": {"type": "User", "id": "u"}, "action": {"type": "Action", "id": "read"}, "resource": {"type": "Device", "id": "v"}, "context": {"mfa": true, "ip": "10.1.2.3", "now": "2024-06-01"}}"#, "resource", "does not apply to resource type Device"),
        (#"{"principal": {"type": "User", "id": "u"}, "action": {"type": "Action", "id": "erase"}, "resource": {"type": "Dataset", "id": "d"}, "context": {}}"#, "action", "not declared"),
        (#"{"principal": {"type": "User", "id": "u"}, "action": {"type": "Action", "id": "read"}, "resource": {"type": "Dataset", "id": "d"}, "context": {"mfa": true, "ip": "10.1.2.3"}}"#, "context", "required attribute now is missing"),
        (#"{"principal": {"type": "User", "id": "u"}, "action": {"type": "Action", "id": "read"}, "resource": {"type": "Dataset", "id": "d"}, "context": {"mfa": "yes", "ip": "10.1.2.3", "now": "2024-06-01"}}"#, "context.mfa", "expected Bool"),
        (#"{"principal": {"type": "User", "id": "u"}, "action": {"type": "Action", "id": "read"}, "resource": {"type": "Dataset", "id": "d"}, "context": {"mfa": true, "ip": "10.1.2.3", "now": "2024-06-01", "nfa": 1}}"#, "context.nfa", "not declared"),
        (#"{"principal": {"type": "User", "id": "u"}, "action": {"type": "Action", "id": "read"}, "resource": {"type": "Dataset", "id": "d"}}"#, "context", "required attribute ip is missing"),
    ])
    func nonConformingRequestsNameTheField(_ text: String, _ path: String, _ says: String) throws {
        let json = try JSON.parse(text)
        do {
            _ = try Request(json: json, schema: Self.schema)
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.path == path, "\(error)")
            #expect(error.message.contains(says), "\(error)")
        }
    }
}
