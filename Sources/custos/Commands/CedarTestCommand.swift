import Foundation
import Cedar

/// `custos cedar-test`: runs tests in the upstream cedar-integration-tests format.
enum CedarTestCommand {
    static let spec = CommandSpec(
        name: "cedar-test",
        summary: "Run Cedar integration tests (the upstream cedar-integration-tests format).",
        usage: "custos cedar-test [--root DIR] [--quiet] PATH...",
        options: [
            OptionSpec(name: "root", valueName: "DIR", help: "Folder the paths inside tests resolve against (default: found from each test's path)."),
            OptionSpec(name: "quiet", valueName: nil, help: "Print only the summary, not each failing request."),
        ],
        details: """
        PATH is a test file or a folder searched recursively for *.json files holding "requests".
        Each file's policies are validated against its schema and the verdict compared with
        "shouldValidate"; entities and contexts are read against the schema, and requests
        validated against it (unless "validateRequest": false). Each request's decision is
        compared, and its reasons and errors as sets. One line per disagreement, then
        "validation: N agree, M disagree" and "N passed, N failed". Exit status 0 only when
        nothing disagreed and no request failed.
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        guard !args.positionals.isEmpty else { throw UsageError(message: "give at least one test file or folder") }
        var runner = IntegrationTestRunner(root: args.value("root"))
        var summary = IntegrationTestRunner.Summary()
        let out = StdoutBuffer()
        for path in args.positionals {
            let files = IntegrationTestRunner.testFiles(under: path)
            if files.isEmpty { throw UsageError(message: "\(path): no such file or folder, or no tests in it") }
            for f in files {
                let before = summary.failures.count
                runner.run(file: f, into: &summary)
                if !args.flag("quiet") {
                    for failure in summary.failures[before...] { out.write("FAIL \(failure)\n") }
                }
            }
        }
        out.write("validation: \(summary.validationAgree) agree, \(summary.validationDisagree) disagree\n")
        out.write("\(summary.passed) passed, \(summary.failed) failed\n")
        return summary.failed == 0 && summary.validationDisagree == 0 ? 0 : 1
    }
}
