import Testing
import Foundation
import Cedar
import CustosJSON

/// The shipped example policies (policies/) against a schema for them
/// (Fixtures/validation/example-policies.cedarschema; cedarpy agrees on both counts).
struct ExamplePoliciesTests {
    static let schemaPath = TestPaths.fixture("validation/example-policies.cedarschema")
    static let folder = TestPaths.repository.appendingPathComponent("policies").path

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
