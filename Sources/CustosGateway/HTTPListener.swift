import CMicroHTTPD
import CustosServer
import Glibc
import Synchronization

/// Bounds of one HTTP listener, all handed to libmicrohttpd explicitly (none of its defaults
/// is relied on): see docs/gateways.md, "Limits".
public struct HTTPLimits: Sendable, Equatable {
    /// Connections open at once; beyond it libmicrohttpd refuses new ones.
    public var maxConnections: Int = 256
    /// Connections from one address at once (TCP; every loopback client is 127.0.0.1 or ::1,
    /// so on loopback this is a second bound on the total).
    public var maxConnectionsPerAddress: Int = 256
    /// Memory per connection for the request line, headers and read buffer (libmicrohttpd's
    /// connection memory limit): headers that do not fit are answered 431 (or 414 for a URI).
    /// libmicrohttpd clears this memory for every request, so it is not made larger than the
    /// callers need (nginx's own header buffers are 4 x 8 KiB).
    public var maxHeaderBytes: Int = 16 * 1024
    /// A request body above this is answered 413 (known length) or cut (chunked).
    public var maxBodyBytes: Int = 1 << 20
    /// A connection idle or stalled this long is closed: slow clients cannot hold a thread.
    public var timeoutSeconds: Int = 10
    public init() {}
}

/// Who the caller of a listener is.
public enum HTTPIdentity: Sendable, Equatable {
    /// The kernel's word on a Unix socket (SO_PEERCRED, SO_PEERGROUPS).
    case peerCredentials
    /// TCP has no kernel identity: every connection is given this uid and gid (pid 0), and the
    /// access rules apply to them.
    case configured(uid: UInt32, gid: UInt32)
}

/// One request as the handler sees it. Header lookups read libmicrohttpd's parsed headers and
/// are valid only during the handler call.
public struct HTTPRequest {
    public let method: String
    /// The path without the query string, percent-decoded by libmicrohttpd.
    public let path: String
    public let body: [UInt8]
    let connection: OpaquePointer?
    let givenHeaders: [(String, String)]?
    let queryArguments: (() -> [(String, String?)])?

    /// Every value of a header (its name compared without case), in the order received. A
    /// header the decision rests on must appear once: a proxy that appends its header instead
    /// of replacing it leaves the client's copy first (`Gateway.single`).
    public func headerValues(_ name: String) -> [String] {
        if let givenHeaders { return givenHeaders.filter { Self.sameName($0.0, name) }.map(\.1) }
        guard let connection else { return [] }
        final class Box { let name: String; var values: [String] = []; init(_ n: String) { name = n } }
        let box = Box(name)
        _ = MHD_get_connection_values(connection, .HEADER_KIND, { cls, _, key, value in
            let b = Unmanaged<Box>.fromOpaque(cls!).takeUnretainedValue()
            if let key, HTTPRequest.sameName(String(cString: key), b.name) { b.values.append(value.map { String(cString: $0) } ?? "") }
            return .YES
        }, Unmanaged.passUnretained(box).toOpaque())
        return box.values
    }

    /// Header names compare without ASCII case (RFC 9110, 5.1).
    static func sameName(_ a: String, _ b: String) -> Bool {
        a.utf8.count == b.utf8.count && zip(a.utf8, b.utf8).allSatisfy { x, y in
            (x >= 0x41 && x <= 0x5A ? x | 0x20 : x) == (y >= 0x41 && y <= 0x5A ? y | 0x20 : y)
        }
    }

    /// The query string's arguments, in order (a bare `?delete` has a nil value).
    public var arguments: [(String, String?)] {
        if let queryArguments { return queryArguments() }
        guard let connection else { return [] }
        final class Box { var items: [(String, String?)] = [] }
        let box = Box()
        _ = MHD_get_connection_values(connection, .GET_ARGUMENT_KIND, { cls, _, key, value in
            let b = Unmanaged<Box>.fromOpaque(cls!).takeUnretainedValue()
            if let key { b.items.append((String(cString: key), value.map { String(cString: $0) })) }
            return .YES
        }, Unmanaged.passUnretained(box).toOpaque())
        return box.items
    }

    /// For tests and in-process callers: a request with its headers given.
    public init(method: String, path: String, headers: [(String, String)] = [], arguments: [(String, String?)] = [],
                body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.body = body
        connection = nil
        givenHeaders = headers
        queryArguments = { arguments }
    }

    init(method: String, path: String, body: [UInt8], connection: OpaquePointer) {
        self.method = method
        self.path = path
        self.body = body
        self.connection = connection
        givenHeaders = nil
        queryArguments = nil
    }
}

