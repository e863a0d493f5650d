import CustosJSON

extension Request {
    /// `{"principal": {"type","id"}, "action": ..., "resource": ..., "context": {...}}`.
    /// `context` may be omitted (empty). Other keys are listed in `allowedExtraKeys` by callers
    /// that embed requests in larger documents (such as test files).
    public init(json: JSON, allowedExtraKeys: Set<String> = []) throws(FormatError) {
        guard case .object(let o) = json else { throw FormatError("expected a request object, got \(json.kindName)") }
        for k in o.keys where !["principal", "action", "resource", "context"].contains(k) && !allowedExtraKeys.contains(k) {
            throw FormatError("unknown key \"\(k)\" (a request has principal, action, resource and context)")
        }
        func uid(_ key: String) throws(FormatError) -> EntityUID {
            guard let j = o[key] else { throw FormatError("missing \"\(key)\"") }
            do { return try EntityUID(json: j) } catch { throw error.within(key) }
        }
        let p = try uid("principal"), a = try uid("action"), r = try uid("resource")
        var ctx = CedarRecord()
        if let c = o["context"] {
            guard case .object(let co) = c else { throw FormatError(path: "context", "expected an object, got \(c.kindName)") }
            do { ctx = try CedarRecord(json: co) } catch { throw error.within("context") }
        }
        self.init(principal: p, action: a, resource: r, context: ctx)
    }
}

// MARK: - Reading straight from jansson's tree

extension Request {
    /// Reads one request text as `init(json: JSON.parse(bytes))` does, but straight into Cedar
    /// values: plain texts by a direct scan (`PlainJSONScanner`), the rest from jansson's tree,
    /// without the `JSON` tree and its string-keyed look-ups in between. nil for every text it cannot read that way, errors included: the caller then
    /// takes `init(json:)`, which gives the exact message, so this is only ever a faster way to
    /// the same request.
    public static func read(_ bytes: UnsafeRawBufferPointer) -> Request? {
        PlainJSONScanner.request(bytes) ?? JSON.withView(bytes) { Request(view: $0) }
    }

    package init?(view o: JSONView) {
        guard o.kind == .object else { return nil }
        var p: EntityUID?, a: EntityUID?, r: EntityUID?
        var ctx = CedarRecord()
        let ok = o.forEachMember { key, v in
            switch key.count {
            case 6 where key.elementsEqual("action".utf8): a = EntityUID(view: v); return a != nil
            case 7 where key.elementsEqual("context".utf8):
                guard v.kind == .object, let c = CedarRecord(view: v) else { return false }
                ctx = c
                return true
            case 8 where key.elementsEqual("resource".utf8): r = EntityUID(view: v); return r != nil
            case 9 where key.elementsEqual("principal".utf8): p = EntityUID(view: v); return p != nil
            default: return false
            }
        }
        guard ok, let p, let a, let r else { return nil }
        self.init(principal: p, action: a, resource: r, context: ctx)
    }
}

extension EntityUID {
    /// `init(json:)` from a jansson view; nil where that would throw.
    init?(view: JSONView) {
        guard view.kind == .object else { return nil }
        var o = view
        if o.count == 1, let inner = o.member("__entity"), inner.kind == .object { o = inner }
        guard o.count == 2, let type = o.member("type")?.stringValue, let id = o.member("id")?.stringValue,
              Self.isValidTypeName(type) else { return nil }
        self.init(type: EntityType(type), id: id)
    }
}

extension CedarRecord {
    /// `init(json:)` from a jansson view of an object; nil where that would throw.
    init?(view: JSONView) {
        var fields: [Field] = []
        fields.reserveCapacity(view.count)
        let ok = view.forEachMember { key, v in
            guard let value = Value(view: v) else { return false }
            fields.append(Field(key: String(decoding: key, as: UTF8.self), value: value))
            return true
        }
        guard ok else { return nil }
        self.init(fields: fields)
    }
}

extension Value {
    /// `init(json:)` from a jansson view; nil where that would throw. Recursion is bounded by
    /// jansson's own nesting limit, as `JSON.parse`'s is.
    init?(view: JSONView) {
        switch view.kind {
        case .bool: self = .bool(view.boolValue!)
        case .int: self = .long(view.intValue!)
        case .string: self = .string(view.stringValue!)
        case .double, .null: return nil
        case .array:
            var out: [Value] = []
            out.reserveCapacity(view.count)
            for i in 0..<view.count {
                guard let v = Value(view: view[index: i]) else { return nil }
                out.append(v)
            }
            self = .set(CedarSet(out))
        case .object:
            if view.count == 1, let inner = view.member("__entity") {
                guard let uid = EntityUID(view: inner) else { return nil }
                self = .entity(uid)
            } else if view.count == 1, let inner = view.member("__extn") {
                guard let v = Value.extensionValue(view: inner) else { return nil }
                self = v
            } else {
                guard let r = CedarRecord(view: view) else { return nil }
                self = .record(r)
            }
        }
    }

    private static func extensionValue(view o: JSONView) -> Value? {
        guard o.kind == .object, let name = o.member("fn")?.stringValue, let fn = ExtensionFunction(rawValue: name) else { return nil }
        var args: [Value] = []
        if let a = o.member("arg"), o.count == 2 {
            guard let v = Value(view: a) else { return nil }
            args = [v]
        } else if let a = o.member("args"), a.kind == .array, o.count == 2 {
            for i in 0..<a.count {
                guard let v = Value(view: a[index: i]) else { return nil }
                args.append(v)
            }
        } else {
            return nil
        }
        guard args.count == fn.arity else { return nil }
        return try? ExtensionFunction.apply(fn, args)
    }
}
