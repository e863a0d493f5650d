import CustosVersion

/// `custos version` (also `custos --version`): the version the daemon reports in `health`.
enum VersionCommand {
    static let spec = CommandSpec(
        name: "version",
        summary: "Print the version of custos (the same as `health` reports).",
        usage: "custos version   (or: custos --version)",
        options: [])

    static func run(_ args: ParsedArguments) throws -> Int32 {
        guard args.positionals.isEmpty else { throw UsageError(message: "usage: \(spec.usage)") }
        print("custos \(CustosVersion.string)")
        return 0
    }
}
