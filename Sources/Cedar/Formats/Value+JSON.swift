import CustosJSON

/// Cedar's JSON value format (schema-free): numbers are longs, arrays are sets, objects are
/// records, except the escapes `{"__entity": {"type", "id"}}` and
/// `{"__extn": {"fn", "arg"}}` / `{"__extn": {"fn", "args": [...]}}` when they are the only key.
extension Value {
    public init(json: JSON) throws(FormatError) {
        switch json {
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .long(i)
        case .string(let s): self = .string(s)
        case .double(let d):
            throw FormatError("\(d) is a real number; Cedar values are integers (Long) only")
        case .null:
            throw FormatError("null is not a Cedar value")
        case .array(let xs):
            var out: [Value] = []
            out.reserveCapacity(xs.count)
            for (i, x) in xs.enumerated() {
                do { out.append(try Value(json: x)) } catch { throw error.within("[\(i)]") }
            }
            self = .set(CedarSet(out))
        case .object(let o):
            if o.count == 1, let inner = o["__entity"] {
                do { self = .entity(try EntityUID(json: inner)) } catch { throw error.within("__entity") }
            } else if o.count == 1, let inner = o["__extn"] {
                do { self = try Value.extensionValue(inner) } catch { throw error.within("__extn") }
            } else {
                self = .record(try CedarRecord(json: o))
            }
        }
    }

    private static func extensionValue(_ json: JSON) throws(FormatError) -> Value {
        guard case .object(let o) = json, let fnJSON = o["fn"] else {
            throw FormatError("expected {\"fn\": ..., \"arg\": ...}")
        }
        guard case .string(let name) = fnJSON, let fn = ExtensionFunction(rawValue: name) else {
            throw FormatError("unknown extension function \(fnJSON.serialized)")
        }
        var args: [Value] = []
        if let a = o["arg"], o.count == 2 {
            do { args = [try Value(json: a)] } catch { throw error.within("arg") }
        } else if let a = o["args"], case .array(let xs) = a, o.count == 2 {
            for (i, x) in xs.enumerated() {
                do { args.append(try Value(json: x)) } catch { throw error.within("args[\(i)]") }
            }
        } else {
            throw FormatError("expected exactly the keys \"fn\" and \"arg\" (or \"args\")")
        }
        guard args.count == fn.arity else {
            throw FormatError("`\(name)` takes \(fn.arity) argument(s), got \(args.count)")
        }
        do {
            return try ExtensionFunction.apply(fn, args)
        } catch {
            throw FormatError("\(name)(...): \(error)")
        }
    }

    /// The value in Cedar's JSON format (inverse of `init(json:)`).
    public var json: JSON {
        switch self {
        case .bool(let b): return .bool(b)
        case .long(let i): return .int(i)
        case .string(let s): return .string(s)
        case .entity(let u): return .object(JSONObject(["__entity": u.json]))
        case .set(let s): return .array(s.elements.map(\.json))
        case .record(let r): return .object(r.json)
        case .decimal(let d): return Self.extn("decimal", d.description)
        case .ipaddr(let a): return Self.extn("ip", a.description)
        case .datetime(let d):
            // Years outside 0000-9999 have no datetime literal; Cedar writes those as an
            // offset from the epoch, which reads back to the same instant.
            if (try? CedarDatetime.parse(d.description)) == d { return Self.extn("datetime", d.description) }
            return .object(JSONObject(["__extn": .object(JSONObject([
                "fn": .string("offset"),
                "args": .array([Self.extn("datetime", "1970-01-01"), Self.extn("duration", "\(d.millisecondsSinceEpoch)ms")]),
            ]))]))
        case .duration(let d): return Self.extn("duration", d.description)
        }
    }

    private static func extn(_ fn: String, _ arg: String) -> JSON {
        .object(JSONObject(["__extn": .object(JSONObject(["fn": .string(fn), "arg": .string(arg)]))]))
    }
}

extension CedarRecord {
    public init(json o: JSONObject) throws(FormatError) {
        var fields: [Field] = []
        fields.reserveCapacity(o.count)
        for m in o.members {
            do { fields.append(Field(key: m.key, value: try Value(json: m.value))) } catch { throw error.within(m.key) }
        }
        self.init(fields: fields)
    }

    public var json: JSONObject {
        JSONObject(fields.map { JSONObject.Member(key: $0.key, value: $0.value.json) })
    }
}

extension EntityUID {
    /// `{"type": "T", "id": "i"}` or `{"__entity": {"type": "T", "id": "i"}}`.
    public init(json: JSON) throws(FormatError) {
        guard case .object(var o) = json else {
            throw FormatError("expected an entity reference {\"type\": ..., \"id\": ...}, got \(json.kindName)")
        }
        if o.count == 1, case .object(let inner)? = o["__entity"] { o = inner }
        guard case .string(let type)? = o["type"] else { throw FormatError("entity reference needs a string \"type\"") }
        guard case .string(let id)? = o["id"] else { throw FormatError("entity reference needs a string \"id\"") }
        guard o.count == 2 else {
            let extra = o.keys.filter { $0 != "type" && $0 != "id" }
            throw FormatError("unexpected key \"\(extra.first ?? "")\" in entity reference")
        }
        guard Self.isValidTypeName(type) else {
            throw FormatError("\"\(type)\" is not a valid entity type name (identifiers joined by ::)")
        }
        self.init(type: EntityType(type), id: id)
    }

    public var json: JSON {
        .object(JSONObject(["type": .string(type.description), "id": .string(id.value)]))
    }

    /// Identifiers `[_a-zA-Z][_a-zA-Z0-9]*` joined by `::`, as Cedar names are written.
    static func isValidTypeName(_ s: String) -> Bool {
        var expectStart = true
        var it = s.utf8.makeIterator()
        var prevColon = false
        while let b = it.next() {
            let isAlpha = (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F
            let isDigit = b >= 0x30 && b <= 0x39
            if b == 0x3A {  // ':'
                if expectStart { return false }
                guard it.next() == 0x3A else { return false }
                expectStart = true; prevColon = true
                continue
            }
            if expectStart { guard isAlpha else { return false }; expectStart = false }
            else if !(isAlpha || isDigit) { return false }
            prevColon = false
        }
        return !expectStart && !prevColon
    }
}
