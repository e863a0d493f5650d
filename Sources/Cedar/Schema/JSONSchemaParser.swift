import CustosJSON

/// Cedar's JSON schema format (`schema.cedarschema.json`):
///
///     {"Clinic": {
///        "commonTypes": {"Address": {"type": "Record", "attributes": {"city": {"type": "String"}}}},
///        "entityTypes": {"User": {"memberOfTypes": ["Team"], "shape": {...}, "tags": {...}},
///                        "Color": {"enum": ["red", "green"]}},
///        "actions": {"read": {"memberOf": [{"id": "any"}],
///                             "appliesTo": {"principalTypes": ["User"], "resourceTypes": ["Dataset"],
///                                           "context": {"type": "Record", "attributes": {}}}}}}}
///
/// The key `""` holds declarations outside any namespace. Unknown keys are refused, as the
/// reference engine refuses them; errors name the JSON path.
enum JSONSchemaParser {
    static func namespaces(_ json: JSON, file: String) throws(SchemaError) -> [RawNamespace] {
        let root = SchemaSite(file: file, position: "")
        guard case .object(let o) = json else {
            throw SchemaError("a JSON schema is an object of namespaces, got \(json.kindName)", at: root)
        }
        var out: [RawNamespace] = []
        for m in o.members {
            let site = root.json(m.key)
            var name: RawName? = nil
            if !m.key.isEmpty { name = try Self.name(m.key, at: site, role: "a namespace name") }
            out.append(try namespace(m.value, name: name, at: site))
        }
        return out
    }

    private static func object(_ json: JSON, at site: SchemaSite, _ what: String, keys: Set<String>) throws(SchemaError) -> JSONObject {
        guard case .object(let o) = json else { throw SchemaError("\(what) must be an object, got \(json.kindName)", at: site) }
        for k in o.keys where !keys.contains(k) {
            throw SchemaError("unknown key \(cedarQuoted(k)) in \(what) (expected \(keys.sorted().joined(separator: ", ")))", at: site)
        }
        return o
    }

    private static func string(_ json: JSON?, at site: SchemaSite, _ what: String) throws(SchemaError) -> String {
        guard case .string(let s)? = json else {
            throw SchemaError("\(what) must be a string, got \(json?.kindName ?? "nothing")", at: site)
        }
        return s
    }

    private static func array(_ json: JSON?, at site: SchemaSite, _ what: String) throws(SchemaError) -> [JSON] {
        guard case .array(let a)? = json else {
            throw SchemaError("\(what) must be an array, got \(json?.kindName ?? "nothing")", at: site)
        }
        return a
    }

    /// `A::B::C`: identifiers joined by `::`, none of them a reserved word.
    static func name(_ s: String, at site: SchemaSite, role: String) throws(SchemaError) -> RawName {
        let parts = s.split(separator: "::", omittingEmptySubsequences: false).map(String.init)
        guard EntityUID.isValidTypeName(s), !parts.contains(where: { CedarNames.reserved.contains($0) }) else {
            throw SchemaError("\(cedarQuoted(s)) is not a valid \(role) (identifiers joined by ::)", at: site)
        }
        return RawName(components: parts, site: site)
    }

    private static func annotations(_ json: JSON?, at site: SchemaSite) throws(SchemaError) {
        guard let json else { return }
        guard case .object(let o) = json else { throw SchemaError("annotations must be an object, got \(json.kindName)", at: site) }
        for m in o.members {
            guard case .string = m.value else { throw SchemaError("an annotation value must be a string", at: site.json(m.key)) }
        }
    }

