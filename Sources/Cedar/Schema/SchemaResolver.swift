/// Turns parsed schema declarations into a `Schema`, with Cedar 4.x's name rules:
///
/// - A name written without `::` inside `namespace N` means `N::name` if that is declared,
///   else `name` in the empty namespace; at each step a common type wins over an entity type.
/// - `Bool`, `Long`, `String`, `ipaddr`, `decimal`, `datetime` and `duration` are built in
///   (`__cedar::Long` and so on), unless the schema declares that name outside any namespace.
/// - A namespaced declaration may not reuse the name of a declaration outside any namespace
///   (RFC 70), nothing may be declared twice, and no entity type may be called `Action`.
/// - Common types are inlined (a cycle is an error); shapes and contexts must be records;
///   `appliesTo` and `in [...]` must name declared entity types; the action hierarchy must be
///   acyclic.
struct SchemaResolver {
    /// Bound on type nesting and on chains of common types, so resolution never exhausts the stack.
    static let maxTypeDepth = 200

    private static let builtinNames: [String: CedarType] = [
        "Bool": .anyBool, "Long": .long, "String": .string,
        "ipaddr": .ext(.ipaddr), "decimal": .ext(.decimal), "datetime": .ext(.datetime), "duration": .ext(.duration),
    ]
    private static let reservedCommonTypeNames: Set<String> = [
        "Bool", "Boolean", "Entity", "Extension", "Long", "Record", "Set", "String",
    ]

    private struct CommonDef {
        var type: TypeExpr?          // nil: a built-in
        var builtin: CedarType?
        var namespace: String?
        var site: SchemaSite?
    }

    private var commonDefs: [String: CommonDef] = [:]
    private var entityNames: Set<String> = []     // declared entity types and action types
    private var declaredEntityTypes: Set<String> = []
    private var actionUIDs: Set<EntityUID> = []
    private var resolvedCommon: [String: CedarType] = [:]
    private var resolving: Set<String> = []

    static func resolve(_ namespaces: [RawNamespace]) throws(SchemaError) -> Schema {
        var r = SchemaResolver()
        return try r.run(namespaces)
    }

    private static func qualify(_ ns: String?, _ name: String) -> String {
        ns.map { "\($0)::\(name)" } ?? name
    }

