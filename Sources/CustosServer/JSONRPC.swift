import CustosJSON

/// A request id as the caller sent it. Integers and reals stay apart so `1` comes back as `1`
/// and `1.0` as `1.0`: callers match responses to requests by exact value.
public enum RequestID: Sendable, Hashable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    case double(Double)
    case null

    /// nil when `json` is not a legal id (JSON-RPC 2.0 allows only string, number or null).
    public init?(_ json: JSON) {
        switch json {
        case .string(let s): self = .string(s)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .null: self = .null
        default: return nil
        }
    }

    public var json: JSON {
        switch self {
        case .string(let s): .string(s)
        case .int(let i): .int(i)
        case .double(let d): .double(d)
        case .null: .null
        }
    }

    public var description: String { json.serialized }

    @inline(__always) func write(into w: inout JSONWriter) {
        switch self {
        case .string(let s): w.string(s)
        case .int(let i): w.int(i)
        case .double(let d): w.double(d)
        case .null: w.null()
        }
    }
}

/// The `params` member of a request: absent, an object, or an array. The accessors throw
/// `invalidParams` errors that name the field, so handlers need no message plumbing of their own.
public struct Params: Sendable {
    public let json: JSON?

    public init(_ json: JSON?) { self.json = json }

    public var object: JSONObject? { json?.objectValue }
    public var array: [JSON]? { json?.arrayValue }

    /// The member `name` of an object `params`; throws when params is not an object or lacks it.
    public func required(_ name: String) throws(RPCError) -> JSON {
        guard let o = object else {
            throw .invalidParams(field: "params", "expected an object with member \"\(name)\", got \(json?.kindName ?? "nothing")")
        }
        guard let v = o[name] else { throw .invalidParams(field: "params.\(name)", "missing") }
        return v
    }

    /// The member `name`, or nil when params lack it (absent params and `[]` have no members).
    public func optional(_ name: String) throws(RPCError) -> JSON? {
        guard let j = json else { return nil }
        if case .array(let a) = j, a.isEmpty { return nil }
        guard let o = j.objectValue else {
            throw .invalidParams(field: "params", "expected an object, got \(j.kindName)")
        }
        return o[name]
    }

    public func string(_ name: String) throws(RPCError) -> String {
        let v = try required(name)
        guard let s = v.stringValue else { throw .invalidParams(field: "params.\(name)", "expected a string, got \(v.kindName)") }
        return s
    }

    public func int(_ name: String) throws(RPCError) -> Int64 {
        let v = try required(name)
        guard let i = v.intValue else { throw .invalidParams(field: "params.\(name)", "expected an integer, got \(v.kindName)") }
        return i
    }

    public func bool(_ name: String) throws(RPCError) -> Bool {
        let v = try required(name)
        guard let b = v.boolValue else { throw .invalidParams(field: "params.\(name)", "expected a boolean, got \(v.kindName)") }
        return b
    }

    public func objectMember(_ name: String) throws(RPCError) -> JSONObject {
        let v = try required(name)
        guard let o = v.objectValue else { throw .invalidParams(field: "params.\(name)", "expected an object, got \(v.kindName)") }
        return o
    }
}

/// One request or notification taken from a message. `id == nil` means a notification.
public struct RPCRequest: Sendable {
    public var method: String
    public var params: Params
    public var id: RequestID?

    public init(method: String, params: Params = Params(nil), id: RequestID?) {
        self.method = method
        self.params = params
        self.id = id
    }

