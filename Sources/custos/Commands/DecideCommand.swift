/// `custos decide`: being written; see its issue.
enum DecideCommand {
    static let spec = CommandSpec(name: "decide", summary: "(not yet available)", usage: "custos decide", options: [])
    static func run(_ args: ParsedArguments) throws -> Int32 {
        throw UsageError(message: "custos decide is not available yet")
    }
}
