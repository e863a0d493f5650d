import Testing
import Foundation
import Cedar
import CustosJSON

/// Fixtures/templates: templates.cedar linked by cases.json, every decision, reason and refused
/// link checked against the reference engine (scripts/check_template_links.py).
enum TemplateFixture {
    static let directory = TestPaths.fixture("templates")

    static let doc: JSON = (try? JSON.parse(TestPaths.read(directory + "/cases.json"))) ?? .null

    /// Templates and static policies as Cedar numbers them (`policy0`, ... in file order).
    static func policies() throws -> [Policy] {
        let asts = try CedarParser.parsePolicies(TestPaths.read(directory + "/templates.cedar"), file: "templates.cedar")
        return try asts.enumerated().map { i, a in try Policy(id: "policy\(i)", ast: a) }
    }

    /// Links one spec, naming the template by its `@id` as cedarpy's `with_linked` does.
    static func link(_ spec: TemplateLinkSpec, in policies: [Policy]) throws -> Policy {
        guard let t = policies.first(where: { $0.annotatedID == spec.templateID }) else {
            throw TemplateLinkError("no policy named \(spec.templateID)")
        }
        return try t.linked(id: spec.linkID, values: spec.values)
    }

    /// The static policies and every link of cases.json, as one set.
    static func linkedSet() throws -> PolicySet {
        let all = try policies()
        let specs = try TemplateLinkSpec.parse(doc["links"] ?? .null)
        return PolicySet(compiled: all.filter { !$0.isTemplate } + (try specs.map { try link($0, in: all) }))
    }

    struct Request: CustomTestStringConvertible, Sendable {
        let name: String
        let json: JSON
        let decision: String
        let reasons: [String]
        var testDescription: String { name }
    }

    static let requests: [Request] = (doc["requests"]?.arrayValue ?? []).map {
        Request(name: $0["name"]?.stringValue ?? "?", json: $0["request"] ?? .null, decision: $0["decision"]?.stringValue ?? "?",
                reasons: ($0["reasons"]?.arrayValue ?? []).compactMap(\.stringValue))
    }

    struct BadLink: CustomTestStringConvertible, Sendable {
        let name: String
        let link: JSON
        let message: String
        var testDescription: String { name }
    }

    static let badLinks: [BadLink] = (doc["bad_links"]?.arrayValue ?? []).map {
        BadLink(name: $0["name"]?.stringValue ?? "?", link: $0["link"] ?? .null, message: $0["message"]?.stringValue ?? "?")
    }

    static func schema() throws -> Schema { try Schema.load(path: directory + "/schema.cedarschema") }
}

@Test func theTemplateFixtureHasRequestsAndRefusedLinks() {
    #expect(TemplateFixture.requests.count >= 8)
    #expect(TemplateFixture.badLinks.count >= 3)
}

@Test(arguments: TemplateFixture.requests)
func linkedTemplatesDecideAsTheReferenceEngineDecides(_ c: TemplateFixture.Request) throws {
    let set = try TemplateFixture.linkedSet()
    let entities = try EntityStore.load(json: TemplateFixture.doc["entities"] ?? .null)
    let r = set.authorize(try Cedar.Request(json: c.json), entities: entities)
    #expect(r.decision.rawValue == c.decision)
    #expect(r.reasons.map { set.policies[$0].id }.sorted() == c.reasons.sorted())
    #expect(r.errors.isEmpty)
}

@Test(arguments: TemplateFixture.badLinks)
func aLinkTheReferenceEngineRefusesIsRefused(_ c: TemplateFixture.BadLink) throws {
    let spec = try #require(try TemplateLinkSpec.parse(.array([c.link])).first)
    let policies = try TemplateFixture.policies()
    let e = #expect(throws: TemplateLinkError.self) { try TemplateFixture.link(spec, in: policies) }
    #expect(e?.message.contains(c.message) == true, "\(String(describing: e))")
}

@Test func anUnlinkedTemplateNeverMatchesAndLinkingLeavesItAsItWas() throws {
    let all = try TemplateFixture.policies()
    let template = try #require(all.first { $0.annotatedID == "banned" })
    let linked = try template.linked(id: "ban-bob", values: [.principal: EntityUID("User", "bob")])
    #expect(template.isTemplate && !linked.isTemplate)
    #expect(linked.link?.template == template.id)
    #expect(linked.link?.values == [.principal: EntityUID("User", "bob")])
    #expect(linked.principal == .eq(.entity(EntityUID("User", "bob"))))
    #expect(linked.annotatedID == "banned" && linked.id == "ban-bob")
    // The template alone decides nothing, even for the principal its link names.
    let request = Cedar.Request(principal: EntityUID("User", "bob"), action: EntityUID("Action", "read"), resource: EntityUID("Dataset", "d1"))
    #expect(PolicySet(compiled: [template]).authorize(request, entities: .empty).reasons.isEmpty)
    #expect(PolicySet(compiled: [linked]).authorize(request, entities: .empty).reasons == [0])
}

