/// An entity type such as `User` or `Clinic::Site`: the `::`-joined path, compared by scalars.
public struct EntityType: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let name: ScalarString
    public init(_ qualified: String) { name = ScalarString(qualified) }
    public var description: String { name.value }
    public static func < (a: EntityType, b: EntityType) -> Bool { a.name < b.name }

    /// `Action` in any namespace (`Action`, `Ns::Action`): Cedar's action entities.
    public var isAction: Bool {
        let v = name.value
        return v == "Action" || v.hasSuffix("::Action")
    }
}

/// `Type::"id"`: an entity reference. The id is any string, compared by scalars.
public struct EntityUID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let type: EntityType
    public let id: ScalarString
    /// Entity references are hashed on every scope-index and hierarchy look-up; hashing both
    /// strings each time dominated evaluation, so the hash is computed once here.
    let hash: Int

    public init(type: EntityType, id: String) {
        self.type = type
        self.id = ScalarString(id)
        var h = Hasher()
        h.combine(self.type)
        h.combine(self.id)
        hash = h.finalize()
    }

    @inline(__always) public static func == (a: EntityUID, b: EntityUID) -> Bool {
        a.hash == b.hash && a.type == b.type && a.id == b.id
    }

    @inline(__always) public func hash(into hasher: inout Hasher) { hasher.combine(hash) }

    public init(_ type: String, _ id: String) {
        self.init(type: EntityType(type), id: id)
    }

    /// Cedar's own rendering, `Type::"id"` with the id escaped as a Cedar string literal.
    public var description: String {
        let t = type.description, i = id.value
        var out = ""
        out.reserveCapacity(t.utf8.count + i.utf8.count + 4)
        out += t
        out += "::"
        appendCedarQuoted(i, to: &out)
        return out
    }

    public static func < (a: EntityUID, b: EntityUID) -> Bool {
        a.type == b.type ? a.id < b.id : a.type < b.type
    }
}

/// Renders a string as a Cedar string literal (used in messages and `description`s).
package func cedarQuoted(_ s: String) -> String {
    var out = ""
    appendCedarQuoted(s, to: &out)
    return out
}

/// The audit log renders three entity references per decision, so the common case (nothing
/// to escape) is one append rather than a scalar at a time.
package func appendCedarQuoted(_ s: String, to out: inout String) {
    if !s.utf8.contains(where: { $0 == 0x22 || $0 == 0x5C || $0 < 0x20 || $0 == 0x7F }) {
        out += "\""
        out += s
        out += "\""
        return
    }
    out += "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\0": out += "\\0"
        default:
            if u.value < 0x20 || u.value == 0x7F {
                out += "\\u{\(String(u.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    out += "\""
}
