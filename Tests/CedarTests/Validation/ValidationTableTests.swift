import Testing
import Foundation
import Cedar

/// One row of Fixtures/validation/cases.txt (checked against cedarpy by
/// scripts/check_validation_cases.py): a schema, a policy and the validation error kinds the
/// reference validator reports for it ("ok" for none).
struct ValidationCase: CustomTestStringConvertible, Sendable {
    let line: Int
    let schema: String
    let expected: String
    let policy: String
    var testDescription: String { "line \(line): \(policy) ==> \(expected)" }

    static let all: [ValidationCase] = {
        let text = (try? TestPaths.read(TestPaths.fixture("validation/cases.txt"))) ?? ""
        var out: [ValidationCase] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(raw)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            let parts = line.components(separatedBy: " | ")
            guard parts.count >= 3 else { continue }
            out.append(ValidationCase(line: i + 1, schema: parts[0], expected: parts[1],
                                      policy: parts[2...].joined(separator: " | ")))
        }
        return out
    }()
}

enum ValidationFixture {
    static func schema(_ file: String) throws -> Schema {
        let path = TestPaths.fixture("validation/" + file)
        return try Schema.load(path: path)
    }

    static let schemas: [String: Schema] = {
        var out: [String: Schema] = [:]
        for f in ["clinic.cedarschema", "clinic.cedarschema.json", "lab.cedarschema"] { out[f] = try! schema(f) }
        return out
    }()

    static func kinds(_ policy: String, _ schema: Schema) throws -> String {
        let set = try PolicySet.parse(policy, file: "case.cedar")
        let kinds = Set(Validator(schema: schema).validate(set).errors.map(\.kind.rawValue)).sorted()
        return kinds.isEmpty ? "ok" : kinds.joined(separator: ",")
    }
}

@Test func validationTableCoversEveryErrorKindWithPassingAndFailingPolicies() {
    #expect(ValidationCase.all.count >= 120)
    let seen = Set(ValidationCase.all.flatMap { $0.expected.components(separatedBy: ",") })
    // `noTagsAllowed` cannot arise in strict mode: `hasTag` on a type without tags is `False`,
    // so no `&&` or `if` carries its capability to a `getTag`. The reference keeps the kind.
    for kind in ValidationError.Kind.allCases where kind != .noTagsAllowed {
        #expect(seen.contains(kind.rawValue), "no case expects \(kind)")
    }
    #expect(seen.contains("ok"))
}

@Test(arguments: ValidationCase.all)
func policyValidatesAsTheReferenceValidatorDoes(_ c: ValidationCase) throws {
    let cedar = try #require(ValidationFixture.schemas[c.schema + ".cedarschema"])
    #expect(try ValidationFixture.kinds(c.policy, cedar) == c.expected)
    if let json = ValidationFixture.schemas[c.schema + ".cedarschema.json"] {
        #expect(try ValidationFixture.kinds(c.policy, json) == c.expected, "JSON schema")
    }
}
