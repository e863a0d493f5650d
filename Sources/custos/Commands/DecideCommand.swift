import Cedar
import CustosJSON
import CustosServer
import Foundation

/// `custos decide`: ask the daemon for one decision; the exit status is the answer.
enum DecideCommand {
    static let spec = CommandSpec(
        name: "decide",
        summary: "Ask the daemon for one decision: exit 0 on allow, 1 on deny, 2 on error (for shell hooks).",
        usage: "custos decide --principal 'T::\"id\"' --action 'Action::\"id\"' --resource 'T::\"id\"' [--context JSON] [--socket PATH] [--quiet]",
        options: [
            OptionSpec(name: "principal", valueName: "UID", help: "Cedar entity uid, e.g. 'User::\"alice\"'."),
            OptionSpec(name: "action", valueName: "UID", help: "e.g. 'Action::\"read\"'."),
            OptionSpec(name: "resource", valueName: "UID", help: "e.g. 'Dataset::\"onc301-de-clinical\"'."),
            OptionSpec(name: "context", valueName: "JSON", help: "Context record as a JSON object (default {})."),
            OptionSpec(name: "socket", valueName: "PATH", help: "Daemon socket (default $CUSTOS_SOCKET, else state/custos.sock)."),
            OptionSpec(name: "quiet", valueName: nil, help: "Print nothing; only the exit status answers."),
        ],
        details: """
        Prints the result ({decision, reasons, errors, decision_id, policy_revision}) on standard
        output. Exit 0 allow, 1 deny, 2 when no decision could be made (bad arguments, daemon
        unreachable, JSON-RPC error). Not a Slurm Prolog: a failing Prolog drains
        the node for everyone; Slurm's hook is contrib/slurm/job_submit.lua (docs/schedulers.md).
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        func uid(_ name: String) throws -> JSON {
            let text = try args.required(name)
            let u: EntityUID
            do { u = try CedarParser.parseEntityUID(text) } catch {
                throw UsageError(message: "--\(name) '\(text)': \(error.message); write it as Type::\"id\", e.g. User::\"alice\"")
            }
            return .object(JSONObject(["type": .string(u.type.description), "id": .string(u.id.value)]))
        }
        var members: [JSONObject.Member] = [
            .init(key: "principal", value: try uid("principal")),
            .init(key: "action", value: try uid("action")),
            .init(key: "resource", value: try uid("resource")),
        ]
        if let c = args.value("context") {
            let j: JSON
            do { j = try JSON.parse(c) } catch { throw UsageError(message: "--context is not valid JSON (\(error.message))") }
            guard case .object = j else { throw UsageError(message: "--context must be a JSON object, got \(j.kindName)") }
            members.append(.init(key: "context", value: j))
        }
        let outcome = try CallCommand.call("decide", params: .object(JSONObject(members)),
                                           socket: args.value("socket") ?? CallCommand.defaultSocket())
        switch outcome {
        case .success(let result):
            if !args.flag("quiet") { print(result.serialized) }
            guard let d = result.objectValue?["decision"]?.stringValue else {
                IO.printError("the daemon's result has no decision: \(result.serialized)")
                return 2
            }
            return d == "allow" ? 0 : 1
        case .failure(let e):
            IO.printError("error \(e.code): \(e.message)")
            return 2
        }
    }
}
