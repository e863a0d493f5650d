/// A compiled policy: scope constraints kept as data for the index, conditions compiled.
public struct Policy: Sendable {
    /// `policy0`, `policy1`, ... in load order.
    public let id: String
    public let effect: Effect
    public let annotations: [Annotation]
    public let principal: ScopeConstraint
    public let action: ActionConstraint
    public let resource: ScopeConstraint
    public let location: SourceLocation
    public let isTemplate: Bool
    /// For a policy linked from a template (`linked(id:values:)`): the template and the values.
    public let link: Link?
    /// The `when` and `unless` clauses as written, for the validator (evaluation uses `condition`).
    public let conditions: [Condition]
    /// All `when` and `unless` clauses joined with `&&` (unless as `!`), or nil when there are none.
    let condition: IR?

    public init(id: String, ast: PolicyAST) throws(ParseError) {
        self.id = id
        effect = ast.effect
        annotations = ast.annotations
        principal = ast.principal
        action = ast.action
        resource = ast.resource
        location = ast.location
        isTemplate = ast.isTemplate
        link = nil
        conditions = ast.conditions
        var cond: IR? = nil
        for c in ast.conditions {
            var n = try Compiler.compile(c.body)
            if c.kind == .unless { n = .not(n) }
            cond = cond.map { .and($0, n) } ?? n
        }
        condition = cond
    }

    /// A template's copy with its slots filled (conditions hold no slots, so they are shared).
    init(linking t: Policy, id: String, principal: ScopeConstraint, resource: ScopeConstraint, link: Link) {
        self.id = id
        effect = t.effect
        annotations = t.annotations
        self.principal = principal
        action = t.action
        self.resource = resource
        location = t.location
        isTemplate = false
        self.link = link
        conditions = t.conditions
        condition = t.condition
    }

    /// The `@id("...")` annotation when present: the name operators see in logs and reasons.
    public var annotatedID: String? {
        annotations.first { $0.key == "id" }?.value
    }

    /// The value of annotation `key`, if present.
    public func annotation(_ key: String) -> String? {
        annotations.first { $0.key == key }?.value
    }

    @inline(__always) private static func within(_ uid: EntityUID, _ ancestors: Set<EntityUID>?, _ e: EntityUID) -> Bool {
        uid == e || ancestors?.contains(e) == true
    }

    static func matches(_ c: ScopeConstraint, _ uid: EntityUID, _ anc: Set<EntityUID>?) -> Bool {
        switch c {
        case .any: return true
        case .eq(.entity(let e)): return uid == e
        case .in(.entity(let e)): return within(uid, anc, e)
        case .is(let t): return uid.type == t
        case .isIn(let t, .entity(let e)): return uid.type == t && within(uid, anc, e)
        case .eq(.slot), .in(.slot), .isIn(_, .slot): return false  // unlinked template
        }
    }

    static func matches(_ c: ActionConstraint, _ uid: EntityUID, _ anc: Set<EntityUID>?) -> Bool {
        switch c {
        case .any: return true
        case .eq(let e): return uid == e
        case .in(let e): return within(uid, anc, e)
        case .inSet(let es): return es.contains { within(uid, anc, $0) }
        }
    }
}