@Test func theTemplatesValidateAndSoDoTheirLinks() throws {
    let validator = Validator(schema: try TemplateFixture.schema())
    let all = try TemplateFixture.policies()
    for p in all { #expect(validator.validate(p).errors.isEmpty, "\(p.id)") }
    let set = try TemplateFixture.linkedSet()
    #expect(validator.validate(set).passed, "\(validator.validate(set).errors)")
}

/// Cedar checks a link's slot values (its template is validated on its own): their types must
/// be declared and some action in the scope must apply as linked. Custos also checks an
/// enumerated type's id and an action value's declaration, which the reference does not.
@Test(arguments: [
    ("team-reads", #"{"?principal": "Team::\"oncology\"", "?resource": "Dataset::\"d1\""}"#, ""),
    ("team-reads", #"{"?principal": "Taem::\"oncology\"", "?resource": "Dataset::\"d1\""}"#, "invalidActionApplication,unrecognizedEntityType"),
    ("team-reads", #"{"?principal": "Team::\"oncology\"", "?resource": "Folder::\"f1\""}"#, "invalidActionApplication"),
    ("banned", #"{"?principal": "Folder::\"f1\""}"#, "invalidActionApplication"),
    ("banned", #"{"?principal": "Role::\"lead\""}"#, ""),
    ("banned", #"{"?principal": "Role::\"boss\""}"#, "invalidEnumEntity"),
    ("team-reads", #"{"?principal": "Role::\"lead\"", "?resource": "Dataset::\"d1\""}"#, ""),
    ("owner-reads-folder", #"{"?principal": "User::\"a\"", "?resource": "Dataset::\"d1\""}"#, ""),
    ("owner-reads-folder", #"{"?principal": "Team::\"t\"", "?resource": "Folder::\"f1\""}"#, "invalidActionApplication"),
    ("banned", #"{"?principal": "Action::\"read\""}"#, "invalidActionApplication"),
    ("banned", #"{"?principal": "Action::\"raed\""}"#, "invalidActionApplication,unrecognizedActionId"),
])
func aLinkIsValidatedByItsSlotValues(_ template: String, _ args: String, _ kinds: String) throws {
    let spec = try #require(try TemplateLinkSpec.parse(JSON.parse(#"[{"template_id": "\#(template)", "link_id": "l", "args": \#(args)}]"#)).first)
    let linked = try TemplateFixture.link(spec, in: TemplateFixture.policies())
    let errors = Validator(schema: try TemplateFixture.schema()).validate(link: linked)
    #expect(Set(errors.map(\.kind.rawValue)).sorted().joined(separator: ",") == kinds, "\(errors)")
    if kinds.contains("unrecognizedEntityType") {
        #expect(errors.contains { $0.help == "did you mean Team?" }, "\(errors)")
    }
}

@Test(arguments: [
    (#"{}"#, "", "expected a JSON array of links"),
    (#"[1]"#, "[0]", "expected a link"),
    (#"[{"template_id": "t", "link_id": "l"}]"#, "[0]", "missing \"args\""),
    (#"[{"template_id": "t", "args": {}}]"#, "[0]", "missing \"link_id\""),
    (#"[{"template_id": "", "link_id": "l", "args": {}}]"#, "[0].template_id", "non-empty string"),
    (#"[{"template_id": "t", "link_id": "l", "args": {}, "new_id": "x"}]"#, "[0].new_id", "unknown key"),
    (#"[{"template_id": "t", "link_id": "l", "args": {"?who": "User::\"a\""}}]"#, "[0].args.?who", "not a slot"),
    (#"[{"template_id": "t", "link_id": "l", "args": {"?principal": "alice"}}]"#, "[0].args.?principal", "expected an entity such as User::\"alice\""),
    (#"[{"template_id": "t", "link_id": "l", "args": {"?principal": {"type": "User"}}}]"#, "[0].args.?principal", "\"id\""),
    (#"[{"template_id": "t", "link_id": "l", "args": []}]"#, "[0].args", "expected an object"),
])
func aMalformedLinksFileNamesTheJSONPath(_ text: String, _ path: String, _ message: String) throws {
    let json = try JSON.parse(text)
    let e = #expect(throws: FormatError.self) { try TemplateLinkSpec.parse(json) }
    #expect(e?.path == path, "\(String(describing: e))")
    #expect(e?.message.contains(message) == true, "\(String(describing: e))")
}

@Test func linksAcceptTheCedarCLIsStringsAndEntityObjects() throws {
    let specs = try TemplateLinkSpec.parse(JSON.parse(#"[{"template_id": "t", "link_id": "l", "args": {"?principal": "Ns::User::\"a\\\"b\"", "?resource": {"type": "Doc", "id": "d"}}}]"#))
    #expect(specs == [TemplateLinkSpec(templateID: "t", linkID: "l",
                                       values: [.principal: EntityUID("Ns::User", "a\"b"), .resource: EntityUID("Doc", "d")])])
}
