import CustosDaemon
import Foundation

/// `custos check`: validates a policies folder as the daemon would load it, without serving.
enum CheckCommand {
    static let spec = CommandSpec(
        name: "check",
        summary: "Validate a policies folder (Cedar syntax, schema, template links, entities, guardrail configuration) without running anything.",
        usage: "custos check [--policies DIR] [--strict]",
        options: [
            OptionSpec(name: "policies", valueName: "DIR", help: "The policies folder (default: policies)."),
            OptionSpec(name: "strict", valueName: nil, help: "Also fail on warnings (a template without a link, a policy that can never apply) and on a folder without a schema."),
        ],
        details: """
        Loads the folder exactly as `custos serve` does: every *.cedar file, entities.json,
        custos.json, the schema (schema.cedarschema or schema.cedarschema.json), links.json and
        the guardrail configuration in DIR/guardrails/; any other entry must be listed in
        DIR/.custosignore. With a schema, every policy, template link and entities.json is
        validated against it (Cedar's strict validation, as `custos validate`), and every error
        is listed as file:line:col with the policy and, for a misspelt name, the nearest
        declared one. Prints what was loaded and the revision, then any warnings; or the errors.
        Exit status: 0 valid, 1 invalid (or, with --strict, any warning or no schema), 2 usage.
        For CI, before `custos test`.
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        let dir = args.value("policies") ?? "policies"
        let strict = args.flag("strict")
        guard IO.isDirectory(dir) else { throw UsageError(message: "\(dir): no such folder") }
        // Exactly the daemon's load, so check and serve never disagree on a folder.
        switch PolicyStore(directory: dir).reload() {
        case .success(let s):
            print("ok: \(s.policyCount) policies, \(s.entityCount) entities, revision \(s.revision)")
            if !s.templates.isEmpty {
                let links = s.policies.policies.count(where: { $0.link != nil })
                print("templates: \(s.templates.count), with \(links) link\(links == 1 ? "" : "s") in links.json (each link counts as a policy above)")
            }
            if let name = s.files.first(where: PolicyFolder.isSchemaFile) {
                print("schema: \(name): every policy, link and entities.json validate; requests \(s.requestSchema != nil ? "are" : "are not") validated (custos.json validate_requests)")
            } else {
                print("schema: none (policies are not validated; add schema.cedarschema to catch misspelt attributes)")
            }
            print("guardrails: \(s.guardrails.status)")
            if let reason = s.disabledReason { print("guardrails/DISABLED: \(reason)") }
            var failed = false
            if strict, s.schema == nil {
                line("error: \(dir): --strict needs a schema (schema.cedarschema or schema.cedarschema.json) to validate every policy against")
                failed = true
            }
            for w in s.warnings { line("\(strict ? "error" : "warning"): \(w)") }
            if strict, !s.warnings.isEmpty {
                line("invalid: \(s.warnings.count) warning\(s.warnings.count == 1 ? "" : "s"), which --strict refuses")
                failed = true
            }
            return failed ? 1 : 0
        case .failure(let e):
            if e.details.isEmpty {
                IO.printError(e.message)
            } else {
                for d in e.details { line("error: \(d)") }
                line("invalid: \(e.details.count) validation error\(e.details.count == 1 ? "" : "s"); nothing was loaded")
            }
            return 1
        }
    }

    /// One line to standard error as `custos validate` writes them (`error: file:line:col: ...`).
    private static func line(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
