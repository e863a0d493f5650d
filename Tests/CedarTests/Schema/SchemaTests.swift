import Testing
import Foundation
import Cedar

/// Reading schemas in both of Cedar's formats: the same declarations give the same schema,
/// names resolve as Cedar 4.x resolves them, and every malformed schema is refused with its
/// file and line:col (Cedar syntax) or JSON path (JSON format), never a crash.
@Suite struct SchemaTests {
    @Test func cedarAndJSONFormsOfTheSameSchemaAreEqual() throws {
        let cedar = try ValidationFixture.schema("clinic.cedarschema")
        let json = try ValidationFixture.schema("clinic.cedarschema.json")
        #expect(cedar.entityTypes == json.entityTypes)
        #expect(cedar.actions == json.actions)
        #expect(cedar.environments.count == 5)  // read, list, configure: 1 each; audit: User and Team
    }

    @Test func schemaDeclaresHierarchyTagsEnumsAndActionGroups() throws {
        let s = try ValidationFixture.schema("clinic.cedarschema")
        let user = try #require(s.entityTypes[EntityType("User")])
        #expect(user.allowedParents == [EntityType("Team"), EntityType("Role"), EntityType("Site")])
        #expect(user.attributes["badge"] == AttributeType(.long, required: false))
        #expect(user.attributes["home"]?.type.description == "{ city: String, zip?: String }")
        #expect(s.entityTypes[EntityType("Site")]?.descendants == [EntityType("Team"), EntityType("User"), EntityType("Dataset")])
        #expect(s.entityTypes[EntityType("Role")]?.enumIDs == ["lead", "analyst"])
        #expect(s.entityTypes[EntityType("Dataset")]?.tags == .string)
        let read = try #require(s.actions[EntityUID("Action", "read")])
        #expect(read.ancestors == [EntityUID("Action", "access")])
        #expect(read.context["ip"] == AttributeType(.ext(.ipaddr)))
        #expect(s.actions[EntityUID("Action", "access")]?.descendants == [EntityUID("Action", "read"), EntityUID("Action", "list")])
        #expect(s.actions[EntityUID("Action", "access")]?.principalTypes == [])
    }

    /// (schema, entity type, its attributes as resolved)
    @Test(arguments: [
        ("namespace N { type T = Long; entity E { a: T }; }", "N::E", "{ a: Long }"),
        ("type T = String; namespace N { entity E { a: T }; }", "N::E", "{ a: String }"),
        ("namespace N { entity Long; entity E { a: Long }; }", "N::E", "{ a: N::Long }"),
        ("namespace N { entity T; type T = Bool; entity E { a: T }; }", "N::E", "{ a: Bool }"),
        ("entity E { a: __cedar::Long };", "E", "{ a: Long }"),
        ("entity String; entity E { a: String, b: __cedar::String };", "E", "{ a: String, b: String }"),
        ("namespace A { entity X; } namespace B { entity E { a: A::X }; }", "B::E", "{ a: A::X }"),
        ("entity E { a: Set<ipaddr>, b: decimal, c: datetime, d: duration };", "E", "{ a: Set<ipaddr>, b: decimal, c: datetime, d: duration }"),
        ("type A = { x: B }; type B = Set<Long>; entity E { a: A };", "E", "{ a: { x: Set<Long> } }"),
        ("entity E { \"two words\"?: Long };", "E", "{ \"two words\"?: Long }"),
        ("namespace N { action a appliesTo { principal: E, resource: E }; entity E { a: Action }; }", "N::E", "{ a: N::Action }"),
        ("entity E = { @doc(\"x\") a: Long } tags Set<String>;", "E", "{ a: Long }"),
    ])
    func namesResolveAsCedarResolvesThem(_ text: String, _ type: String, _ expected: String) throws {
        let s = try Schema.parse(cedarSchema: text, file: "s.cedarschema")
        #expect(try #require(s.entityTypes[EntityType(type)]).attributes.description == expected)
    }

