import CustosDaemon
import Foundation

/// `custos serve`: the decision daemon on a Unix socket.
enum ServeCommand {
    static let spec = CommandSpec(
        name: "serve",
        summary: "Run the decision daemon: JSON-RPC 2.0, one message per line, on a Unix socket.",
        usage: "custos serve [--policies DIR] [--socket PATH] [--state DIR] [--config FILE] [--socket-mode OCTAL]",
        options: [
            OptionSpec(name: "policies", valueName: "DIR", help: "Policies folder: *.cedar files and entities.json (default policies)."),
            OptionSpec(name: "state", valueName: "DIR", help: "Folder for the daemon's runtime files (default state; created when missing)."),
            OptionSpec(name: "socket", valueName: "PATH", help: "Socket path (default STATE/custos.sock)."),
            OptionSpec(name: "config", valueName: "FILE", help: "JSON configuration: socket mode, limits, method access by uid/gid (docs/operations.md)."),
            OptionSpec(name: "socket-mode", valueName: "OCTAL", help: "Socket file mode, overriding the configuration (default 0660)."),
        ],
        details: """
        Methods: decide, decide.batch, health, policy.status, policy.reload (docs/protocol.md).
        SIGHUP reloads the policies folder; SIGTERM or SIGINT stop accepting, answer what is in
        flight, remove the socket and exit 0. Exit 2 when the socket or configuration is unusable.
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        let policies = args.value("policies") ?? "policies"
        let state = args.value("state") ?? "state"
        let socket = args.value("socket") ?? (state as NSString).appendingPathComponent("custos.sock")
        var config = DaemonConfig()
        if let file = args.value("config") {
            do { config = try DaemonConfig.load(file: file) } catch { throw UsageError(message: error.description) }
        }
        if let m = args.value("socket-mode") {
            guard let mode = parseOctalMode(m) else { throw UsageError(message: "--socket-mode expects an octal mode such as 0660, got '\(m)'") }
            config.socketMode = mode
        }
        let socketDir = (socket as NSString).deletingLastPathComponent
        if !socketDir.isEmpty && !IO.isDirectory(socketDir) {
            do {
                try FileManager.default.createDirectory(atPath: socketDir, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o750])
            } catch {
                throw UsageError(message: "cannot create \(socketDir) for the socket: \(error.localizedDescription)")
            }
        }
        let daemon: Daemon
        do {
            daemon = try Daemon(DaemonOptions(policiesDirectory: policies, socketPath: socket, config: config,
                                              log: { IO.printError($0) }))
        } catch {
            throw UsageError(message: error.description)
        }
        do {
            try daemon.run {
                let rev = daemon.store.snapshot?.revision ?? "none (not ready; see the error above)"
                print("""
                custos serve: socket \(socket), policies \(policies), revision \(rev)
                try:  custos call health --socket \(socket)
                      custos decide --socket \(socket) --principal 'User::"alice"' --action 'Action::"read"' --resource 'Dataset::"study-a-labs"' --context '{"purpose":"primary_research"}'
                """)
                fflush(nil)
            }
        } catch {
            throw UsageError(message: error.description)
        }
        return 0
    }
}
