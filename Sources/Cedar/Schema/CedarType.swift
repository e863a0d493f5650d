/// The types a schema declares and the validator assigns: Cedar 4.x's strict type system.
/// Entity types are single named types (strict validation never forms a union of entity
/// types); booleans carry the singleton types `True` and `False` so that the validator can
/// short-circuit `&&`, `||` and `if` the way Cedar does.

public enum ExtensionType: String, Sendable, Hashable, CaseIterable {
    case ipaddr, decimal, datetime, duration
}

public enum BoolType: Sendable, Hashable {
    case anyBool, `true`, `false`
}

public indirect enum CedarType: Sendable, Hashable, CustomStringConvertible {
    case bool(BoolType)
    case long
    case string
    case entity(EntityType)
    case set(CedarType)
    case record(RecordType)
    case ext(ExtensionType)

    public static let anyBool = CedarType.bool(.anyBool)

    /// Cedar's own rendering in messages: `Bool`, `Long`, `Set<User>`, `{ a: Long, b?: String }`.
    public var description: String {
        switch self {
        case .bool(.anyBool): "Bool"
        case .bool(.true): "__cedar::true"
        case .bool(.false): "__cedar::false"
        case .long: "Long"
        case .string: "String"
        case .entity(let t): t.description
        case .set(let e): "Set<\(e)>"
        case .record(let r): r.description
        case .ext(let x): x.rawValue
        }
    }

    var isEntity: Bool { if case .entity = self { true } else { false } }
    var isRecord: Bool { if case .record = self { true } else { false } }
}

/// An attribute of a record or entity type.
public struct AttributeType: Sendable, Hashable {
    public var type: CedarType
    public var required: Bool
    public init(_ type: CedarType, required: Bool = true) { self.type = type; self.required = required }
}

/// A record type: its attributes (names compared by Unicode scalars) and whether values may
/// hold attributes it does not list (`additionalAttributes` in the JSON schema format).
public struct RecordType: Sendable, Hashable, CustomStringConvertible {
    public private(set) var attributes: [ScalarString: AttributeType]
    public var isOpen: Bool
    /// How many attributes are required: a value read against the type counts the required
    /// ones it has instead of looking every declared one up.
    public let requiredCount: Int

    public init(_ attributes: [ScalarString: AttributeType] = [:], isOpen: Bool = false) {
        self.attributes = attributes
        self.isOpen = isOpen
        requiredCount = attributes.values.count(where: \.required)
    }

    public subscript(name: String) -> AttributeType? { attributes[ScalarString(name)] }

    /// Attribute names in scalar order, for messages and suggestions.
    public var names: [String] { attributes.keys.sorted().map(\.value) }

    public var description: String {
        if attributes.isEmpty { return isOpen ? "{ .. }" : "{}" }
        let fields = attributes.keys.sorted().map { k in
            let a = attributes[k]!
            return "\(cedarAttributeName(k.value))\(a.required ? "" : "?"): \(a.type)"
        }
        return "{ " + fields.joined(separator: ", ") + (isOpen ? ", .. }" : " }")
    }
}

/// An attribute name as Cedar writes it: bare when it is an identifier, quoted otherwise.
func cedarAttributeName(_ s: String) -> String {
    var first = true
    for b in s.utf8 {
        let alpha = (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F
        let digit = b >= 0x30 && b <= 0x39
        if !(alpha || (!first && digit)) { return cedarQuoted(s) }
        first = false
    }
    return first ? cedarQuoted(s) : s
}
