import CJansson

/// A borrowed look at a value jansson has parsed, for readers that decode straight into their
/// own types instead of building a `JSON` tree first (reading a batch of requests spent a fifth
/// of its time building, then searching, string-keyed objects it dropped at once). Valid only
/// inside the closure of `JSON.withView`; never store one.
public struct JSONView {
    @usableFromInline let v: UnsafeMutablePointer<json_t>

    @usableFromInline init(_ v: UnsafeMutablePointer<json_t>) { self.v = v }

    public enum Kind: Sendable { case null, bool, int, double, string, array, object }

    public var kind: Kind {
        switch v.pointee.type {
        case JSON_TRUE, JSON_FALSE: .bool
        case JSON_INTEGER: .int
        case JSON_REAL: .double
        case JSON_STRING: .string
        case JSON_ARRAY: .array
        case JSON_OBJECT: .object
        default: .null
        }
    }

    public var boolValue: Bool? {
        switch v.pointee.type {
        case JSON_TRUE: true
        case JSON_FALSE: false
        default: nil
        }
    }

    public var intValue: Int64? { v.pointee.type == JSON_INTEGER ? Int64(json_integer_value(v)) : nil }

    /// The string, decoded as `JSON.parse` decodes it.
    public var stringValue: String? {
        guard v.pointee.type == JSON_STRING else { return nil }
        let len = json_string_length(v)
        guard let p = json_string_value(v) else { return "" }
        return p.withMemoryRebound(to: UInt8.self, capacity: len) {
            String(decoding: UnsafeBufferPointer(start: $0, count: len), as: UTF8.self)
        }
    }

    /// Elements of an array, members of an object; 0 otherwise.
    public var count: Int {
        switch v.pointee.type {
        case JSON_ARRAY: json_array_size(v)
        case JSON_OBJECT: json_object_size(v)
        default: 0
        }
    }

    /// The array's element at `i` (0 ..< count).
    public subscript(index i: Int) -> JSONView { JSONView(json_array_get(v, i)) }

    /// The object's member named `key` (compared as bytes, as jansson stores keys).
    public func member(_ key: StaticString) -> JSONView? {
        guard v.pointee.type == JSON_OBJECT else { return nil }
        return key.withUTF8Buffer { k in
            k.withMemoryRebound(to: CChar.self) { c in
                json_object_getn(v, c.baseAddress, c.count).map(JSONView.init)
            }
        }
    }

    /// Calls `body` with each member's key (its UTF-8 bytes) and value, in document order;
    /// stops at the first `false`.
    @discardableResult
    public func forEachMember(_ body: (UnsafeBufferPointer<UInt8>, JSONView) -> Bool) -> Bool {
        guard v.pointee.type == JSON_OBJECT else { return false }
        var it = json_object_iter(v)
        while let iter = it {
            let klen = json_object_iter_key_len(iter)
            let more = json_object_iter_key(iter)!.withMemoryRebound(to: UInt8.self, capacity: klen) {
                body(UnsafeBufferPointer(start: $0, count: klen), JSONView(json_object_iter_value(iter)))
            }
            if !more { return false }
            it = json_object_iter_next(v, iter)
        }
        return true
    }
}

extension JSON {
    /// Parses `bytes` as `parse` does and calls `body` with a view of the result, which it may
    /// decode from directly. Returns nil, without saying why, when the text is not valid JSON,
    /// when it needs the rewriting `parse` does for U+0000 in keys, or when `body` returns nil:
    /// the caller then takes its general path through `parse`, which gives the exact error, so
    /// the view is only ever a faster way to the same answer.
    public static func withView<R>(_ bytes: UnsafeRawBufferPointer, _ body: (JSONView) -> R?) -> R? {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return nil }
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { return nil }
        if NulEscaping.needsRewrite(bytes) { return nil }
        var error = json_error_t()
        let flags = JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY
        guard let root = json_loadb(base.assumingMemoryBound(to: CChar.self), bytes.count, Int(flags), &error) else {
            return nil
        }
        defer { json_decref(root) }
        return body(JSONView(root))
    }
}
