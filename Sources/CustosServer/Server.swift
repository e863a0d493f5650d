/// The Custos JSON-RPC 2.0 server: one JSON message per line on a Unix socket.
///
/// Each connection is served by its own thread: it reads a buffer, answers every complete line
/// in order by calling the handler in place, and writes all the replies with one send before
/// reading again. Pipelined requests therefore batch their replies, responses keep request
/// order, and independent connections run on all cores.
///
/// A server starts once; after `stop` build a new one. Call `stop` from a signal handler queue
/// or the main thread, never from inside a handler (it waits for handlers to finish).
///
/// Typical daemon wiring:
///
///     let server = Server(configuration: config, dispatcher: dispatcher)
///     try server.start()
///     let signals = SignalWatcher(onTerminate: { _ in server.stop() },
///                                 onReload: { try? dispatcher.updateAccess(loadAccess()) })
///     server.wait()
///     signals.cancel()
public final class Server: Sendable {
    private let transport: Transport<RPCService>
    public let configuration: ServerConfiguration
    public let dispatcher: Dispatcher

    public init(configuration: ServerConfiguration, dispatcher: Dispatcher) {
        self.configuration = configuration
        self.dispatcher = dispatcher
        self.transport = Transport(config: configuration, service: RPCService(dispatcher: dispatcher, batchLimit: configuration.batchLimit))
    }

    /// Binds the socket and starts accepting on a background thread. A stale socket file left
    /// by a dead process is replaced; a live server on the same path makes this throw.
    public func start() throws(SocketError) { try transport.start() }

    /// Stops accepting, removes the socket file, finishes in-flight requests, then returns.
    public func stop() { transport.stop() }

    /// After `start`: blocks until the server has stopped (another thread or a signal handler
    /// calls `stop`).
    public func wait() { transport.wait() }

    public var activeConnections: Int { transport.activeConnections }
}
