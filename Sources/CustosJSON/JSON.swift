/// A JSON document as read from the wire or a file.
///
/// Integers and reals stay distinct (`1` is `.int`, `1.0` is `.double`), and object members keep
/// their order; duplicate keys never get this far because the reader rejects them.
public enum JSON: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object(JSONObject)
}

/// Object members in document order. Lookups compare keys by Unicode scalars, not by Swift's
/// canonical equivalence, so `"\u{E9}"` and `"e\u{301}"` are different keys, as on the wire.
public struct JSONObject: Sendable, Hashable {
    public var members: [Member]

    public struct Member: Sendable, Hashable {
        public var key: String
        public var value: JSON
        public init(key: String, value: JSON) { self.key = key; self.value = value }
    }

    public init(_ members: [Member] = []) { self.members = members }

    public init(_ pairs: KeyValuePairs<String, JSON>) {
        members = pairs.map { Member(key: $0.key, value: $0.value) }
    }

    public subscript(key: String) -> JSON? {
        for m in members where m.key.utf8.elementsEqual(key.utf8) { return m.value }
        return nil
    }

    public var keys: [String] { members.map(\.key) }
    public var count: Int { members.count }
    public var isEmpty: Bool { members.isEmpty }

    public mutating func append(_ key: String, _ value: JSON) {
        members.append(Member(key: key, value: value))
    }

    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        guard a.members.count == b.members.count else { return false }
        for m in a.members {
            guard let v = b[m.key], v == m.value else { return false }
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        // Order-independent, consistent with ==.
        var acc = 0
        for m in members {
            var h = Hasher()
            h.combine(Array(m.key.utf8))
            h.combine(m.value)
            acc ^= h.finalize()
        }
        hasher.combine(members.count)
        hasher.combine(acc)
    }
}

extension JSON {
    public subscript(key: String) -> JSON? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var intValue: Int64? { if case .int(let i) = self { return i } else { return nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var arrayValue: [JSON]? { if case .array(let a) = self { return a } else { return nil } }
    public var objectValue: JSONObject? { if case .object(let o) = self { return o } else { return nil } }
    public var isNull: Bool { if case .null = self { return true } else { return false } }

    /// The name of this value's kind, for error messages ("expected a string, got an array").
    public var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int: "an integer"
        case .double: "a real number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
