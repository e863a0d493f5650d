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
}

extension JSON {
    /// Reads one JSON document with jansson: duplicate object keys are rejected, integers and
    /// reals stay distinct, strings may hold U+0000, and anything after the value is an error.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSON {
        guard bytes.baseAddress != nil else {
            throw JSONParseError(message: "empty input: expected a JSON value", line: 1, column: 1, position: 0)
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
