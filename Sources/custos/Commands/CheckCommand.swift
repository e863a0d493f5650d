import CustosDaemon
import Guardrails

/// `custos check`: validates a policies folder as the daemon would load it, without serving.
enum CheckCommand {
    static let spec = CommandSpec(
        name: "check",
        summary: "Validate a policies folder (Cedar syntax, entities, guardrail configuration) without running anything.",
        usage: "custos check [--policies DIR]",
        options: [
            OptionSpec(name: "policies", valueName: "DIR", help: "The policies folder (default: policies)."),
        ],
        details: """
        Loads every *.cedar file and entities.json as `custos serve` does, and the guardrail
        configuration in DIR/guardrails/. Prints what was loaded and the revision, or each error
        with its file and location (file:line:col for Cedar, a JSON path for configuration).
        Exit status: 0 valid, 1 invalid, 2 usage. For CI, before `custos test`.
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        let dir = args.value("policies") ?? "policies"
        guard IO.isDirectory(dir) else { throw UsageError(message: "\(dir): no such folder") }
        var failed = false
        switch PolicyStore(directory: dir).reload() {
        case .success(let s):
            print("ok: \(s.policyCount) policies, \(s.entityCount) entities, revision \(s.revision)")
        case .failure(let e):
            IO.printError(e.message)
            failed = true
        }
        do {
            let config = try GuardrailConfig.load(policiesFolder: dir)
            print("guardrails: \(config.status)")
        } catch {
            IO.printError("\(error)")
            failed = true
        }
        return failed ? 1 : 0
    }
}
