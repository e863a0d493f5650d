/// A command made of subcommands (`custos audit ...`, `custos bundle ...`): the group's help
/// lists them, and each subcommand has its own spec, options, errors and help.
struct SubcommandGroup {
    typealias Subcommand = (name: String, summary: String, spec: CommandSpec, run: (ParsedArguments) throws -> Int32)

    let name: String
    /// In help order; one with an empty summary runs but is left out of the group's help.
    let subcommands: [Subcommand]

    /// The group's help: its subcommands with their summaries, then `details`.
    func groupSpec(summary: String, details: String) -> CommandSpec {
        let shown = subcommands.filter { !$0.summary.isEmpty }
        let width = shown.map(\.name.count).max() ?? 0
        var text = "Subcommands:\n"
        for s in shown {
            text += "  " + s.name + String(repeating: " ", count: width - s.name.count + 2) + s.summary + "\n"
        }
        text += "\n" + details
        return CommandSpec(name: name, summary: summary, usage: "custos \(name) SUBCOMMAND [OPTIONS]", options: [], details: text)
    }

    /// main.swift parses options against this spec before `run`, and prints its help for
    /// `--help`; picking the subcommand's spec from argv here gives each subcommand its own
    /// options, errors and help without a second parser.
    func spec(group: CommandSpec) -> CommandSpec {
        let argv = CommandLine.arguments
        if argv.count > 2, argv[1] == name, let sub = subcommands.first(where: { $0.name == argv[2] }) {
            return sub.spec
        }
        return group
    }

    func run(_ args: ParsedArguments, group: CommandSpec) throws -> Int32 {
        guard let sub = args.positionals.first else {
            IO.printError("missing subcommand\n\n" + group.help)
            return 2
        }
        guard let found = subcommands.first(where: { $0.name == sub }) else {
            throw UsageError(message: "unknown \(name) subcommand '\(sub)' (see 'custos \(name) --help')")
        }
        return try found.run(args)
    }
}