    /// (schema, where, what the message says)
    @Test(arguments: [
        ("entity E { a: Foo };", "1:15", "`Foo` is not declared as a common or entity type"),
        ("namespace N { entity E { a: Foo }; }", "1:29", "neither `N::Foo` nor `Foo` is declared"),
        ("entity E;\nentity E;", "2:8", "entity type `E` is declared twice"),
        ("entity A in [B];", "1:14", "`B` is not declared as an entity type"),
        ("entity Action;", "1:8", "`Action` cannot be declared as an entity type"),
        ("entity in;", "1:8", "reserved"),
        ("entity E { a Long };", "1:14", "expected ':'"),
        ("entity E { a: Set<Long };", "1:24", "expected '>'"),
        ("entity E", "1:9", "expected"),
        ("type T = T; entity E { a: T };", "1:6", "common type `T` refers to itself"),
        ("type A = B; type B = A; entity E { a: A };", "1:6", "refers to itself"),
        ("type Long = String;", "1:6", "reserved type name"),
        ("entity User; namespace N { entity User; }", "1:35", "`N::User` shadows `User`"),
        ("namespace N { entity A; } namespace N { entity B; }", "1:27", "namespace `N` is declared twice"),
        ("action a in [b];", "1:14", "action group Action::\"b\" is not declared"),
        ("action a in [b]; action b in [a];", "1:8", "cycle"),
        ("action a appliesTo { principal: [U], resource: [U] };", "1:34", "`U` is not declared as an entity type"),
        ("entity U; action a appliesTo { resource: [U] };", "1:11", "without 'principal'"),
        ("entity U; action a appliesTo { principal: [], resource: [U] };", "1:32", "lists no principal types"),
        ("entity U; action a appliesTo { principal: U, principal: U, resource: U };", "1:46", "given twice"),
        ("entity U; action a appliesTo { principal: U, resource: U, context: Ctx };", "1:68", "`Ctx` is not declared as a common type"),
        ("entity U; type C = Long; action a appliesTo { principal: U, resource: U, context: C };", "1:33", "context of action Action::\"a\" must be a record"),
        ("entity E { a: Long, a: String };", "1:21", "attribute \"a\" is declared twice"),
        ("entity E enum [];", "1:16", "expected an entity id string"),
        ("namespace __cedar { entity E; }", "1:11", "reserved"),
        ("@doc(\"a\") @doc(\"b\") entity E;", "1:11", "duplicate annotation @doc"),
        ("entity E { a?: Long? };", "1:20", "expected"),
    ])
    func malformedCedarSchemasNameLineAndColumn(_ text: String, _ at: String, _ says: String) {
        do {
            _ = try Schema.parse(cedarSchema: text, file: "s.cedarschema")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.file == "s.cedarschema")
            #expect(error.position == at, "\(error)")
            #expect(error.message.contains(says), "\(error)")
        }
    }

    /// (schema, JSON path, what the message says)
    @Test(arguments: [
        (#"{"N": {"entityTypes": {"E": {"shapes": {}}}, "actions": {}}}"#, "N.entityTypes.E", "unknown key \"shapes\""),
        (#"{"N": {"entityTypes": {}}}"#, "N.actions", "actions is required"),
        (#"{"": {"entityTypes": {"E": {"shape": {"type": "Long"}}}, "actions": {}}}"#, "[\"\"].entityTypes.E", "the shape of entity type `E` must be a record type"),
        (#"{"": {"entityTypes": {"E": {"shape": {"type": "Record", "attributes": {"a": {"type": "Extension", "name": "uuid"}}}}}, "actions": {}}}"#, "[\"\"].entityTypes.E.shape.attributes.a.name", "`uuid` is not an extension type"),
        (#"{"": {"entityTypes": {"E": {"shape": {"type": "Record", "attributes": {"a": {"type": "Set"}}}}}, "actions": {}}}"#, "[\"\"].entityTypes.E.shape.attributes.a", "needs \"element\""),
        (#"{"": {"entityTypes": {"E": {"shape": {"type": "Record", "attributes": {"a": {"type": "Long", "element": {"type": "Long"}}}}}}, "actions": {}}}"#, "[\"\"].entityTypes.E.shape.attributes.a.element", "cannot have \"element\""),
        (#"{"": {"entityTypes": {"E": {"enum": ["a"], "memberOfTypes": []}}, "actions": {}}}"#, "[\"\"].entityTypes.E.memberOfTypes", "enumerated entity type cannot have memberOfTypes"),
        (#"{"": {"entityTypes": {}, "actions": {"a": {"attributes": {}}}}}"#, "[\"\"].actions.a.attributes", "action attributes are not supported"),
        (#"{"": {"entityTypes": {"E": {"memberOfTypes": ["not a name"]}}, "actions": {}}}"#, "[\"\"].entityTypes.E.memberOfTypes[0]", "not a valid entity type name"),
        (#"{"": {"entityTypes": {}, "actions": {"a": {"appliesTo": {"principalTypes": ["U"]}}}}}"#, "[\"\"].actions.a.appliesTo.resourceTypes", "must be an array"),
        (#"[1]"#, "", "a JSON schema is an object of namespaces"),
        (#"{"": {"entityTypes": {"E": {"shape": {"type": "Record", "attributes": {"a": {"type": "Long", "required": "no"}}}}}, "actions": {}}}"#, "[\"\"].entityTypes.E.shape.attributes.a.required", "required must be true or false"),
    ])
    func malformedJSONSchemasNameTheJSONPath(_ text: String, _ path: String, _ says: String) {
        do {
            _ = try Schema.parse(jsonText: text, file: "s.json")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.position == path, "\(error)")
            #expect(error.message.contains(says), "\(error)")
        }
    }

    @Test func invalidJSONNamesLineAndColumn() {
        do {
            _ = try Schema.parse(jsonText: "{\n  \"\": {\n    \"entityTypes\": {,\n", file: "s.json")
            Issue.record("accepted")
        } catch {
            #expect(error.position.hasPrefix("3:"), "\(error)")
        }
    }

    @Test func deeplyNestedTypesAreRefusedNotOverflowed() {
        let deep = String(repeating: "Set<", count: 5_000) + "Long" + String(repeating: ">", count: 5_000)
        #expect(throws: SchemaError.self) { try Schema.parse(cedarSchema: "entity E { a: \(deep) };", file: "s") }
        var json = #"{"type": "Long"}"#
        for _ in 0..<1_000 { json = #"{"type": "Set", "element": \#(json)}"# }
        #expect(throws: SchemaError.self) {
            try Schema.parse(jsonText: #"{"": {"entityTypes": {"E": {"shape": {"type": "Record", "attributes": {"a": \#(json)}}}}, "actions": {}}}"#, file: "s")
        }
        // A long chain of common types is bounded too.
        var chain = "entity E { a: T0 };\n"
        for i in 0..<1_000 { chain += "type T\(i) = T\(i + 1);\n" }
        chain += "type T1000 = Long;\n"
        #expect(throws: SchemaError.self) { try Schema.parse(cedarSchema: chain, file: "s") }
    }

    @Test func everyTruncationOfASchemaParsesOrFailsWithALocation() throws {
        let text = try TestPaths.read(TestPaths.fixture("validation/clinic.cedarschema"))
        let scalars = Array(text.unicodeScalars)
        for n in stride(from: 0, to: scalars.count, by: 3) {
            var cut = String.UnicodeScalarView()
            cut.append(contentsOf: scalars[..<n])
            do { _ = try Schema.parse(cedarSchema: String(cut), file: "s") } catch {
                #expect(!error.position.isEmpty, "cut at \(n): \(error)")
            }
        }
    }
}
