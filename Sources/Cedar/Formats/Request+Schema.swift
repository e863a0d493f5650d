import CustosJSON

extension Request {
    /// A request read against a schema: its context by the action's declared context type.
    /// With `validate`, also what the reference engine checks of a request
    /// (`Schema.checkRequestScope`). Errors name the JSON path.
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
        let declared = validate ? try schema.checkRequestScope(principal: p, action: a, resource: r) : schema.actions[a]?.context
        var ctx = CedarRecord()
        if let c = o["context"] {
            guard case .object(let co) = c else { throw FormatError(path: "context", "expected an object, got \(c.kindName)") }
            do {
                if let declared {
                    ctx = try CedarRecord(json: co, expected: declared, schema: schema)
                } else {
                    ctx = try CedarRecord(json: co)
                }
            } catch { throw error.within("context") }
        } else if let declared, validate {
            for name in declared.names where declared[name]!.required {
                throw FormatError(path: "context", "required attribute \(cedarAttributeName(name)) is missing")
            }
        }
        self.init(principal: p, action: a, resource: r, context: ctx)
    }
}

extension Schema {
    /// What the reference engine checks of a request's principal, action and resource, in its
    /// order (`validate_scope_variables`): the principal's type is declared (and, for an
    /// enumerated type, its id), then the resource's, then the action is declared, then it
    /// applies to the principal's type and to the resource's. Returns the action's context
    /// type. An error's
    /// path is `principal`, `action` or `resource`; undeclared names get the nearest declared
    /// one as a suggestion.
    public func checkRequestScope(principal p: EntityUID, action a: EntityUID, resource r: EntityUID) throws(FormatError) -> RecordType {
        try checkDeclared(p, "principal")
        try checkDeclared(r, "resource")
        guard let shape = requestShapes[a] else {
            let hint = Suggestion.nearest(a.description, among: actions.keys.sorted().map(\.description)).map { "; did you mean \($0)?" } ?? ""
            throw FormatError(path: "action", "action \(a) is not declared in the schema\(hint)")
        }
        guard shape.principals.contains(p.type) else {
            throw FormatError(path: "principal", "\(a) does not apply to principal type \(p.type) (\(Self.appliesList(shape.principals)))")
        }
        guard shape.resources.contains(r.type) else {
            throw FormatError(path: "resource", "\(a) does not apply to resource type \(r.type) (\(Self.appliesList(shape.resources)))")
        }
        return shape.context
    }

    private func checkDeclared(_ u: EntityUID, _ key: String) throws(FormatError) {
        guard entityTypes.index(forKey: u.type) != nil else {
            let hint = Suggestion.nearest(u.type.description, among: entityTypeNames.map(\.description)).map { "; did you mean \($0)?" } ?? ""
            throw FormatError(path: key, "entity type \(u.type) is not declared in the schema\(hint)")
        }
        if !enumeratedIDs.isEmpty, let ids = enumeratedIDs[u.type], !ids.contains(u.id) {
            throw FormatError(path: key, "\(u) is not one of the ids declared for \(u.type): \(entityTypes[u.type]!.enumIDs!.map(cedarQuoted).joined(separator: ", "))")
        }
    }

    private static func appliesList(_ types: [EntityType]) -> String {
        types.isEmpty ? "it applies to no type" : "it applies to " + types.map(\.description).joined(separator: ", ")
    }
}