    private mutating func run(_ namespaces: [RawNamespace]) throws(SchemaError) -> Schema {
        // Declarations, with the checks that need no resolution.
        var seenNamespaces = Set<String?>()
        var entityDecls: [(ns: String?, decl: RawEntityDecl)] = []
        var actionDecls: [(ns: String?, decl: RawActionDecl)] = []
        var emptyNamespaceNames: [String: SchemaSite] = [:]
        var qualifiedNames: [(name: String, base: String, site: SchemaSite)] = []
        for n in namespaces {
            let ns = n.name?.text
            if let name = n.name, name.components.contains("__cedar") {
                throw SchemaError("`__cedar` is reserved and cannot name a namespace", at: name.site)
            }
            guard seenNamespaces.insert(ns).inserted else {
                throw SchemaError(ns.map { "namespace `\($0)` is declared twice" } ?? "declarations outside a namespace must be in one place", at: n.site)
            }
            var local: [String: SchemaSite] = [:]
            var localCommon: [String: SchemaSite] = [:]
            for c in n.commonTypes {
                if Self.reservedCommonTypeNames.contains(c.name) {
                    throw SchemaError("`\(c.name)` is a reserved type name and cannot name a common type", at: c.site)
                }
                try Self.checkUnreserved(c.name, at: c.site)
                if localCommon.updateValue(c.site, forKey: c.name) != nil {
                    throw SchemaError("common type `\(Self.qualify(ns, c.name))` is declared twice", at: c.site)
                }
                commonDefs[Self.qualify(ns, c.name)] = CommonDef(type: c.type, namespace: ns, site: c.site)
                if ns == nil { emptyNamespaceNames[c.name] = emptyNamespaceNames[c.name] ?? c.site }
                else { qualifiedNames.append((Self.qualify(ns, c.name), c.name, c.site)) }
            }
            for e in n.entityTypes {
                try Self.checkUnreserved(e.name, at: e.site)
                if e.name == "Action" {
                    throw SchemaError("`Action` cannot be declared as an entity type; declare actions with `action`", at: e.site)
                }
                if local.updateValue(e.site, forKey: e.name) != nil {
                    throw SchemaError("entity type `\(Self.qualify(ns, e.name))` is declared twice", at: e.site)
                }
                let q = Self.qualify(ns, e.name)
                entityNames.insert(q)
                declaredEntityTypes.insert(q)
                entityDecls.append((ns, e))
                if ns == nil { emptyNamespaceNames[e.name] = emptyNamespaceNames[e.name] ?? e.site }
                else { qualifiedNames.append((q, e.name, e.site)) }
            }
            var localActions: Set<ScalarString> = []
            for a in n.actions {
                guard localActions.insert(ScalarString(a.name)).inserted else {
                    throw SchemaError("action \(cedarQuoted(a.name)) is declared twice", at: a.site)
                }
                actionUIDs.insert(EntityUID(type: EntityType(Self.qualify(ns, "Action")), id: a.name))
                actionDecls.append((ns, a))
            }
        }
        // RFC 70: a namespaced declaration may not shadow one in the empty namespace.
        for q in qualifiedNames {
            if emptyNamespaceNames[q.base] != nil {
                throw SchemaError("`\(q.name)` shadows `\(q.base)`, declared outside any namespace; rename one of them", at: q.site)
            }
        }
        var unqualifiedActionIDs = Set<ScalarString>()
        for a in actionUIDs where a.type.name.value == "Action" { unqualifiedActionIDs.insert(a.id) }
        for (ns, a) in actionDecls where ns != nil && unqualifiedActionIDs.contains(ScalarString(a.name)) {
            throw SchemaError("action `\(ns!)::Action::\(cedarQuoted(a.name))` shadows `Action::\(cedarQuoted(a.name))`, declared outside any namespace", at: a.site)
        }
        // Built-in types, reachable as `__cedar::T` and, unless the schema declares T outside
        // any namespace, as `T`.
        for (name, type) in Self.builtinNames {
            commonDefs["__cedar::" + name] = CommonDef(builtin: type)
            if commonDefs[name] == nil && !entityNames.contains(name) {
                commonDefs[name] = CommonDef(builtin: type)
            }
        }
        for a in actionUIDs { entityNames.insert(a.type.name.value) }

        // Entity types.
        var entityTypes: [EntityType: Schema.EntityTypeDefinition] = [:]
        var memberOf: [EntityType: [EntityType]] = [:]
        for (ns, e) in entityDecls {
            let name = EntityType(Self.qualify(ns, e.name))
            let kind: Schema.EntityKind
            switch e.kind {
            case .enumerated(let ids):
                kind = .enumerated(ids)
            case .standard(let parents, let shape, let tags):
                var attrs = RecordType()
                if let shape {
                    guard case .record(let r) = try resolve(shape, in: ns, depth: 0) else {
                        throw SchemaError("the shape of entity type `\(name)` must be a record type", at: e.site)
                    }
                    attrs = r
                }
                let tagType = try tags.map { t throws(SchemaError) in try resolve(t, in: ns, depth: 0) }
                kind = .standard(attributes: attrs, tags: tagType)
                var ps: [EntityType] = []
                for p in parents {
                    let t = try resolveEntityType(p, in: ns)
                    if !ps.contains(t) { ps.append(t) }
                }
                memberOf[name] = ps
            }
            entityTypes[name] = Schema.EntityTypeDefinition(name: name, kind: kind)
        }
        // Transitive closure of `in` over types; cycles among entity types are allowed.
        var children: [EntityType: [EntityType]] = [:]
        for (child, parents) in memberOf { for p in parents { children[p, default: []].append(child) } }
        for t in entityTypes.keys {
            var seen = Set<EntityType>()
            var stack = children[t] ?? []
            while let c = stack.popLast() {
                if seen.insert(c).inserted { stack.append(contentsOf: children[c] ?? []) }
            }
            seen.remove(t)
            entityTypes[t]!.descendants = seen
        }
        for (t, def) in entityTypes {
            for d in def.descendants { entityTypes[d]?.allowedParents.insert(t) }
        }

        // Actions.
        var actions: [EntityUID: Schema.ActionDefinition] = [:]
        for (ns, a) in actionDecls {
            let uid = EntityUID(type: EntityType(Self.qualify(ns, "Action")), id: a.name)
            var parents: [EntityUID] = []
            for ref in a.memberOf {
                let p = try resolveAction(ref, in: ns)
                if !parents.contains(p) { parents.append(p) }
            }
            var principals: [EntityType] = [], resources: [EntityType] = []
            var context = RecordType()
            if let applies = a.appliesTo {
                for n in applies.principals {
                    let t = try resolveAppliesTo(n, in: ns)
                    if !principals.contains(t) { principals.append(t) }
                }
                for n in applies.resources {
                    let t = try resolveAppliesTo(n, in: ns)
                    if !resources.contains(t) { resources.append(t) }
                }
                if let c = applies.context {
                    guard case .record(let r) = try resolve(c, in: ns, depth: 0) else {
                        throw SchemaError("the context of action \(uid) must be a record type", at: a.site)
                    }
                    context = r
                }
            }
            actions[uid] = Schema.ActionDefinition(uid: uid, principalTypes: principals, resourceTypes: resources,
                                                   context: context, parents: parents)
        }
        try Self.closeActionHierarchy(&actions, sites: Dictionary(uniqueKeysWithValues: actionDecls.map {
            (EntityUID(type: EntityType(Self.qualify($0.ns, "Action")), id: $0.decl.name), $0.decl.site)
        }))
        return Schema(entityTypes: entityTypes, actions: actions)
    }

    private static func checkUnreserved(_ name: String, at site: SchemaSite) throws(SchemaError) {
        if name == "__cedar" || CedarNames.reserved.contains(name) {
            throw SchemaError("`\(name)` is reserved and cannot be declared", at: site)
        }
    }

