import CustosJSON

/// A JSON-RPC 2.0 error object, thrown by handlers and written back to the caller.
///
/// | code   | name             | when                                                                 |
/// |--------|------------------|----------------------------------------------------------------------|
/// | -32700 | parse error      | the line is not JSON; the connection stays open for the next line    |
/// | -32600 | invalid request  | not a request object, empty batch, bad `jsonrpc`/`method`/`id`/`params`, or a line over the size limit (then the connection is closed) |
/// | -32601 | method not found | no handler is registered under that name                             |
/// | -32602 | invalid params   | a handler rejected `params`; the message names the offending field   |
/// | -32603 | internal error   | the server failed while handling a valid request                     |
/// | -32001 | forbidden        | the caller's uid/gid is not allowed to call this method (handler not run) |
/// | -32002 | overloaded       | the server is at its connection limit (or the caller's uid at its share); sent once, then the connection is closed. Also: a batch over the batch limit |
/// | -32003 | not ready        | the daemon is up but has nothing to answer with yet (e.g. policies not loaded) |
public struct RPCError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Int64
    public var message: String
    public var data: JSON?

    public init(code: Int64, message: String, data: JSON? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public var description: String { "\(code): \(message)" }

    public static let parseErrorCode: Int64 = -32700
    public static let invalidRequestCode: Int64 = -32600
    public static let methodNotFoundCode: Int64 = -32601
    public static let invalidParamsCode: Int64 = -32602
    public static let internalErrorCode: Int64 = -32603
    public static let forbiddenCode: Int64 = -32001
    public static let overloadedCode: Int64 = -32002
    public static let notReadyCode: Int64 = -32003

    public static func parseError(_ message: String) -> RPCError {
        RPCError(code: parseErrorCode, message: message)
    }

    public static func invalidRequest(_ message: String) -> RPCError {
        RPCError(code: invalidRequestCode, message: message)
    }

    public static func methodNotFound(_ method: String) -> RPCError {
        RPCError(code: methodNotFoundCode, message: "method not found: \(method)")
    }

    /// `field` is a path such as `params.request.principal` so the caller knows what to fix.
    public static func invalidParams(field: String, _ problem: String) -> RPCError {
        RPCError(code: invalidParamsCode, message: "invalid params: \(field): \(problem)")
    }

    public static func internalError(_ message: String) -> RPCError {
        RPCError(code: internalErrorCode, message: "internal error: \(message)")
    }

    public static func forbidden(method: String, uid: UInt32, gid: UInt32) -> RPCError {
        RPCError(code: forbiddenCode,
                 message: "forbidden: uid \(uid) (gid \(gid)) may not call \(method); ask the operator to allow it in the access configuration")
    }

    public static func overloaded(maxConnections: Int) -> RPCError {
        RPCError(code: overloadedCode,
                 message: "overloaded: the server already has \(maxConnections) connections; retry later or reuse a connection")
    }

    public static func overloaded(uid: UInt32, maxConnectionsPerUID limit: Int) -> RPCError {
        RPCError(code: overloadedCode,
                 message: "overloaded: uid \(uid) already has \(limit) connections, the limit for one uid; close idle connections or reuse one",
                 data: .object(JSONObject(["limit": .int(Int64(limit))])))
    }

    /// A batch (a JSON-RPC batch array, or `decide.batch`) carrying more than `limit` requests.
    public static func batchTooLarge(requests: Int, limit: Int) -> RPCError {
        RPCError(code: overloadedCode,
                 message: "overloaded: the batch holds \(requests) requests, the limit is \(limit); split it into smaller batches",
                 data: .object(JSONObject(["limit": .int(Int64(limit)), "requests": .int(Int64(requests))])))
    }

    public static func notReady(_ why: String) -> RPCError {
        RPCError(code: notReadyCode, message: "not ready: \(why)")
    }
}
