import CustosTestSupport
import Testing
import Foundation
import Cedar

/// The upstream Cedar corpus (../shared/cedar-integration-tests/corpus-tests.tar.gz): 7,809
/// generated tests, 62,472 requests. Every test's validation verdict must equal its
/// `shouldValidate`, and every request (read against the test's schema) must give the reference
/// engine's decision, reasons and errors. The archive is extracted to a scratch folder, never
/// into the repository.
@Suite(.serialized) struct CorpusTests {
    static let archive = TestPaths.shared("cedar-integration-tests/corpus-tests.tar.gz")

    @Test(.enabled(if: archive != nil, "../shared/cedar-integration-tests/corpus-tests.tar.gz is absent: corpus test skipped"))
    func everyCorpusTestValidatesAndDecidesAsTheReferenceEngine() throws {
        let scratch = Scratch.url("custos-corpus")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        tar.arguments = ["tar", "-xzf", Self.archive!, "-C", scratch.path]
        try tar.run()
        tar.waitUntilExit()
        try #require(tar.terminationStatus == 0, "tar could not extract the corpus")

        var runner = IntegrationTestRunner()
        var summary = IntegrationTestRunner.Summary()
        for file in IntegrationTestRunner.testFiles(under: scratch.appendingPathComponent("corpus-tests").path) {
            runner.run(file: file, into: &summary)
        }
        for f in summary.failures.prefix(20) { Issue.record("\(f)") }
        #expect(summary.files == 7_809)
        #expect(summary.validationAgree == 7_809)
        #expect(summary.validationDisagree == 0)
        #expect(summary.failed == 0)
        #expect(summary.passed == 62_472)
    }
}
