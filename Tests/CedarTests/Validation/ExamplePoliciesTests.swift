import Testing
import Foundation
import Cedar
import CustosJSON

/// The shipped example policies (policies/) against their schema (policies/schema.cedarschema;
/// cedarpy agrees on both counts). The daemon's load of the folder checks the same
/// (`custos check --strict` in `make test`); these keep the Cedar module's own verdict.
struct ExamplePoliciesTests {
    static let folder = TestPaths.repository.appendingPathComponent("policies").path
    static let schemaPath = folder + "/schema.cedarschema"

    @Test func everyExamplePolicyValidatesAgainstItsSchema() throws {
        let schema = try Schema.load(path: Self.schemaPath)
        let policies = try PolicySet.load(path: Self.folder)
        let report = Validator(schema: schema).validate(policies)
        #expect(report.errors.isEmpty, "\(report.errors)")
        #expect(report.warnings.isEmpty, "\(report.warnings)")
        #expect(policies.policies.count >= 14)
    }

    @Test func theExampleEntitiesConformToTheSchema() throws {
        let schema = try Schema.load(path: Self.schemaPath)
        let text = try TestPaths.read(Self.folder + "/entities.json")
        let store = try EntityStore.load(text: text, file: "entities.json", schema: schema)
        #expect(store.count == (try EntityStore.load(text: text, file: "entities.json")).count + schema.actions.count)
    }
}
