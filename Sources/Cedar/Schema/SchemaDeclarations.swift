/// A schema as written, before names are resolved: what both the Cedar schema syntax and the
/// JSON schema format parse into. `SchemaResolver` turns it into a `Schema`.

/// Why a schema was refused: the file, where in it (`line:col` for the Cedar syntax, a JSON
/// path such as `Clinic.entityTypes.Dataset.shape` for the JSON format), and what is wrong.
public struct SchemaError: Error, Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var position: String
    public var message: String
    /// The message without anything copied from the source, for a syntax error whose message
    /// quotes it (see `ParseError.redacted`); nil when `message` copies nothing.
    public var redacted: String?

    public init(file: String, position: String, _ message: String, redacted: String? = nil) {
        self.file = file; self.position = position; self.message = message; self.redacted = redacted
    }

    init(_ message: String, at site: SchemaSite) {
        self.init(file: site.file, position: site.position, message)
    }

    public var description: String { Self.render(file, position, message) }

    /// `file:position: message` with a syntax error's source text replaced by token classes.
    public var redactedDescription: String { Self.render(file, position, redacted ?? message) }

    private static func render(_ file: String, _ position: String, _ message: String) -> String {
        switch (file.isEmpty, position.isEmpty) {
        case (true, true): message
        case (true, false): "\(position): \(message)"
        case (false, true): "\(file): \(message)"
        case (false, false): "\(file):\(position): \(message)"
        }
    }
}

/// Where a declaration was written, for errors.
struct SchemaSite: Sendable, Hashable {
    var file: String
    var position: String

    init(file: String, position: String) { self.file = file; self.position = position }
    init(_ loc: SourceLocation) { file = loc.file; position = "\(loc.line):\(loc.column)" }

    /// A JSON path below this one: `a.b`, `a["b c"]`, `a[3]`.
    func json(_ key: String) -> SchemaSite {
        var s = self
        let plain = !key.isEmpty && key.utf8.allSatisfy { b in
            (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x5F || b == 0x3A
        }
        let part = plain ? key : "[\(cedarQuoted(key))]"
        s.position = position.isEmpty ? part : (plain ? position + "." + part : position + part)
        return s
    }

    func json(_ index: Int) -> SchemaSite {
        var s = self
        s.position += "[\(index)]"
        return s
    }
}

/// A type or entity name as written: one or more identifiers joined by `::`.
struct RawName: Sendable, Hashable {
    var components: [String]
    var site: SchemaSite
    var text: String { components.joined(separator: "::") }
    var isQualified: Bool { components.count > 1 }
}

/// What a name may refer to where it is written.
enum NameRole: Sendable {
    case common, entity, commonOrEntity
}

indirect enum TypeExpr: Sendable {
    case reference(RawName, NameRole)
    case set(TypeExpr)
    case record([RawAttribute], isOpen: Bool, SchemaSite)
    /// The JSON format's built-in `"Long"`, `"String"`, `"Boolean"` and `"Extension"` types.
    case long, string, bool
    case ext(String, SchemaSite)
}

struct RawAttribute: Sendable {
    var name: String
    var type: TypeExpr
    var required: Bool
    var site: SchemaSite
}

struct RawEntityDecl: Sendable {
    enum Kind: Sendable {
        case standard(memberOf: [RawName], shape: TypeExpr?, tags: TypeExpr?)
        case enumerated([String])
    }
    var name: String
    var kind: Kind
    var site: SchemaSite
}

/// `Action::"read"`, `"read"` or `Ns::Action::"read"` in an action's `in [...]`.
struct RawActionRef: Sendable {
    var type: RawName?
    var id: String
    var site: SchemaSite
}

struct RawAppliesTo: Sendable {
    var principals: [RawName]
    var resources: [RawName]
    var context: TypeExpr?
}

struct RawActionDecl: Sendable {
    var name: String
    var memberOf: [RawActionRef]
    /// nil when the action applies to nothing (no `appliesTo`).
    var appliesTo: RawAppliesTo?
    var site: SchemaSite
}

struct RawCommonType: Sendable {
    var name: String
    var type: TypeExpr
    var site: SchemaSite
}

struct RawNamespace: Sendable {
    /// nil for declarations outside any namespace.
    var name: RawName?
    var commonTypes: [RawCommonType] = []
    var entityTypes: [RawEntityDecl] = []
    var actions: [RawActionDecl] = []
    var site: SchemaSite
}
