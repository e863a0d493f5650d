import CustosDaemon

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
        Loads the folder exactly as `custos serve` does: every *.cedar file, entities.json,
        custos.json and the guardrail configuration in DIR/guardrails/; any other entry must be
        listed in DIR/.custosignore. Prints what was loaded and the revision, or the first error
        with its file and location (file:line:col for Cedar, a JSON path for configuration).
        Exit status: 0 valid, 1 invalid, 2 usage. For CI, before `custos test`.
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        let dir = args.value("policies") ?? "policies"
        guard IO.isDirectory(dir) else { throw UsageError(message: "\(dir): no such folder") }
        // Exactly the daemon's load, so check and serve never disagree on a folder.
        switch PolicyStore(directory: dir).reload() {
        case .success(let s):
            print("ok: \(s.policyCount) policies, \(s.entityCount) entities, revision \(s.revision)")
            print("guardrails: \(s.guardrails.status)")
            if let reason = s.disabledReason { print("guardrails/DISABLED: \(reason)") }
            return 0
        case .failure(let e):
            IO.printError(e.message)
            return 1
        }
    }
}