    /// Validates one element of a message. On failure returns the error and the id to answer
    /// with: the caller's id when it was readable, null otherwise (JSON-RPC 2.0 section 5).
    public static func validate(_ value: JSON) -> Result<RPCRequest, InvalidRequest> {
        guard case .object(let o) = value else {
            return .failure(InvalidRequest(error: .invalidRequest("a request must be an object, got \(value.kindName)"), id: .null))
        }
        var version: JSON?
        var method: JSON?
        var idJSON: JSON?
        var params: JSON?
        // One pass over the members; keys compare by bytes, as on the wire.
        for m in o.members {
            let k = m.key.utf8
            switch k.count {
            case 2: if k.elementsEqual("id".utf8) { idJSON = m.value }
            case 6:
                if k.elementsEqual("method".utf8) { method = m.value }
                else if k.elementsEqual("params".utf8) { params = m.value }
            case 7: if k.elementsEqual("jsonrpc".utf8) { version = m.value }
            default: break
            }
        }
        var id: RequestID?
        if let idJSON {
            guard let parsed = RequestID(idJSON) else {
                return .failure(InvalidRequest(error: .invalidRequest("\"id\" must be a string, a number or null, got \(idJSON.kindName)"), id: .null))
            }
            id = parsed
        }
        let answerID = id ?? .null
        guard case .string(let v)? = version, v.utf8.elementsEqual("2.0".utf8) else {
            return .failure(InvalidRequest(error: .invalidRequest("\"jsonrpc\" must be the string \"2.0\""), id: answerID))
        }
        guard case .string(let name)? = method else {
            let got = method.map(\.kindName) ?? "nothing"
            return .failure(InvalidRequest(error: .invalidRequest("\"method\" must be a string, got \(got)"), id: answerID))
        }
        if let params {
            switch params {
            case .object, .array: break
            default:
                return .failure(InvalidRequest(error: .invalidRequest("\"params\" must be an object or an array, got \(params.kindName)"), id: answerID))
            }
        }
        return .success(RPCRequest(method: name, params: Params(params), id: id))
    }

    public struct InvalidRequest: Error, Sendable {
        public var error: RPCError
        public var id: RequestID
    }

    /// Writes this request as one compact JSON object (no trailing newline).
    public func write(into w: inout JSONWriter) {
        w.raw("{\"jsonrpc\":\"2.0\",\"method\":")
        w.string(method)
        if let p = params.json {
            w.raw(",\"params\":")
            w.value(p)
        }
        if let id {
            w.raw(",\"id\":")
            id.write(into: &w)
        }
        w.byte(UInt8(ascii: "}"))
    }
}

/// Response encoding and decoding. Encoding writes bytes directly; no tree is built.
public enum RPCResponse {
    public static func writeError(_ error: RPCError, id: RequestID, into w: inout JSONWriter) {
        w.raw("{\"jsonrpc\":\"2.0\",\"error\":{\"code\":")
        w.int(error.code)
        w.raw(",\"message\":")
        w.string(error.message)
        if let data = error.data {
            w.raw(",\"data\":")
            w.value(data)
        }
        w.raw("},\"id\":")
        id.write(into: &w)
        w.byte(UInt8(ascii: "}"))
    }

    /// A complete error line (with LF), for replies sent outside request handling.
    public static func errorLine(_ error: RPCError, id: RequestID = .null) -> [UInt8] {
        var w = JSONWriter(capacity: 160)
        writeError(error, id: id, into: &w)
        w.byte(0x0A)
        return w.bytes
    }

    /// Reads one response object as a client sees it.
    public static func decode(_ value: JSON) throws(RPCError) -> (id: RequestID, outcome: Result<JSON, RPCError>) {
        guard case .object(let o) = value else {
            throw .invalidRequest("a response must be an object, got \(value.kindName)")
        }
        guard let idJSON = o["id"], let id = RequestID(idJSON) else {
            throw .invalidRequest("the response has no valid \"id\"")
        }
        if let result = o["result"] { return (id, .success(result)) }
        guard let err = o["error"]?.objectValue, let code = err["code"]?.intValue else {
            throw .invalidRequest("the response has neither \"result\" nor a well-formed \"error\"")
        }
        let message = err["message"]?.stringValue ?? ""
        return (id, .failure(RPCError(code: code, message: message, data: err["data"])))
    }
}
