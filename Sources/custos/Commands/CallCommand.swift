import CustosJSON
import CustosServer
import Foundation

/// `custos call`: one JSON-RPC call to a running daemon.
enum CallCommand {
    static let spec = CommandSpec(
        name: "call",
        summary: "Call one daemon method and print its result as JSON.",
        usage: "custos call METHOD [PARAMS_JSON|-] [--socket PATH]",
        options: [
            OptionSpec(name: "socket", valueName: "PATH", help: "Daemon socket (default $CUSTOS_SOCKET, else state/custos.sock)."),
        ],
        details: """
        PARAMS_JSON is an object or array; '-' reads it from standard input. Prints the result
        on standard output and exits 0; on a JSON-RPC error prints the error object on standard
        output, a readable line on standard error, and exits 2. `call health` exits 1 when the
        daemon answers but is not ready (the reasons go to standard error), so it can serve as a
        readiness probe: 0 ready, 1 not ready, 2 unreachable or an error.
        Example: custos call decide "$(cat policies/requests/allow-scientist-reads-own-study.json)"
        """)

    static func defaultSocket() -> String {
        if let s = ProcessInfo.processInfo.environment["CUSTOS_SOCKET"], !s.isEmpty { return s }
        return "state/custos.sock"
    }

    static func run(_ args: ParsedArguments) throws -> Int32 {
        guard let method = args.positionals.first, args.positionals.count <= 2 else {
            throw UsageError(message: "usage: \(spec.usage)")
        }
        var params: JSON? = nil
        if args.positionals.count == 2 {
            var text = args.positionals[1]
            if text == "-" { text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) }
            do { params = try JSON.parse(text) } catch {
                throw UsageError(message: "PARAMS_JSON is not valid JSON (\(error.line):\(error.column): \(error.message))")
            }
        }
        let outcome = try call(method, params: params, socket: args.value("socket") ?? defaultSocket())
        switch outcome {
        case .success(let result):
            print(result.serialized)
            if method.utf8.elementsEqual("health".utf8), let why = notReady(health: result) {
                IO.printError("not ready: \(why)")
                return 1
            }
            return 0
        case .failure(let e):
            var w = JSONWriter()
            w.raw("{\"code\":"); w.int(e.code); w.raw(",\"message\":"); w.string(e.message)
            if let d = e.data { w.raw(",\"data\":"); w.value(d) }
            w.byte(UInt8(ascii: "}"))
            print(w.text)
            IO.printError("error \(e.code): \(e.message)")
            return 2
        }
    }

    /// Nil when a `health` answer says ready; otherwise why not. An answer without a boolean
    /// `ready` counts as not ready: a probe must never pass on what it cannot read.
    static func notReady(health: JSON) -> String? {
        let o = health.objectValue
        if o?["ready"] == .bool(true) { return nil }
        let reasons = (o?["reasons"]?.arrayValue ?? []).compactMap(\.stringValue)
        return reasons.isEmpty ? "the answer does not say ready" : reasons.joined(separator: "; ")
    }

    /// One round trip; transport failures become usage errors (exit 2) with the reason.
    static func call(_ method: String, params: JSON?, socket: String) throws -> Result<JSON, RPCError> {
        do {
            let client = try RPCClient(path: socket)
            defer { client.close() }
            return try client.call(method, params: params)
        } catch {
            throw UsageError(message: "\(socket): \(error.description)")
        }
    }
}
