/// `custos audit`: being written; see its issue.
enum AuditCommand {
    static let spec = CommandSpec(name: "audit", summary: "(not yet available)", usage: "custos audit", options: [])
    static func run(_ args: ParsedArguments) throws -> Int32 {
        throw UsageError(message: "custos audit is not available yet")
    }
}