public struct HTTPResponse: Sendable {
    public var status: UInt32
    public var contentType: String
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: UInt32, contentType: String = "application/json", headers: [(String, String)] = [], body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
}

/// The caller of one connection and its cached access verdicts: fixed for the connection's
/// life, so the handler needs no lock (libmicrohttpd serves a connection on one thread).
public struct HTTPCaller: Sendable {
    public var context: CallContext
    public var cache = Dispatcher.CallerCache()
    public init(context: CallContext) { self.context = context }
}

public typealias HTTPHandler = @Sendable (HTTPRequest, inout HTTPCaller) -> HTTPResponse

/// An HTTP/1.1 listener on libmicrohttpd: one thread per connection (as the JSON-RPC socket:
/// a request is read, decided, made durable and answered on one thread, and a handler that
/// waits for the audit log's sync blocks nobody else), poll(2) rather than select(2) so
/// descriptors above 1024 work, and every limit set explicitly.
public final class HTTPListener: @unchecked Sendable {
    public let name: String
    let socket: BoundSocket
    let identity: HTTPIdentity
    let limits: HTTPLimits
    let handler: HTTPHandler
    let refusedLine: [UInt8]
    private var daemon: OpaquePointer?
    private let stopped = Atomic<Bool>(false)
    let inFlight = Atomic<Int>(0)
    let open = Atomic<Int>(0)
    let accepted = Atomic<UInt64>(0)
    private let nextID = Atomic<UInt64>(1)

    /// Connection ids of HTTP callers start here, apart from the JSON-RPC socket's.
    static let connectionIDBase: UInt64 = 1 << 48

    public init(name: String, socket: BoundSocket, identity: HTTPIdentity, limits: HTTPLimits, handler: @escaping HTTPHandler) {
        self.name = name
        self.socket = socket
        self.identity = identity
        self.limits = limits
        self.handler = handler
        refusedLine = Array("{\"error\":\"the kernel did not report who is calling on this socket\"}".utf8)
    }

    public var openConnections: Int { open.load(ordering: .relaxed) }
    public var acceptedConnections: UInt64 { accepted.load(ordering: .relaxed) }

    /// Starts serving on the bound socket.
    public func start() throws(SocketError) {
        // MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC
        let flags: UInt32 = 4 | 8 | 64 | 1024
        let me = Unmanaged.passUnretained(self).toOpaque()
        let d = custos_mhd_start(flags, socket.fd, httpAccessHandler, me, httpRequestCompleted, httpConnectionNotify,
                                 UInt32(clamping: limits.maxConnections),
                                 socket.path == nil ? UInt32(clamping: limits.maxConnectionsPerAddress) : 0,
                                 limits.maxHeaderBytes, UInt32(clamping: limits.timeoutSeconds), 0)
        guard let d else {
            throw .system(call: "MHD_start_daemon", path: socket.path ?? name, errno: errno)
        }
        daemon = d
    }

    /// Stops accepting, lets requests in flight finish (up to `drain`), then closes every
    /// connection and removes the socket file. Safe to call twice.
    public func stop(drain: Duration) {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing), let daemon else { return }
        let fd = MHD_quiesce_daemon(daemon)
        if fd >= 0 { close(fd) }
        socket.removeFile()
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: drain)
        while inFlight.load(ordering: .acquiring) > 0 && clock.now < deadline { usleep(1000) }
        MHD_stop_daemon(daemon)
    }

    func caller(for connection: OpaquePointer) -> HTTPCaller? {
        let id = HTTPListener.connectionIDBase &+ nextID.add(1, ordering: .relaxed).oldValue
        switch identity {
        case .configured(let uid, let gid):
            return HTTPCaller(context: CallContext(uid: uid, gid: gid, pid: 0, connectionID: id))
        case .peerCredentials:
            let fd = custos_mhd_connection_fd(connection)
            guard fd >= 0, let cred = PeerCredentials.of(socket: fd) else { return nil }
            return HTTPCaller(context: CallContext(uid: cred.uid, gid: cred.gid, pid: cred.pid, connectionID: id, groups: cred.groups))
        }
    }

    func respond(_ connection: OpaquePointer, _ r: HTTPResponse) -> MHD_Result {
        let response = r.body.withUnsafeBytes { b in
            MHD_create_response_from_buffer(b.count, UnsafeMutableRawPointer(mutating: b.baseAddress), .RESPMEM_MUST_COPY)
        }
        guard let response else { return .NO }
        _ = MHD_add_response_header(response, "Content-Type", r.contentType)
        for (k, v) in r.headers { _ = MHD_add_response_header(response, k, v) }
        let ok = MHD_queue_response(connection, UInt32(r.status), response)
        MHD_destroy_response(response)
        return ok
    }
}

