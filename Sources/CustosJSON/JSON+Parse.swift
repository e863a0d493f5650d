import CJansson

/// Why a JSON text could not be read, with the place jansson stopped at.
public struct JSONParseError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// 1-based line and column, and 0-based byte offset into the input; 0/0 when unknown.
    public var line: Int
    public var column: Int
    public var position: Int

    public var description: String {
        line > 0 ? "\(line):\(column): \(message)" : message
    }

    /// The message without the input it quotes. jansson ends most messages with
    /// `near '<the token>'` (up to ~150 bytes of the input); this keeps its reason and names
    /// the token only by its class (a string, a number, a bare word, a punctuation mark).
    /// Use it wherever the input is a file that may not be what its author thinks it is, so
    /// that none of its bytes reach a log or another caller: only line:col and the class.
    public var redactedMessage: String {
        var reason = message
        var near: Substring? = nil
        let marker = Array(" near ".utf8)
        let bytes = Array(message.utf8)
        if bytes.count >= marker.count {
            for i in 0...(bytes.count - marker.count) where bytes[i..<(i + marker.count)].elementsEqual(marker) {
                reason = String(decoding: bytes[..<i], as: UTF8.self)
                near = Substring(String(decoding: bytes[(i + marker.count)...], as: UTF8.self))
                break
            }
        }
        // Reasons that quote the input themselves.
        if reason.hasPrefix("invalid Unicode") { reason = "invalid Unicode escape" }
        if reason.hasPrefix("unable to decode byte") { reason = "invalid UTF-8" }
        if reason.hasPrefix("control character") { reason = "control character in a string" }
        guard let near else { return reason }
        return reason + " at " + Self.tokenClass(near)
    }

    private static func tokenClass(_ near: Substring) -> String {
        if near == "end of file" { return "end of file" }
        var token = near.utf8.dropFirst()  // the opening quote jansson adds
        if token.last == UInt8(ascii: "'") { token = token.dropLast() }
        guard let b = token.first else { return "end of file" }
        switch b {
        case UInt8(ascii: "\""): return "a string"
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return "a number"
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"): return "a bare word"
        case UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: "["), UInt8(ascii: "]"),
             UInt8(ascii: ":"), UInt8(ascii: ","):
            return token.count == 1 ? "'\(Character(Unicode.Scalar(b)))'" : "an unexpected character"
        default: return "an unexpected character"
        }
    }
}

extension JSON {
    public static let byteOrderMarkMessage =
        "starts with a UTF-8 byte-order mark (EF BB BF); save the file as UTF-8 without a BOM"

    /// Reads one JSON document with jansson: duplicate object keys are rejected, integers and
    /// reals stay distinct, strings may hold U+0000, and anything after the value is an error.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSON {
        guard bytes.baseAddress != nil else {
            throw JSONParseError(message: "empty input: expected a JSON value", line: 1, column: 1, position: 0)
        }
        // RFC 8259 lets a reader refuse a byte-order mark; jansson does, with a message that
        // does not say so. Every file reader of the project goes through here, so one verdict.
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
            throw JSONParseError(message: byteOrderMarkMessage, line: 1, column: 1, position: 0)
        }
        if NulEscaping.needsRewrite(bytes) {
            let rewritten = NulEscaping.rewrite(bytes)
            do {
                return try rewritten.withUnsafeBytes { (b: UnsafeRawBufferPointer) throws(JSONParseError) -> JSON in
                    try load(b, restoringNul: true)
                }
            } catch let e as JSONParseError { throw e } catch { fatalError("unreachable") }
        }
        return try load(bytes, restoringNul: false)
    }

    private static func load(_ bytes: UnsafeRawBufferPointer, restoringNul: Bool) throws(JSONParseError) -> JSON {
        var error = json_error_t()
        let flags = JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY
        guard let root = json_loadb(bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count, Int(flags), &error) else {
            let text = withUnsafeBytes(of: &error.text) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            throw JSONParseError(message: text, line: Int(error.line), column: Int(error.column), position: Int(error.position))
        }
        defer { json_decref(root) }
        return convert(root, restoringNul: restoringNul)
    }

    public static func parse(_ text: String) throws(JSONParseError) -> JSON {
        var copy = text
        do {
            return try copy.withUTF8 { buf in try parse(UnsafeRawBufferPointer(buf)) }
        } catch let e as JSONParseError { throw e } catch { fatalError("unreachable") }
    }

    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSON {
        do {
            return try bytes.withUnsafeBytes { buf in try parse(buf) }
        } catch let e as JSONParseError { throw e } catch { fatalError("unreachable") }
    }

    /// jansson itself limits nesting (JSON_PARSER_MAX_DEPTH, 2048), so recursion here is bounded.
    private static func convert(_ v: UnsafeMutablePointer<json_t>, restoringNul: Bool) -> JSON {
        switch v.pointee.type {
        case JSON_NULL: return .null
        case JSON_TRUE: return .bool(true)
        case JSON_FALSE: return .bool(false)
        case JSON_INTEGER: return .int(Int64(json_integer_value(v)))
        case JSON_REAL: return .double(json_real_value(v))
        case JSON_STRING:
            let len = json_string_length(v)
            guard let p = json_string_value(v) else { return .string("") }
            let s = p.withMemoryRebound(to: UInt8.self, capacity: len) {
                String(decoding: UnsafeBufferPointer(start: $0, count: len), as: UTF8.self)
            }
            return .string(restoringNul ? NulEscaping.restore(s) : s)
        case JSON_ARRAY:
            let n = json_array_size(v)
            var out: [JSON] = []
            out.reserveCapacity(n)
            for i in 0..<n { out.append(convert(json_array_get(v, i), restoringNul: restoringNul)) }
            return .array(out)
        case JSON_OBJECT:
            var members: [JSONObject.Member] = []
            members.reserveCapacity(json_object_size(v))
            var it = json_object_iter(v)
            while let iter = it {
                let klen = json_object_iter_key_len(iter)
                let kp = json_object_iter_key(iter)!
                var key = kp.withMemoryRebound(to: UInt8.self, capacity: klen) {
                    String(decoding: UnsafeBufferPointer(start: $0, count: klen), as: UTF8.self)
                }
                if restoringNul { key = NulEscaping.restore(key) }
                members.append(.init(key: key, value: convert(json_object_iter_value(iter), restoringNul: restoringNul)))
                it = json_object_iter_next(v, iter)
            }
            // jansson iterates objects in insertion order since 2.x (JSON_PRESERVE_ORDER is a no-op).
            return .object(JSONObject(members))
        default:
            return .null
        }
    }
}
