import Testing
import Foundation
import Cedar

/// The upstream hand-written tests (../shared/cedar-integration-tests/tests, 22 files, 74
/// requests). Several need the schema to read their entities and contexts (implicit entity
/// references, extension values written as plain strings); with schema-based parsing all 74
/// must give the reference engine's answer, and all 22 validation verdicts must agree.
@Suite struct HandWrittenTests {
    static let root = TestPaths.shared("cedar-integration-tests")

    @Test(.enabled(if: root != nil, "../shared/cedar-integration-tests is absent: hand-written tests skipped"))
    func everyHandWrittenTestValidatesAndDecidesAsTheReferenceEngine() {
        var runner = IntegrationTestRunner()
        var summary = IntegrationTestRunner.Summary()
        for file in IntegrationTestRunner.testFiles(under: Self.root! + "/tests") {
            runner.run(file: file, into: &summary)
        }
        for f in summary.failures { Issue.record("\(f)") }
        #expect(summary.files == 22)
        #expect(summary.validationAgree == 22)
        #expect(summary.validationDisagree == 0)
        #expect(summary.passed == 74)
        #expect(summary.failed == 0)
    }
}