    private static func namespace(_ json: JSON, name: RawName?, at site: SchemaSite) throws(SchemaError) -> RawNamespace {
        let o = try object(json, at: site, "a namespace", keys: ["commonTypes", "entityTypes", "actions", "annotations"])
        try annotations(o["annotations"], at: site.json("annotations"))
        var ns = RawNamespace(name: name, site: site)
        if let ct = o["commonTypes"] {
            let cs = site.json("commonTypes")
            guard case .object(let co) = ct else { throw SchemaError("commonTypes must be an object", at: cs) }
            for m in co.members {
                let s = cs.json(m.key)
                _ = try Self.name(m.key, at: s, role: "common type name")
                guard !m.key.contains(":") else { throw SchemaError("a common type name cannot contain ::", at: s) }
                ns.commonTypes.append(RawCommonType(name: m.key, type: try type(m.value, at: s, extraKeys: ["annotations"], depth: 1), site: s))
            }
        }
        let es = site.json("entityTypes")
        guard case .object(let eo)? = o["entityTypes"] else { throw SchemaError("entityTypes is required and must be an object", at: es) }
        for m in eo.members {
            let s = es.json(m.key)
            _ = try Self.name(m.key, at: s, role: "entity type name")
            guard !m.key.contains(":") else { throw SchemaError("an entity type name cannot contain ::", at: s) }
            ns.entityTypes.append(try entityType(m.value, name: m.key, at: s))
        }
        let asite = site.json("actions")
        guard case .object(let ao)? = o["actions"] else { throw SchemaError("actions is required and must be an object", at: asite) }
        for m in ao.members {
            ns.actions.append(try action(m.value, name: m.key, at: asite.json(m.key)))
        }
        return ns
    }

    private static func entityType(_ json: JSON, name: String, at site: SchemaSite) throws(SchemaError) -> RawEntityDecl {
        let o = try object(json, at: site, "an entity type", keys: ["memberOfTypes", "shape", "tags", "enum", "annotations"])
        try annotations(o["annotations"], at: site.json("annotations"))
        if let e = o["enum"] {
            for k in ["memberOfTypes", "shape", "tags"] where o[k] != nil {
                throw SchemaError("an enumerated entity type cannot have \(k)", at: site.json(k))
            }
            let items = try array(e, at: site.json("enum"), "enum")
            guard !items.isEmpty else { throw SchemaError("enum must list at least one id", at: site.json("enum")) }
            var ids: [String] = []
            for (i, x) in items.enumerated() { ids.append(try string(x, at: site.json("enum").json(i), "an enum id")) }
            return RawEntityDecl(name: name, kind: .enumerated(ids), site: site)
        }
        var parents: [RawName] = []
        if let m = o["memberOfTypes"] {
            for (i, x) in try array(m, at: site.json("memberOfTypes"), "memberOfTypes").enumerated() {
                let s = site.json("memberOfTypes").json(i)
                parents.append(try Self.name(try string(x, at: s, "an entity type name"), at: s, role: "entity type name"))
            }
        }
        let shape = try o["shape"].map { j throws(SchemaError) in try type(j, at: site.json("shape"), extraKeys: [], depth: 1) }
        let tags = try o["tags"].map { j throws(SchemaError) in try type(j, at: site.json("tags"), extraKeys: [], depth: 1) }
        return RawEntityDecl(name: name, kind: .standard(memberOf: parents, shape: shape, tags: tags), site: site)
    }

    private static func action(_ json: JSON, name: String, at site: SchemaSite) throws(SchemaError) -> RawActionDecl {
        let o = try object(json, at: site, "an action", keys: ["memberOf", "appliesTo", "attributes", "annotations"])
        try annotations(o["annotations"], at: site.json("annotations"))
        if o["attributes"] != nil { throw SchemaError("action attributes are not supported", at: site.json("attributes")) }
        var parents: [RawActionRef] = []
        if let m = o["memberOf"] {
            for (i, x) in try array(m, at: site.json("memberOf"), "memberOf").enumerated() {
                let s = site.json("memberOf").json(i)
                let r = try object(x, at: s, "an action reference", keys: ["id", "type"])
                let id = try string(r["id"], at: s.json("id"), "id")
                let t = try r["type"].map { j throws(SchemaError) in
                    try Self.name(try string(j, at: s.json("type"), "type"), at: s.json("type"), role: "action type")
                }
                parents.append(RawActionRef(type: t, id: id, site: s))
            }
        }
        var applies: RawAppliesTo? = nil
        if let a = o["appliesTo"] {
            let s = site.json("appliesTo")
            let ao = try object(a, at: s, "appliesTo", keys: ["principalTypes", "resourceTypes", "context"])
            func types(_ key: String) throws(SchemaError) -> [RawName] {
                var out: [RawName] = []
                for (i, x) in try array(ao[key], at: s.json(key), key).enumerated() {
                    let ks = s.json(key).json(i)
                    out.append(try Self.name(try string(x, at: ks, "an entity type name"), at: ks, role: "entity type name"))
                }
                return out
            }
            let context = try ao["context"].map { j throws(SchemaError) in try type(j, at: s.json("context"), extraKeys: [], depth: 1) }
            applies = RawAppliesTo(principals: try types("principalTypes"), resources: try types("resourceTypes"), context: context)
        }
        return RawActionDecl(name: name, memberOf: parents, appliesTo: applies, site: site)
    }

