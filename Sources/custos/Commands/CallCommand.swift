/// `custos call`: being written; see its issue.
enum CallCommand {
    static let spec = CommandSpec(name: "call", summary: "(not yet available)", usage: "custos call", options: [])
    static func run(_ args: ParsedArguments) throws -> Int32 {
        throw UsageError(message: "custos call is not available yet")
    }
}
