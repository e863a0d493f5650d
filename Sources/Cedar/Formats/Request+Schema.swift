import CustosJSON

extension Request {
    /// A request read against a schema: its context by the action's declared context type.
    /// With `validate`, also what the reference engine checks of a request: the action is
    /// declared, the principal and resource types are ones it applies to, enumerated ids
    /// are declared. Errors name the JSON path.
    public init(json: JSON, schema: Schema, validate: Bool = true, allowedExtraKeys: Set<String> = []) throws(FormatError) {
        guard case .object(let o) = json else { throw FormatError("expected a request object, got \(json.kindName)") }
        for k in o.keys where !["principal", "action", "resource", "context"].contains(k) && !allowedExtraKeys.contains(k) {
            throw FormatError("unknown key \"\(k)\" (a request has principal, action, resource and context)")
        }
        func uid(_ key: String) throws(FormatError) -> EntityUID {
            guard let j = o[key] else { throw FormatError("missing \"\(key)\"") }
            do { return try EntityUID(json: j) } catch { throw error.within(key) }
        }
        let p = try uid("principal"), a = try uid("action"), r = try uid("resource")
        let action = schema.actions[a]
        if validate {
            guard let action else { throw FormatError(path: "action", "action \(a) is not declared in the schema") }
            for (key, u, allowed) in [("principal", p, action.principalTypes), ("resource", r, action.resourceTypes)] {
                guard schema.entityTypes[u.type] != nil else {
                    throw FormatError(path: key, "entity type \(u.type) is not declared in the schema")
                }
                do { try schema.checkReference(u) } catch { throw error.within(key) }
                guard allowed.contains(u.type) else {
                    throw FormatError(path: key, "\(a) does not apply to \(key) type \(u.type) (it applies to \(allowed.map(\.description).joined(separator: ", ")))")
                }
            }
        }
        var ctx = CedarRecord()
        if let c = o["context"] {
            guard case .object(let co) = c else { throw FormatError(path: "context", "expected an object, got \(c.kindName)") }
            do {
                if let action {
                    ctx = try CedarRecord(json: co, expected: action.context, schema: schema)
                } else {
                    ctx = try CedarRecord(json: co)
                }
            } catch { throw error.within("context") }
        } else if let action, validate {
            for name in action.context.names where action.context[name]!.required {
                throw FormatError(path: "context", "required attribute \(cedarAttributeName(name)) is missing")
            }
        }
        self.init(principal: p, action: a, resource: r, context: ctx)
    }
}
