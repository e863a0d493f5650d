import CustosJSON
import Glibc

/// Why a client call failed; the message says what to check.
public enum ClientError: Error, Sendable, CustomStringConvertible {
    case connect(SocketError)
    case io(call: String, errno: Int32)
    case timedOut
    case closedByServer
    case lineTooLong(limit: Int)
    case badResponse(String)

    public var description: String {
        switch self {
        case .connect(let e): "cannot connect: \(e.description); is the daemon running and may you open its socket?"
        case .io(let call, let e): "\(call) failed: \(errnoText(e))"
        case .timedOut: "the server did not answer in time"
        case .closedByServer: "the server closed the connection"
        case .lineTooLong(let n): "the server sent a line longer than \(n) bytes"
        case .badResponse(let why): "the server's response could not be read: \(why)"
        }
    }
}

/// A blocking JSON-RPC client over one connection, for the CLI and the benchmark.
/// Not shared between threads: each thread opens its own.
public final class RPCClient {
    public let fileDescriptor: Int32
    let reader: LineReader
    private var nextID: Int64 = 1
    private var closed = false

    /// `timeout` bounds each read and write; nil waits forever.
    public init(path: String, timeout: Duration? = .seconds(30), maxLineBytes: Int = 16 << 20) throws(ClientError) {
        let fd: Int32
        do throws(SocketError) {
            switch try Socket.connect(path: path) {
            case .success(let f): fd = f
            case .failure(let e): throw e
            }
        } catch {
            throw .connect(error)
        }
        if let timeout {
            Socket.setTimeout(fd, option: SO_RCVTIMEO, timeout)
            Socket.setTimeout(fd, option: SO_SNDTIMEO, timeout)
        }
        fileDescriptor = fd
        reader = LineReader(fd: fd, maxLine: maxLineBytes, initialCapacity: 64 * 1024)
    }

    deinit { close() }

    public func close() {
        if !closed { closed = true; Glibc.close(fileDescriptor) }
    }

    /// Sends bytes as one line; a trailing LF is added when missing.
    public func send(line: [UInt8]) throws(ClientError) {
        var framed = line
        if framed.last != 0x0A { framed.append(0x0A) }
        let ok = framed.withUnsafeBytes { Socket.writeAll(fileDescriptor, $0) }
        if !ok { throw errno == EAGAIN ? .timedOut : .io(call: "send", errno: errno) }
    }

    public func send(line: String) throws(ClientError) { try send(line: Array(line.utf8)) }

    /// The next line without its LF, or nil at end of stream.
    public func readLine() throws(ClientError) -> [UInt8]? {
        while true {
            switch reader.next() {
            case .line(let l): return Array(l)
            case .oversize: throw .lineTooLong(limit: reader.maxLine)
            case .needMore: break
            }
            switch reader.fill() {
            case .data: continue
            case .eof:
                if let rest = reader.takeRemainder() { return Array(rest) }
                return nil
            case .timedOut: throw .timedOut
            case .failed(let e): throw .io(call: "read", errno: e)
            }
        }
    }

    /// Sends one request and waits for its response; the outcome is the result or the
    /// server's error object.
    public func call(_ method: String, params: JSON? = nil) throws(ClientError) -> Result<JSON, RPCError> {
        let id = nextID
        nextID &+= 1
        var w = JSONWriter()
        RPCRequest(method: method, params: Params(params), id: .int(id)).write(into: &w)
        w.byte(0x0A)
        try send(line: w.bytes)
        guard let line = try readLine() else { throw .closedByServer }
        let value: JSON
        do { value = try JSON.parse(line) } catch { throw .badResponse(error.description) }
        do throws(RPCError) {
            let (rid, outcome) = try RPCResponse.decode(value)
            // A null id is the server reporting a message-level problem (e.g. a parse error).
            guard rid == .int(id) || rid == .null else { throw RPCError.invalidRequest("response id \(rid) does not match request id \(id)") }
            return outcome
        } catch {
            throw .badResponse(error.message)
        }
    }
}
