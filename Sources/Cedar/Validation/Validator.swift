/// Cedar 4.x's strict policy validation against a schema. A policy validates when it names
/// only declared entity types and actions, some declared action applies to what its scope
/// allows, and its condition type checks (see `TypeChecker`) in every request environment
/// the schema defines. A policy that is `False` in every environment validates with an
/// `impossiblePolicy` warning, as in Cedar.
public struct Validator: Sendable {
    public let schema: Schema
    /// (member action type, group action type) for every action group holding an action of
    /// another type: `action in Group` may hold across action namespaces only through these.
    let actionTypePairs: Set<[EntityType]>

    public init(schema: Schema) {
        self.schema = schema
        var pairs = Set<[EntityType]>()
        for a in schema.actions.values {
            for d in a.descendants { pairs.insert([d.type, a.uid.type]) }
        }
        actionTypePairs = pairs
    }

    public func validate(_ set: PolicySet) -> ValidationReport {
        var report = ValidationReport()
        for p in set.policies {
            if p.link != nil {
                report.errors += validate(link: p)
                continue
            }
            let (errors, warnings) = validate(p)
            report.errors += errors
            report.warnings += warnings
        }
        return report
    }

    public func validate(_ p: Policy) -> (errors: [ValidationError], warnings: [ValidationWarning]) {
        let condition = Self.condition(of: p)
        if LargeStack.depth(condition) > LargeStack.callerDepth {
            return LargeStack.run { check(p, condition) }
        }
        return check(p, condition)
    }

    /// A policy linked from a template, as Cedar checks a link: its template is validated on its
    /// own (`validate(_:)` checks it for every type a slot may be linked to), so what is left
    /// is the slot values. Each must be of a declared entity type, and some declared action in
    /// the scope must apply to the scope as linked. Custos also requires a value of an
    /// enumerated type to be one of its declared ids and an action value to be declared, which
    /// the reference validator does not check in links (a link to `Role::"admn"` could never
    /// match anything).
    public func validate(link p: Policy) -> [ValidationError] {
        guard let link = p.link else { return [] }
        let context = ValidationContext(validator: self, policyID: p.id, policyName: nil)
        var errors: [ValidationError] = []
        for slot in [SlotID.principal, .resource] {
            guard let v = link.values[slot] else { continue }
            if v.type.isAction {
                if schema.actions[v] == nil {
                    errors.append(context.error(.unrecognizedActionId, p.location,
                        "\(slot.rawValue) is linked to \(v), which is not an action declared in the schema"))
                }
            } else if let def = schema.entityTypes[v.type] {
                if let ids = def.enumIDs, !def.allows(id: v.id) {
                    errors.append(context.error(.invalidEnumEntity, p.location,
                        "\(slot.rawValue) is linked to \(v), which is not one of the ids enumerated for \(v.type): \(ids.map(cedarQuoted).joined(separator: ", "))"))
                }
            } else {
                let s = Suggestion.nearest(v.type.description, among: schema.entityTypeNames.map(\.description))
                errors.append(context.error(.unrecognizedEntityType, p.location,
                    "\(slot.rawValue) is linked to \(v), whose entity type \(v.type) is not declared in the schema",
                    help: s.map { "did you mean \($0)?" }))
            }
        }
        if !ScopeChecks(context: context).someActionApplies(p) {
            errors.append(context.error(.invalidActionApplication, p.location,
                "no action in the scope applies to the principal and resource types the scope allows, as linked"))
        }
        return errors
    }

