import CustosJSON

/// Cedar's JSON values read as a schema declares them. Beyond the schema-free format:
/// an entity-typed value may be written `{"type": "User", "id": "alice"}` without `__entity`;
/// an extension-typed value may be a plain string (`"10.0.0.1"` for an `ipaddr`) or
/// `{"fn": "ip", "arg": "..."}` without `__extn`. Every value must have the declared type:
/// records have exactly their declared attributes (required ones present, no others unless
/// the record type is open), entity references have the declared entity type and, for an
/// enumerated type, a declared id. Errors name the JSON path.
extension Value {
    public init(json: JSON, expected: CedarType, schema: Schema) throws(FormatError) {
        switch expected {
        case .entity(let type):
            let uid = try EntityUID(json: json)
            guard uid.type == type else { throw FormatError("expected an entity of type \(type), got \(uid)") }
            try schema.checkReference(uid)
            self = .entity(uid)
        case .ext(let x):
            self = try Value.extensionValue(json, x)
        case .set(let element):
            guard case .array(let xs) = json else {
                throw FormatError("expected \(expected) (a JSON array), got \(json.kindName)")
            }
            var out: [Value] = []
            out.reserveCapacity(xs.count)
            for (i, x) in xs.enumerated() {
                do { out.append(try Value(json: x, expected: element, schema: schema)) } catch { throw error.within("[\(i)]") }
            }
            self = .set(CedarSet(out))
        case .record(let type):
            guard case .object(let o) = json else {
                throw FormatError("expected a record \(type) (a JSON object), got \(json.kindName)")
            }
            self = .record(try CedarRecord(json: o, expected: type, schema: schema))
        case .bool, .long, .string:
            let v = try Value(json: json)
            guard v.conforms(to: expected) else { throw FormatError("expected \(expected), got \(v.typeName)") }
            self = v
        }
    }

    private static func extensionValue(_ json: JSON, _ type: ExtensionType) throws(FormatError) -> Value {
        let value: Value
        switch json {
        case .string(let s):
            let constructor: ExtensionFunction = switch type {
            case .ipaddr: .ip
            case .decimal: .decimal
            case .datetime: .datetime
            case .duration: .duration
            }
            do { value = try ExtensionFunction.apply(constructor, [.string(s)]) } catch {
                throw FormatError("\(cedarQuoted(s)) is not a valid \(type.rawValue): \(error)")
            }
        case .object(let o) where o.count == 1 && o["__extn"] != nil:
            value = try Value(json: json)
        case .object(let o) where o["fn"] != nil:
            value = try Value(json: .object(JSONObject(["__extn": .object(o)])))
        default:
            throw FormatError("expected a \(type.rawValue) value (a string, or {\"__extn\": {\"fn\", \"arg\"}}), got \(json.kindName)")
        }
        guard value.conforms(to: .ext(type)) else {
            throw FormatError("expected a \(type.rawValue) value, got \(value.typeName)")
        }
        return value
    }

    /// Whether a value has a type: what the schema checks of values read without one.
    func conforms(to type: CedarType) -> Bool {
        switch (self, type) {
        case (.bool, .bool), (.long, .long), (.string, .string): return true
        case (.entity(let u), .entity(let t)): return u.type == t
        case (.set(let s), .set(let e)): return s.elements.allSatisfy { $0.conforms(to: e) }
        case (.record(let r), .record(let t)):
            for f in r.fields {
                guard let a = t[f.key] else {
                    if t.isOpen { continue }
                    return false
                }
                guard f.value.conforms(to: a.type) else { return false }
            }
            for (k, a) in t.attributes where a.required && r[k.value] == nil { return false }
            return true
        case (.decimal, .ext(.decimal)), (.ipaddr, .ext(.ipaddr)), (.datetime, .ext(.datetime)),
             (.duration, .ext(.duration)):
            return true
        default: return false
        }
    }
}

extension CedarRecord {
    /// A JSON object read as a record of a declared type.
    public init(json o: JSONObject, expected type: RecordType, schema: Schema) throws(FormatError) {
        var fields: [Field] = []
        fields.reserveCapacity(o.count)
        var required = 0
        for m in o.members {
            do throws(FormatError) {
                if let a = type[m.key] {
                    if a.required { required += 1 }
                    fields.append(Field(key: m.key, value: try Value(json: m.value, expected: a.type, schema: schema)))
                } else if type.isOpen {
                    let v = try Value(json: m.value)
                    try schema.checkReferences(in: v)
                    fields.append(Field(key: m.key, value: v))
                } else {
                    let hint = Suggestion.nearest(m.key, among: type.names).map { "; did you mean \(cedarAttributeName($0))?" } ?? ""
                    throw FormatError("attribute \(cedarAttributeName(m.key)) is not declared (declared: \(type.names.map(cedarAttributeName).joined(separator: ", ")))\(hint)")
                }
            } catch { throw error.within(m.key) }
        }
        // Counted, not looked up (requests are read this way on the daemon's hot path; JSON
        // keys are unique); the error names the first missing attribute by name order.
        if required < type.requiredCount, let name = type.names.first(where: { type[$0]!.required && o[$0] == nil }) {
            throw FormatError("required attribute \(cedarAttributeName(name)) is missing")
        }
        self.init(fields: fields)
    }
}

extension Schema {
    /// An entity reference in data: an enumerated type's id must be declared, and an action
    /// must be declared.
    func checkReference(_ uid: EntityUID) throws(FormatError) {
        if let def = entityTypes[uid.type], let ids = def.enumIDs, !def.allows(id: uid.id) {
            throw FormatError("\(uid) is not one of the ids declared for \(uid.type): \(ids.map(cedarQuoted).joined(separator: ", "))")
        }
        if uid.type.isAction && actions[uid] == nil {
            throw FormatError("action \(uid) is not declared in the schema")
        }
    }

    /// `checkReference` for every entity reference inside a value read without a type.
    func checkReferences(in v: Value) throws(FormatError) {
        var stack = [v]
        while let x = stack.popLast() {
            switch x {
            case .entity(let u): try checkReference(u)
            case .set(let s): stack.append(contentsOf: s.elements)
            case .record(let r): stack.append(contentsOf: r.fields.map(\.value))
            default: break
            }
        }
    }
}
