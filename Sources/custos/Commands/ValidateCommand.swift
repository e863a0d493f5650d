import Foundation
import Cedar

/// `custos validate`: strict validation of policies against a Cedar schema, in the shape of
/// the Cedar CLI's `cedar validate`.
enum ValidateCommand {
    static let spec = CommandSpec(
        name: "validate",
        summary: "Validate Cedar policies against a schema (strict mode, as Cedar 4.x).",
        usage: "custos validate --schema FILE --policies DIR|FILE",
        options: [
            OptionSpec(name: "schema", valueName: "FILE", help: "The schema: Cedar syntax, or the JSON format when FILE ends in .json."),
            OptionSpec(name: "policies", valueName: "DIR|FILE", help: "A .cedar file, or a folder whose *.cedar files are read in name order."),
        ],
        details: """
        Reports every policy that names an undeclared entity type or action, uses an
        attribute the schema does not declare (with the nearest declared name), reads an
        optional attribute or a tag without testing for it first, applies an operator or
        extension function to the wrong types, or whose scope no declared action applies to.
        Errors go to standard error, one a line: error: file:line:col: policy "id" (policyN): message.
        Warnings (a policy that can never apply) do not fail validation.
        Exit status: 0 valid, 1 invalid (or a schema or policy that does not parse), 2 usage.
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        let schemaPath = try args.required("schema")
        let policiesPath = try args.required("policies")
        guard FileManager.default.fileExists(atPath: schemaPath) else { throw UsageError(message: "\(schemaPath): no such file") }
        guard FileManager.default.fileExists(atPath: policiesPath) else { throw UsageError(message: "\(policiesPath): no such file or folder") }
        let schema: Schema
        do { schema = try Schema.load(path: schemaPath) } catch {
            IO.printError("\(error)")
            return 1
        }
        let policies: PolicySet
        do { policies = try PolicySet.load(path: policiesPath) } catch {
            IO.printError("\(error)")
            return 1
        }
        let report = Validator(schema: schema).validate(policies)
        var lines = ""
        for e in report.errors { lines += "error: \(e)\n" }
        for w in report.warnings { lines += "warning: \(w)\n" }
        FileHandle.standardError.write(Data(lines.utf8))
        let n = policies.policies.count
        if report.passed {
            print("ok: \(n) \(n == 1 ? "policy validates" : "policies validate") against \(schemaPath)"
                  + (report.warnings.isEmpty ? "" : " (\(report.warnings.count) warning\(report.warnings.count == 1 ? "" : "s"))"))
            return 0
        }
        let failing = Set(report.errors.map(\.policyID)).count
        print("invalid: \(report.errors.count) error\(report.errors.count == 1 ? "" : "s") in \(failing) of \(n) \(n == 1 ? "policy" : "policies")")
        return 1
    }
}