/// One connection: who calls, decided when it connects.
final class HTTPConnectionState {
    var caller: HTTPCaller?
    init(caller: HTTPCaller?) { self.caller = caller }
}

/// One request's body as it arrives.
final class HTTPRequestState {
    var body: [UInt8] = []
    var answered = false
}

private func httpConnectionNotify(_ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?,
                                  _ socketContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                                  _ code: MHD_ConnectionNotificationCode) {
    guard let cls, let socketContext else { return }
    let listener = Unmanaged<HTTPListener>.fromOpaque(cls).takeUnretainedValue()
    if code == .CONNECTION_NOTIFY_STARTED {
        listener.open.add(1, ordering: .relaxed)
        listener.accepted.add(1, ordering: .relaxed)
        let state = HTTPConnectionState(caller: connection.flatMap { listener.caller(for: $0) })
        socketContext.pointee = Unmanaged.passRetained(state).toOpaque()
    } else {
        listener.open.subtract(1, ordering: .relaxed)
        if let p = socketContext.pointee {
            Unmanaged<HTTPConnectionState>.fromOpaque(p).release()
            socketContext.pointee = nil
        }
    }
}

private func httpRequestCompleted(_ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?,
                                  _ conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                                  _ code: MHD_RequestTerminationCode) {
    guard let cls, let conCls, let p = conCls.pointee else { return }
    let listener = Unmanaged<HTTPListener>.fromOpaque(cls).takeUnretainedValue()
    Unmanaged<HTTPRequestState>.fromOpaque(p).release()
    conCls.pointee = nil
    listener.inFlight.subtract(1, ordering: .releasing)
}

private func httpAccessHandler(_ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?,
                               _ url: UnsafePointer<CChar>?, _ method: UnsafePointer<CChar>?,
                               _ version: UnsafePointer<CChar>?, _ uploadData: UnsafePointer<CChar>?,
                               _ uploadSize: UnsafeMutablePointer<Int>?,
                               _ conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> MHD_Result {
    guard let cls, let connection, let conCls, let uploadSize else { return .NO }
    let listener = Unmanaged<HTTPListener>.fromOpaque(cls).takeUnretainedValue()
    guard let p = conCls.pointee else {
        // Headers are in: set up the request, refuse an announced oversize body now.
        listener.inFlight.add(1, ordering: .acquiring)
        let state = HTTPRequestState()
        conCls.pointee = Unmanaged.passRetained(state).toOpaque()
        if let cl = MHD_lookup_connection_value(connection, .HEADER_KIND, "Content-Length"),
           let n = Int(String(cString: cl)), n > listener.limits.maxBodyBytes {
            state.answered = true
            return listener.respond(connection, HTTPResponse(status: 413, body: Array(
                "{\"error\":\"request body of \(n) bytes is over the limit of \(listener.limits.maxBodyBytes) bytes\",\"result\":false}".utf8)))
        }
        return .YES
    }
    let state = Unmanaged<HTTPRequestState>.fromOpaque(p).takeUnretainedValue()
    if uploadSize.pointee > 0 {
        let n = uploadSize.pointee
        uploadSize.pointee = 0
        if state.answered { return .YES }
        // A chunked body over the limit: nothing to answer it with mid-upload, so the
        // connection is closed; the request never reaches a decision.
        guard state.body.count + n <= listener.limits.maxBodyBytes, let uploadData else { return .NO }
        uploadData.withMemoryRebound(to: UInt8.self, capacity: n) { state.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: n)) }
        return .YES
    }
    if state.answered { return .YES }
    state.answered = true
    guard let ctxRaw = custos_mhd_socket_context(connection),
          let caller = Unmanaged<HTTPConnectionState>.fromOpaque(ctxRaw).takeUnretainedValue().caller else {
        return listener.respond(connection, HTTPResponse(status: 403, body: listener.refusedLine))
    }
    let connState = Unmanaged<HTTPConnectionState>.fromOpaque(ctxRaw).takeUnretainedValue()
    var c = caller
    let request = HTTPRequest(method: method.map { String(cString: $0) } ?? "",
                              path: url.map { String(cString: $0) } ?? "/", body: state.body, connection: connection)
    let response = listener.handler(request, &c)
    connState.caller = c
    return listener.respond(connection, response)
}
