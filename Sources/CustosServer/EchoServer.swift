import CustosJSON

/// The transport-and-JSON floor for benchmarks: the same socket transport as `Server`, but each
/// line is only parsed with jansson and answered with a fixed reply. Comparing the daemon with
/// it in the same run shows what request handling costs beyond reading and parsing.
public final class EchoServer: Sendable {
    struct Service: LineService {
        let reply: [UInt8]
        func openSession(_ context: CallContext) {}
        func handle(line: UnsafeRawBufferPointer, session: inout Void, out: inout JSONWriter,
                    flush: (inout Void, inout JSONWriter) -> Bool) -> Bool {
            // The parse is the point: the floor includes reading the request.
            _ = try? JSON.parse(line)
            out.bytes.append(contentsOf: reply)
            return true
        }
    }

    public static let defaultReply = #"{"jsonrpc":"2.0","result":{"decision":"allow"},"id":1}"#

    private let transport: Transport<Service>

    /// `reply` is sent for every line; an LF is added when it lacks one.
    public init(configuration: ServerConfiguration, reply: String = EchoServer.defaultReply) {
        var bytes = Array(reply.utf8)
        if bytes.last != 0x0A { bytes.append(0x0A) }
        transport = Transport(config: configuration, service: Service(reply: bytes))
    }

    public func start() throws(SocketError) { try transport.start() }
    public func stop() { transport.stop() }
}
