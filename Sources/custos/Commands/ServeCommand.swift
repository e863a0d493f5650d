/// `custos serve`: being written; see its issue.
enum ServeCommand {
    static let spec = CommandSpec(name: "serve", summary: "(not yet available)", usage: "custos serve", options: [])
    static func run(_ args: ParsedArguments) throws -> Int32 {
        throw UsageError(message: "custos serve is not available yet")
    }
}