    private func check(_ p: Policy, _ condition: Expr) -> (errors: [ValidationError], warnings: [ValidationWarning]) {
        let context = ValidationContext(validator: self, policyID: p.id, policyName: p.annotatedID)
        var errors: [ValidationError] = []
        ScopeChecks(context: context).check(p, ScopeChecks.mentions(p), into: &errors)
        var allFalse = true
        for env in schema.environments {
            for (ps, rs) in slotLinks(p, env) {
                let checker = TypeChecker(context, TypeEnvironment(principal: env.principal, action: env.action,
                    resource: env.resource, context: env.context, principalSlot: ps, resourceSlot: rs))
                let isFalse = checker.checkPolicy(condition)
                errors += checker.errors
                allFalse = allFalse && isFalse
            }
        }
        var seen = Set<ValidationError>()
        errors = errors.filter { seen.insert($0).inserted }
        var warnings: [ValidationWarning] = []
        if allFalse {
            warnings.append(ValidationWarning(kind: .impossiblePolicy, policyID: p.id, policyName: p.annotatedID,
                location: p.location, message: "the policy can never apply: it is false for every request the schema allows"))
        }
        return (errors, warnings)
    }

    /// The types a template's slots may be linked to in an environment: for `== ?slot` the
    /// variable's own type, for `in ?slot` any type it may be a member of, else any type.
    private func slotLinks(_ p: Policy, _ env: Schema.RequestEnvironment) -> [(EntityType?, EntityType?)] {
        func links(_ c: ScopeConstraint, _ v: EntityType) -> [EntityType?] {
            switch c {
            case .eq(.slot): return [v]
            case .in(.slot), .isIn(_, .slot):
                var out: [EntityType?] = schema.entityTypeNames.filter { schema.entityTypes[$0]!.descendants.contains(v) }
                out.append(v)
                return out
            default: return [nil]
            }
        }
        let ps = links(p.principal, env.principal), rs = links(p.resource, env.resource)
        return ps.flatMap { a in rs.map { b in (a, b) } }
    }

    /// The policy as one expression, shaped as Cedar shapes it for type checking:
    /// `principal-scope && (action-scope && (resource-scope && (c1 && (c2 && ...))))`, an
    /// `unless` clause negated.
    static func condition(of p: Policy) -> Expr {
        let loc = p.location
        func node(_ k: Expr.Kind) -> Expr { Expr(k, at: loc) }
        func scope(_ c: ScopeConstraint, _ v: Variable) -> Expr {
            let variable = node(.variable(v))
            func target(_ t: EntityOrSlot) -> Expr {
                switch t {
                case .entity(let e): node(.entity(e))
                case .slot(let s): node(.slot(s))
                }
            }
            switch c {
            case .any: return node(.bool(true))
            case .eq(let t): return node(.binary(.eq, variable, target(t)))
            case .in(let t): return node(.binary(.in, variable, target(t)))
            case .is(let type): return node(.isType(variable, type))
            case .isIn(let type, let t):
                return node(.and(node(.isType(variable, type)), node(.binary(.in, variable, target(t)))))
            }
        }
        let action: Expr
        switch p.action {
        case .any: action = node(.bool(true))
        case .eq(let a): action = node(.binary(.eq, node(.variable(.action)), node(.entity(a))))
        case .in(let a): action = node(.binary(.in, node(.variable(.action)), node(.set([node(.entity(a))]))))
        case .inSet(let xs): action = node(.binary(.in, node(.variable(.action)), node(.set(xs.map { node(.entity($0)) }))))
        }
        let clauses = p.conditions.map { c in c.kind == .when ? c.body : Expr(.not(c.body), at: c.body.location) }
        var body = clauses.last ?? node(.bool(true))
        for c in clauses.dropLast().reversed() { body = node(.and(c, body)) }
        return node(.and(scope(p.principal, .principal), node(.and(action, node(.and(scope(p.resource, .resource), body))))))
    }
}

/// What every check of one policy needs: the schema and how to name the policy in errors.
struct ValidationContext {
    let validator: Validator
    let policyID: String
    let policyName: String?

    var schema: Schema { validator.schema }

    func error(_ kind: ValidationError.Kind, _ loc: SourceLocation, _ message: String, help: String? = nil) -> ValidationError {
        ValidationError(kind: kind, policyID: policyID, policyName: policyName, location: loc, message: message, help: help)
    }

    /// `a in b` can hold for some entity of type `a` and some of type `b`.
    func mayBeIn(_ a: EntityType, _ b: EntityType) -> Bool {
        schema.mayBeDescendant(a, of: b) || validator.actionTypePairs.contains([a, b])
    }
}