    /// Ancestors and descendants of every action; a cycle is an error.
    private static func closeActionHierarchy(_ actions: inout [EntityUID: Schema.ActionDefinition],
                                             sites: [EntityUID: SchemaSite]) throws(SchemaError) {
        for uid in actions.keys.sorted() {
            var seen = Set<EntityUID>()
            var stack = actions[uid]!.parents
            while let p = stack.popLast() {
                if p == uid {
                    throw SchemaError("action \(uid) is in a cycle of action groups", at: sites[uid] ?? SchemaSite(file: "", position: ""))
                }
                if seen.insert(p).inserted { stack.append(contentsOf: actions[p]?.parents ?? []) }
            }
            actions[uid]!.ancestors = seen
        }
        for (uid, a) in actions {
            for anc in a.ancestors { actions[anc]?.descendants.insert(uid) }
        }
    }

    /// The candidates a written name may mean, most specific first.
    private static func candidates(_ name: RawName, in ns: String?) -> [String] {
        if !name.isQualified, let ns { return ["\(ns)::\(name.text)", name.text] }
        return [name.text]
    }

    private func notDeclared(_ name: RawName, in ns: String?, as what: String) -> SchemaError {
        let c = Self.candidates(name, in: ns)
        let which = c.count == 1 ? "`\(c[0])` is not declared" : "neither `\(c[0])` nor `\(c[1])` is declared"
        return SchemaError("\(which) as \(what)", at: name.site)
    }

    private func resolveEntityType(_ name: RawName, in ns: String?) throws(SchemaError) -> EntityType {
        for c in Self.candidates(name, in: ns) where declaredEntityTypes.contains(c) { return EntityType(c) }
        throw notDeclared(name, in: ns, as: "an entity type")
    }

    private func resolveAppliesTo(_ name: RawName, in ns: String?) throws(SchemaError) -> EntityType {
        try resolveEntityType(name, in: ns)
    }

    private func resolveAction(_ ref: RawActionRef, in ns: String?) throws(SchemaError) -> EntityUID {
        let type = ref.type ?? RawName(components: ["Action"], site: ref.site)
        for c in Self.candidates(type, in: ns) {
            let uid = EntityUID(type: EntityType(c), id: ref.id)
            if actionUIDs.contains(uid) { return uid }
        }
        let shown = Self.candidates(type, in: ns).map { "\($0)::\(cedarQuoted(ref.id))" }
        throw SchemaError("action group \(shown.joined(separator: " or ")) is not declared", at: ref.site)
    }

    private mutating func resolve(_ t: TypeExpr, in ns: String?, depth: Int) throws(SchemaError) -> CedarType {
        guard depth < Self.maxTypeDepth else {
            throw SchemaError("type is nested too deeply (more than \(Self.maxTypeDepth) levels)", at: Self.site(of: t))
        }
        switch t {
        case .long: return .long
        case .string: return .string
        case .bool: return .anyBool
        case .ext(let name, let site):
            guard let x = ExtensionType(rawValue: name) else {
                throw SchemaError("`\(name)` is not an extension type (ipaddr, decimal, datetime, duration)", at: site)
            }
            return .ext(x)
        case .set(let e):
            return .set(try resolve(e, in: ns, depth: depth + 1))
        case .record(let attrs, let isOpen, _):
            var out: [ScalarString: AttributeType] = [:]
            for a in attrs {
                let type = try resolve(a.type, in: ns, depth: depth + 1)
                if out.updateValue(AttributeType(type, required: a.required), forKey: ScalarString(a.name)) != nil {
                    throw SchemaError("attribute \(cedarQuoted(a.name)) is declared twice", at: a.site)
                }
            }
            return .record(RecordType(out, isOpen: isOpen))
        case .reference(let name, let role):
            for c in Self.candidates(name, in: ns) {
                if role != .entity, let def = commonDefs[c] {
                    return try resolveCommon(c, def, depth: depth)
                }
                if role != .common, entityNames.contains(c) { return .entity(EntityType(c)) }
            }
            let what = switch role {
            case .common: "a common type"
            case .entity: "an entity type"
            case .commonOrEntity: "a common or entity type"
            }
            throw notDeclared(name, in: ns, as: what)
        }
    }

    private mutating func resolveCommon(_ name: String, _ def: CommonDef, depth: Int) throws(SchemaError) -> CedarType {
        if let b = def.builtin { return b }
        if let done = resolvedCommon[name] { return done }
        guard resolving.insert(name).inserted else {
            throw SchemaError("common type `\(name)` refers to itself", at: def.site ?? SchemaSite(file: "", position: ""))
        }
        let t = try resolve(def.type!, in: def.namespace, depth: depth + 1)
        resolving.remove(name)
        resolvedCommon[name] = t
        return t
    }

    private static func site(of t: TypeExpr) -> SchemaSite {
        switch t {
        case .reference(let n, _): n.site
        case .record(_, _, let s), .ext(_, let s): s
        case .set(let e): site(of: e)
        case .long, .string, .bool: SchemaSite(file: "", position: "")
        }
    }
}
