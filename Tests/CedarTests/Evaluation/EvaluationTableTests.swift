import Testing
import Foundation
import Cedar
import CustosJSON

/// One row of Fixtures/evaluation/cases.txt (checked against cedarpy by
/// scripts/check_eval_cases.py): an expression and the value it equals, or an error.
struct EvalCase: CustomTestStringConvertible, Sendable {
    let line: Int
    let expression: String
    let expected: String  // a Cedar expression, or "error"
    var testDescription: String { "line \(line): \(expression) ==> \(expected)" }

    static let all: [EvalCase] = {
        let text = (try? TestPaths.read(TestPaths.fixture("evaluation/cases.txt"))) ?? ""
        var out: [EvalCase] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(raw)
            guard !line.isEmpty, !line.hasPrefix("#"), let r = line.range(of: " ==> ", options: .backwards) else { continue }
            out.append(EvalCase(line: i + 1, expression: String(line[..<r.lowerBound]), expected: String(line[r.upperBound...])))
        }
        return out
    }()
}

enum EvalFixture {
    static let entities: EntityStore = try! EntityStore.load(
        text: TestPaths.read(TestPaths.fixture("evaluation/entities.json")), file: "entities.json")
    static let request: Request = try! Request(json: JSON.parse(TestPaths.read(TestPaths.fixture("evaluation/request.json"))))
}

@Test func evaluationTableIsPresent() {
    #expect(EvalCase.all.count > 200)
}

@Test(arguments: EvalCase.all)
func expressionEvaluatesAsTheReferenceEngineDoes(_ c: EvalCase) throws {
    let expr = try CompiledExpression(parsing: c.expression)
    let result = Result { () throws(EvalError) in try expr.evaluate(request: EvalFixture.request, entities: EvalFixture.entities) }
    if c.expected == "error" {
        if case .success(let v) = result { Issue.record("expected an evaluation error, got \(v)") }
    } else {
        let want = try CompiledExpression(parsing: c.expected).evaluate(request: EvalFixture.request, entities: EvalFixture.entities)
        #expect(try result.get() == want)
    }
}
