import Foundation

typealias Command = (spec: CommandSpec, run: (ParsedArguments) throws -> Int32)

/// `custos COMMAND [OPTIONS]`: one entry per command; each lives in Commands/.
func allCommands() -> [Command] { [
    (AuthorizeCommand.spec, AuthorizeCommand.run),
    (CedarTestCommand.spec, CedarTestCommand.run),
    (BenchCommand.spec, BenchCommand.run),
    (ServeCommand.spec, ServeCommand.run),
    (CallCommand.spec, CallCommand.run),
    (K8sNodeSyncCommand.spec, K8sNodeSyncCommand.run),
    (SlurmNodeSyncCommand.spec, SlurmNodeSyncCommand.run),
    (DecideCommand.spec, DecideCommand.run),
    (AuditCommand.spec, AuditCommand.run),
    (TestCommand.spec, TestCommand.run),
    (DiffCommand.spec, DiffCommand.run),
    (BundleCommand.spec, BundleCommand.run),
    (CheckCommand.spec, CheckCommand.run),
    (VersionCommand.spec, VersionCommand.run),
    (ValidateCommand.spec, ValidateCommand.run),
] }

func topLevelHelp(_ commands: [Command]) -> String {
    var s = """
    custos: policy decision point for clinical and patient data (Cedar policies, guardrails, audit).

    Usage: custos COMMAND [OPTIONS]

    Commands:

    """
    let width = commands.map(\.spec.name.count).max() ?? 0
    for c in commands {
        s += "  " + c.spec.name + String(repeating: " ", count: width - c.spec.name.count + 2) + c.spec.summary + "\n"
    }
    s += "\nRun 'custos COMMAND --help' (or -h) for a command's options; 'custos --version' for the version.\n"
    return s
}

func runMain() -> Int32 {
    let commands = allCommands()
    let argv = Array(CommandLine.arguments.dropFirst())
    guard let name = argv.first, name != "--help", name != "-h", name != "help" else {
        // `custos help COMMAND` is that command's help.
        if argv.count == 2, let cmd = commands.first(where: { $0.spec.name == argv[1] }) {
            print(cmd.spec.help, terminator: "")
            return 0
        }
        print(topLevelHelp(commands), terminator: "")
        return argv.isEmpty ? 2 : 0
    }
    let commandName = name == "--version" ? VersionCommand.spec.name : name
    guard let cmd = commands.first(where: { $0.spec.name == commandName }) else {
        IO.printError("unknown command '\(name)'\n\n" + topLevelHelp(commands))
        return 2
    }
    do {
        let args = try ParsedArguments(Array(argv.dropFirst()), spec: cmd.spec)
        if args.wantsHelp {
            print(cmd.spec.help, terminator: "")
            return 0
        }
        return try cmd.run(args)
    } catch let e as UsageError {
        IO.printError(e.message)
        return 2
    } catch {
        IO.printError("\(error)")
        return 2
    }
}

exit(runMain())