    private static let typeKeys: Set<String> = ["type", "element", "attributes", "additionalAttributes", "name"]

    /// A type object. `extraKeys` are the keys its position also allows (`required` and
    /// `annotations` for an attribute, `annotations` for a common type).
    private static func type(_ json: JSON, at site: SchemaSite, extraKeys: Set<String>, depth: Int) throws(SchemaError) -> TypeExpr {
        guard depth <= Parser.maxNesting else {
            throw SchemaError("type is nested too deeply (more than \(Parser.maxNesting) levels)", at: site)
        }
        let o = try object(json, at: site, "a type", keys: typeKeys.union(extraKeys))
        if extraKeys.contains("annotations") { try annotations(o["annotations"], at: site.json("annotations")) }
        let kind = try string(o["type"], at: site.json("type"), "type")
        func only(_ allowed: Set<String>) throws(SchemaError) {
            for k in o.keys where typeKeys.contains(k) && k != "type" && !allowed.contains(k) {
                throw SchemaError("a \(cedarQuoted(kind)) type cannot have \(cedarQuoted(k))", at: site.json(k))
            }
        }
        func nameField() throws(SchemaError) -> String {
            try only(["name"])
            return try string(o["name"], at: site.json("name"), "name")
        }
        switch kind {
        case "String": try only([]); return .string
        case "Long": try only([]); return .long
        case "Boolean": try only([]); return .bool
        case "Set":
            try only(["element"])
            guard let e = o["element"] else { throw SchemaError("a Set type needs \"element\"", at: site) }
            return .set(try type(e, at: site.json("element"), extraKeys: [], depth: depth + 1))
        case "Record":
            try only(["attributes", "additionalAttributes"])
            guard case .object(let attrs)? = o["attributes"] else {
                throw SchemaError("a Record type needs an \"attributes\" object", at: site)
            }
            var isOpen = false
            if let add = o["additionalAttributes"] {
                guard case .bool(let b) = add else { throw SchemaError("additionalAttributes must be true or false", at: site.json("additionalAttributes")) }
                isOpen = b
            }
            var out: [RawAttribute] = []
            for m in attrs.members {
                let s = site.json("attributes").json(m.key)
                let t = try type(m.value, at: s, extraKeys: ["required", "annotations"], depth: depth + 1)
                var required = true
                if let r = m.value["required"] {
                    guard case .bool(let b) = r else { throw SchemaError("required must be true or false", at: s.json("required")) }
                    required = b
                }
                out.append(RawAttribute(name: m.key, type: t, required: required, site: s))
            }
            return .record(out, isOpen: isOpen, site)
        case "Entity":
            return .reference(try Self.name(try nameField(), at: site.json("name"), role: "entity type name"), .entity)
        case "EntityOrCommon":
            return .reference(try Self.name(try nameField(), at: site.json("name"), role: "type name"), .commonOrEntity)
        case "Extension":
            return .ext(try nameField(), site.json("name"))
        default:
            try only([])
            return .reference(try Self.name(kind, at: site.json("type"), role: "common type name"), .common)
        }
    }
}
