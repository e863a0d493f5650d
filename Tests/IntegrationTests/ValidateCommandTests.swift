import Testing
import Foundation

/// `custos validate` and the validation part of `custos cedar-test`, run as a user runs them.
@Suite struct ValidateCommandTests {
    static let schema = """
    namespace Clinic {
      entity Study;
      entity User in [Study] { study: Study };
      entity Dataset in [Study] { study: Study, data_state: String, hold?: Bool };
      action read appliesTo { principal: User, resource: Dataset, context: { mfa: Bool } };
    }
    """
    static let jsonSchema = """
    {"Clinic": {"entityTypes": {"Study": {}, "User": {"memberOfTypes": ["Study"], "shape": {"type": "Record", "attributes": {"study": {"type": "Entity", "name": "Study"}}}},
      "Dataset": {"memberOfTypes": ["Study"], "shape": {"type": "Record", "attributes": {"study": {"type": "Entity", "name": "Study"}, "data_state": {"type": "String"}, "hold": {"type": "Boolean", "required": false}}}}},
      "actions": {"read": {"appliesTo": {"principalTypes": ["User"], "resourceTypes": ["Dataset"], "context": {"type": "Record", "attributes": {"mfa": {"type": "Boolean"}}}}}}}}
    """
    static let good = """
    @id("scientists-read-own-study")
    permit(principal, action == Clinic::Action::"read", resource) when { resource.study == principal.study && context.mfa };
    @id("forbid-identified")
    forbid(principal, action, resource) when { resource.data_state == "identified" };
    """

    func folder(schema: String = schema, schemaName: String = "schema.cedarschema", policies: String = good) throws -> URL {
        let dir = try Binary.scratch()
        try schema.write(to: dir.appendingPathComponent(schemaName), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("policies"), withIntermediateDirectories: true)
        try policies.write(to: dir.appendingPathComponent("policies/p.cedar"), atomically: true, encoding: .utf8)
        return dir
    }

    func validate(_ dir: URL, schemaName: String = "schema.cedarschema") throws -> Binary.Outcome {
        try Binary.run(["validate", "--schema", dir.appendingPathComponent(schemaName).path,
                        "--policies", dir.appendingPathComponent("policies").path])
    }

    @Test(arguments: [("schema.cedarschema", schema), ("schema.cedarschema.json", jsonSchema)])
    func validPoliciesValidateInEitherSchemaFormat(_ name: String, _ text: String) throws {
        let dir = try folder(schema: text, schemaName: name)
        let out = try validate(dir, schemaName: name)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.hasPrefix("ok: 2 policies validate against"))
        #expect(out.stderr.isEmpty)
    }

    @Test func aMisspeltAttributeFailsWithFileLineColumnPolicyAndSuggestion() throws {
        let dir = try folder(policies: Self.good.replacingOccurrences(of: "resource.data_state", with: "resource.data_stat"))
        let out = try validate(dir)
        #expect(out.status == 1)
        let p = dir.appendingPathComponent("policies/p.cedar").path
        #expect(out.stderr.contains(#"error: \#(p):4:44: policy "forbid-identified" (policy1): attribute data_stat not found on entity type Clinic::Dataset; did you mean data_state?"#), "\(out.stderr)")
        #expect(out.stdout.contains("invalid: 1 error in 1 of 2 policies"))
    }

    @Test(arguments: [
        ("when { 1 }", "expected Bool but found Long"),
        ("when { resource.hold }", "attribute hold of entity type Clinic::Dataset is optional"),
        ("when { principal in Clinic::Team::\"t\" }", "entity type Clinic::Team is not declared"),
    ])
    func typeErrorsAreReported(_ condition: String, _ says: String) throws {
        let dir = try folder(policies: "permit(principal, action, resource) \(condition);")
        let out = try validate(dir)
        #expect(out.status == 1)
        #expect(out.stderr.contains(says), "\(out.stderr)")
    }

    @Test func aSchemaThatDoesNotParseNamesItsLineAndColumn() throws {
        let dir = try folder(schema: "namespace Clinic {\n  entity User { study Study };\n}")
        let out = try validate(dir)
        #expect(out.status == 1)
        #expect(!out.crashed)
        #expect(out.stderr.contains(dir.appendingPathComponent("schema.cedarschema").path + ":2:23: expected ':'"), "\(out.stderr)")
    }

    @Test(arguments: [[String](), ["--schema", "/nonexistent/s.cedarschema", "--policies", "/tmp"], ["--policies", "/tmp"]])
    func missingArgumentsAreUsageErrors(_ args: [String]) throws {
        let out = try Binary.run(["validate"] + args)
        #expect(out.status == 2)
    }

    @Test func validateHasHelp() throws {
        let out = try Binary.run(["validate", "--help"])
        #expect(out.status == 0)
        #expect(out.stdout.contains("Usage: custos validate --schema FILE --policies DIR|FILE"))
    }

    /// A test in the upstream format whose `shouldValidate` is `shouldValidate`.
    func upstreamTest(shouldValidate: Bool) throws -> URL {
        let dir = try folder()
        let entities = #"[{"uid": {"type": "Clinic::User", "id": "ana"}, "attrs": {"study": {"type": "Clinic::Study", "id": "s1"}}, "parents": []}, {"uid": {"type": "Clinic::Dataset", "id": "d1"}, "attrs": {"study": {"type": "Clinic::Study", "id": "s1"}, "data_state": "raw"}, "parents": []}]"#
        try entities.write(to: dir.appendingPathComponent("entities.json"), atomically: true, encoding: .utf8)
        let test = """
        {"policies": "policies/p.cedar", "entities": "entities.json", "schema": "schema.cedarschema", "shouldValidate": \(shouldValidate),
         "requests": [{"description": "ana reads d1", "principal": {"type": "Clinic::User", "id": "ana"},
           "action": {"type": "Clinic::Action", "id": "read"}, "resource": {"type": "Clinic::Dataset", "id": "d1"},
           "context": {"mfa": true}, "decision": "allow", "reason": ["policy0"], "errors": []}]}
        """
        try test.write(to: dir.appendingPathComponent("test.json"), atomically: true, encoding: .utf8)
        return dir
    }

    @Test func cedarTestPrintsTheValidationTallyBeforeTheRequestTally() throws {
        let dir = try upstreamTest(shouldValidate: true)
        let out = try Binary.run(["cedar-test", "--root", dir.path, dir.appendingPathComponent("test.json").path])
        #expect(out.status == 0, "\(out.stdout)")
        #expect(out.stdout == "validation: 1 agree, 0 disagree\n1 passed, 0 failed\n")
    }

    @Test func aValidationDisagreementFailsTheRun() throws {
        let dir = try upstreamTest(shouldValidate: false)
        let out = try Binary.run(["cedar-test", "--root", dir.path, dir.appendingPathComponent("test.json").path])
        #expect(out.status == 1)
        #expect(out.stdout.contains("(validation): expected a validation error, got none"), "\(out.stdout)")
        #expect(out.stdout.hasSuffix("validation: 0 agree, 1 disagree\n1 passed, 0 failed\n"))
    }
}
