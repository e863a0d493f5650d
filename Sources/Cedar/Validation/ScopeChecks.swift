/// The checks Cedar's validator makes of a policy as a whole, before type checking: every
/// entity type it names is declared, every action it names is declared, entities of
/// enumerated types use a declared id, and some declared action applies to the principal and
/// resource types the scope allows. These hold even inside branches type checking skips.
struct ScopeChecks {
    let context: ValidationContext
    var schema: Schema { context.schema }

    /// Entity types and entity literals a policy names, with where.
    struct Mentions {
        var types: [(EntityType, SourceLocation)] = []
        var uids: [(EntityUID, SourceLocation)] = []
    }

    static func mentions(_ p: Policy) -> Mentions {
        var m = Mentions()
        func scope(_ c: ScopeConstraint) {
            switch c {
            case .any, .eq(.slot), .in(.slot): break
            case .eq(.entity(let e)), .in(.entity(let e)):
                m.types.append((e.type, p.location)); m.uids.append((e, p.location))
            case .is(let t), .isIn(let t, .slot):
                m.types.append((t, p.location))
            case .isIn(let t, .entity(let e)):
                m.types.append((e.type, p.location)); m.uids.append((e, p.location))
                m.types.append((t, p.location))
            }
        }
        scope(p.principal)
        let actions: [EntityUID] = switch p.action {
        case .any: []
        case .eq(let a), .in(let a): [a]
        case .inSet(let xs): xs
        }
        for a in actions { m.types.append((a.type, p.location)); m.uids.append((a, p.location)) }
        scope(p.resource)
        // Walked with an explicit stack: expressions may be up to the parser's depth bound.
        var stack = p.conditions.map(\.body).reversed() as [Expr]
        while let e = stack.popLast() {
            switch e.kind {
            case .entity(let u): m.types.append((u.type, e.location)); m.uids.append((u, e.location))
            case .isType(let x, let t):
                m.types.append((t, e.location)); stack.append(x)
            case .isTypeIn(let x, let t, let r):
                m.types.append((t, e.location)); stack.append(r); stack.append(x)
            case .bool, .long, .string, .variable, .slot: break
            case .ifThenElse(let a, let b, let c): stack.append(c); stack.append(b); stack.append(a)
            case .and(let a, let b), .or(let a, let b), .binary(_, let a, let b): stack.append(b); stack.append(a)
            case .not(let a), .negate(let a), .isEmpty(let a), .getAttr(let a, _), .hasAttr(let a, _), .like(let a, _):
                stack.append(a)
            case .set(let xs), .call(_, let xs): stack.append(contentsOf: xs.reversed())
            case .record(let es): stack.append(contentsOf: es.map(\.value).reversed())
            }
        }
        return m
    }

    func check(_ p: Policy, _ m: Mentions, into errors: inout [ValidationError]) {
        for (t, loc) in m.types where !(t.isAction || schema.entityTypes[t] != nil) {
            let s = Suggestion.nearest(t.description, among: schema.entityTypeNames.map(\.description))
            errors.append(context.error(.unrecognizedEntityType, loc, "entity type \(t) is not declared in the schema",
                                        help: s.map { "did you mean \($0)?" }))
        }
        for (u, loc) in m.uids where !u.type.isAction {
            if let def = schema.entityTypes[u.type], let ids = def.enumIDs, !def.allows(id: u.id) {
                errors.append(context.error(.invalidEnumEntity, loc,
                    "entity \(u) is not one of the ids enumerated for \(u.type): \(ids.map(cedarQuoted).joined(separator: ", "))"))
            }
        }
        for (u, loc) in m.uids where u.type.isAction && schema.actions[u] == nil {
            let s = Suggestion.nearest(u.description, among: schema.actions.keys.sorted().map(\.description))
            errors.append(context.error(.unrecognizedActionId, loc, "action \(u) is not declared in the schema",
                                        help: s.map { "did you mean \($0)?" }))
        }
        if !someActionApplies(p) {
            errors.append(context.error(.invalidActionApplication, p.location,
                "no action in the scope applies to the principal and resource types the scope allows"))
        }
    }

    func someActionApplies(_ p: Policy) -> Bool {
        let actions: [Schema.ActionDefinition]
        switch p.action {
        case .any: actions = Array(schema.actions.values)
        case .eq(let a): actions = schema.actions[a].map { [$0] } ?? []
        case .in(let a): actions = (schema.actions(in: [a]) ?? []).compactMap { schema.actions[$0] }
        case .inSet(let xs): actions = (schema.actions(in: xs) ?? []).compactMap { schema.actions[$0] }
        }
        let principals = typesAllowed(by: p.principal)
        let resources = typesAllowed(by: p.resource)
        return actions.contains { a in
            a.principalTypes.contains(where: principals.contains) && a.resourceTypes.contains(where: resources.contains)
        }
    }

    /// The declared entity types a principal or resource scope can match.
    private func typesAllowed(by c: ScopeConstraint) -> Set<EntityType> {
        func within(_ t: EntityType) -> Set<EntityType> {
            var s = schema.entityTypes[t]?.descendants ?? []
            s.insert(t)
            return s
        }
        switch c {
        case .any, .eq(.slot), .in(.slot): return Set(schema.entityTypes.keys)
        case .eq(.entity(let e)): return [e.type]
        case .in(.entity(let e)): return within(e.type)
        case .is(let t), .isIn(let t, .slot):
            return t.isAction || schema.entityTypes[t] != nil ? [t] : []
        case .isIn(let t, .entity(let e)): return within(e.type).filter { $0 == t }
        }
    }
}

/// The closest known name to a misspelt one, by edit distance; none when nothing is close.
enum Suggestion {
    static func nearest(_ word: String, among candidates: [String]) -> String? {
        let w = Array(word.unicodeScalars)
        guard w.count <= 256 else { return nil }  // quadratic below; long names get no suggestion
        var best: (Int, String)? = nil
        for c in candidates where c.unicodeScalars.count <= 256 {
            let d = distance(w, Array(c.unicodeScalars))
            if best == nil || d < best!.0 { best = (d, c) }
        }
        guard let (d, c) = best, d > 0, d <= max(2, w.count / 3) else { return nil }
        return c
    }

    private static func distance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var prev = Array(0...b.count)
        var cur = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            cur[0] = i
            for j in 1...b.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }
}
