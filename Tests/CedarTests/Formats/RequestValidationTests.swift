import Testing
import Foundation
import Cedar
import CustosJSON

/// One case of Fixtures/requests/cases.json: a request against Fixtures/requests/schema.cedarschema
/// and the verdict the reference engine gives it (scripts/check_request_validation.py), with
/// the JSON path and a part of the message Custos reports when it does not conform.
struct RequestValidationCase: CustomTestStringConvertible, Sendable {
    let name: String
    let request: JSON
    let valid: Bool
    let path: String
    let message: String
    var testDescription: String { name }

    static let fixtureDirectory = TestPaths.fixture("requests")

    static let all: [RequestValidationCase] = {
        guard let text = try? TestPaths.read(fixtureDirectory + "/cases.json"), let doc = try? JSON.parse(text) else { return [] }
        return (doc["cases"]?.arrayValue ?? []).map { c in
            RequestValidationCase(name: c["name"]?.stringValue ?? "?", request: c["request"] ?? .null,
                                  valid: c["valid"]?.boolValue ?? false, path: c["path"]?.stringValue ?? "",
                                  message: c["message"]?.stringValue ?? "")
        }
    }()

    static let schema: Schema? = try? Schema.load(path: fixtureDirectory + "/schema.cedarschema")
}

@Test func theRequestValidationTableHasConformingAndNonConformingRequests() throws {
    _ = try #require(RequestValidationCase.schema)
    #expect(RequestValidationCase.all.count >= 20)
    #expect(RequestValidationCase.all.contains { $0.valid })
    for path in ["principal", "action", "resource", "context"] {
        #expect(RequestValidationCase.all.contains { !$0.valid && $0.path == path }, "no case fails at \(path)")
    }
}

@Test(arguments: RequestValidationCase.all)
func aRequestIsValidatedAsTheReferenceEngineDoesNamingThePath(_ c: RequestValidationCase) throws {
    let schema = try #require(RequestValidationCase.schema)
    do {
        _ = try Request(json: c.request, schema: schema)
        #expect(c.valid, "accepted, but the reference engine refuses it")
    } catch {
        #expect(!c.valid, "refused (\(error)), but the reference engine accepts it")
        #expect(error.path == c.path, "\(error)")
        #expect(error.message.contains(c.message), "\(error)")
    }
}

@Test func withoutValidationOnlyTheContextIsReadByTheActionsType() throws {
    let schema = try #require(RequestValidationCase.schema)
    // An undeclared principal type passes when the test file says "validateRequest": false.
    let json = try JSON.parse(#"{"principal":{"type":"Usr","id":"a"},"action":{"type":"Action","id":"read"},"resource":{"type":"Dataset","id":"d"},"context":{"mfa":true,"ip":"10.0.0.1","now":"2024-06-01"}}"#)
    let r = try Request(json: json, schema: schema, validate: false)
    #expect(r.principal.type.description == "Usr")
    guard case .ipaddr? = r.context["ip"] else { Issue.record("ip was not read as an ipaddr: \(String(describing: r.context["ip"]))"); return }
}
