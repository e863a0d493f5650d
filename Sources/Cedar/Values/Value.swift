/// A Cedar runtime value.
///
/// Equality is Cedar's: strings compare by Unicode scalars, sets ignore order and duplicates,
/// records ignore key order, and values of different kinds are simply unequal.
public enum Value: Sendable, Hashable {
    case bool(Bool)
    case long(Int64)
    case string(String)
    case entity(EntityUID)
    case set(CedarSet)
    case record(CedarRecord)
    case decimal(CedarDecimal)
    case ipaddr(CedarIPAddr)
    case datetime(CedarDatetime)
    case duration(CedarDuration)

    public static func == (a: Value, b: Value) -> Bool {
        switch (a, b) {
        case (.bool(let x), .bool(let y)): x == y
        case (.long(let x), .long(let y)): x == y
        case (.string(let x), .string(let y)): x.scalarEquals(y)
        case (.entity(let x), .entity(let y)): x == y
        case (.set(let x), .set(let y)): x == y
        case (.record(let x), .record(let y)): x == y
        case (.decimal(let x), .decimal(let y)): x == y
        case (.ipaddr(let x), .ipaddr(let y)): x == y
        case (.datetime(let x), .datetime(let y)): x == y
        case (.duration(let x), .duration(let y)): x == y
        default: false
        }
    }

    public func hash(into h: inout Hasher) {
        switch self {
        case .bool(let x): h.combine(0); h.combine(x)
        case .long(let x): h.combine(1); h.combine(x)
        case .string(let x): h.combine(2); h.combine(ScalarString(x))
        case .entity(let x): h.combine(3); h.combine(x)
        case .set(let x): h.combine(4); h.combine(x)
        case .record(let x): h.combine(5); h.combine(x)
        case .decimal(let x): h.combine(6); h.combine(x)
        case .ipaddr(let x): h.combine(7); h.combine(x)
        case .datetime(let x): h.combine(8); h.combine(x)
        case .duration(let x): h.combine(9); h.combine(x)
        }
    }

    /// The kind's name as Cedar's error messages write it.
    public var typeName: String {
        switch self {
        case .bool: "bool"
        case .long: "long"
        case .string: "string"
        case .entity: "entity"
        case .set: "set"
        case .record: "record"
        case .decimal: "decimal"
        case .ipaddr: "ipaddr"
        case .datetime: "datetime"
        case .duration: "duration"
        }
    }
}

/// A Cedar set: unordered, without duplicates.
public struct CedarSet: Sendable, Hashable {
    public private(set) var elements: Set<Value>

    public init<S: Sequence>(_ values: S) where S.Element == Value { elements = Set(values) }
    public init() { elements = [] }

    public var count: Int { elements.count }
    public var isEmpty: Bool { elements.isEmpty }
    @inline(__always) public func contains(_ v: Value) -> Bool { elements.contains(v) }
    public func isSuperset(of other: CedarSet) -> Bool { elements.isSuperset(of: other.elements) }
    public func intersects(_ other: CedarSet) -> Bool { !elements.isDisjoint(with: other.elements) }
}

/// A Cedar record: string keys (compared by scalars) to values, kept sorted by key so that
/// equality needs no hashing of the whole record.
public struct CedarRecord: Sendable, Hashable {
    public struct Field: Sendable, Hashable {
        public let name: FieldKey
        public let value: Value

        public var key: String { name.string }

        public init(key: String, value: Value) { self.name = FieldKey(key); self.value = value }
    }

    public private(set) var fields: [Field]

    public init() { fields = [] }

    /// Fields with distinct keys; a later field replaces an earlier one with the same key.
    public init<S: Sequence>(_ pairs: S) where S.Element == (String, Value) {
        var fs: [Field] = pairs.map { Field(key: $0.0, value: $0.1) }
        fs.sort { $0.key.scalarLess($1.key) }
        var out: [Field] = []
        out.reserveCapacity(fs.count)
        for f in fs {
            if let last = out.last, last.name == f.name { out[out.count - 1] = f } else { out.append(f) }
        }
        fields = out
    }

    /// Fields already in key order without repeats (checked), else sorted as `init(_:)` does.
    /// Requests usually send their context keys in order, so this is one pass and one array.
    init(fields fs: [Field]) {
        var ordered = true
        for i in fs.indices.dropFirst() where !fs[i - 1].key.scalarLess(fs[i].key) {
            ordered = false
            break
        }
        if ordered { fields = fs; return }
        // Sorted in a copy: a record without repeated keys (every one read from JSON) keeps
        // it, with no array of pairs built and sorted again.
        var sorted = fs
        sorted.sort { $0.key.scalarLess($1.key) }
        for i in sorted.indices.dropFirst() where sorted[i - 1].name == sorted[i].name {
            self = CedarRecord(fs.map { ($0.key, $0.value) })
            return
        }
        fields = sorted
    }

    public var count: Int { fields.count }
    public var isEmpty: Bool { fields.isEmpty }

    @inline(__always) public subscript(key: FieldKey) -> Value? {
        // By index through the buffer: `for f in fields` copied each field it passed over,
        // retaining its key and value, and attribute reads are most of evaluation.
        fields.withUnsafeBufferPointer { buf in
            for i in buf.indices where buf[i].name == key { return buf[i].value }
            return nil
        }
    }

    public subscript(key: String) -> Value? { self[FieldKey(key)] }

    @inline(__always) public func has(_ key: FieldKey) -> Bool { self[key] != nil }
    public func has(_ key: String) -> Bool { self[key] != nil }
}
