/// Strict type checking of one policy condition in one request environment (a principal type,
/// an action and a resource type the schema allows together), as Cedar 4.x's validator does:
///
/// - `&&`, `||` and `if` short-circuit on the singleton types `True` and `False`: an operand
///   after a `False` left operand of `&&` is not checked at all, which is how a scope that
///   cannot match an environment makes the rest of the policy irrelevant there.
/// - Attribute reads need the attribute to be required, or proven by a `has` on the same
///   expression earlier in the same conjunction (the capabilities); tags likewise need `hasTag`.
/// - `==`, `contains`, `containsAll`/`containsAny`, set literals and `if` branches need types
///   with a least upper bound; entity types of different names never have one.
///
/// Every failure records an error; a failed operand still lets its parent check the rest,
/// so several independent errors are reported at once.
struct TypeEnvironment {
    let principal: EntityType
    let action: EntityUID
    let resource: EntityType
    let context: RecordType
    let principalSlot: EntityType?
    let resourceSlot: EntityType?
}

final class TypeChecker {
    struct Answer {
        var type: CedarType?
        var caps: Capabilities = .none
        var ok: Bool = true
    }

    /// What an operand must be; checked with width subtyping, as the reference does.
    enum Expected {
        case bool, long, string, anySet, anyEntity, anyRecord, setOfEntities, ext(ExtensionType)

        func admits(_ t: CedarType) -> Bool {
            switch (self, t) {
            case (.bool, .bool), (.long, .long), (.string, .string), (.anySet, .set), (.anyEntity, .entity),
                 (.anyRecord, .record), (.setOfEntities, .set(.entity)):
                return true
            case (.ext(let x), .ext(let y)): return x == y
            default: return false
            }
        }

        var description: String {
            switch self {
            case .bool: "Bool"
            case .long: "Long"
            case .string: "String"
            case .anySet: "a set"
            case .anyEntity: "an entity"
            case .anyRecord: "a record"
            case .setOfEntities: "a set of entities"
            case .ext(let x): x.rawValue
            }
        }
    }

    let context: ValidationContext
    let env: TypeEnvironment
    var errors: [ValidationError] = []

    init(_ context: ValidationContext, _ env: TypeEnvironment) {
        self.context = context
        self.env = env
    }

    var schema: Schema { context.schema }

    /// Whether the whole condition has type `False` here (the policy cannot apply).
    func checkPolicy(_ condition: Expr) -> Bool {
        let a = expect(condition, .none, [.bool])
        return a.type == .bool(.false)
    }

    // MARK: - Results and errors

    private func ok(_ t: CedarType?, _ caps: Capabilities = .none) -> Answer { Answer(type: t, caps: caps, ok: true) }
    private func fail(_ t: CedarType?) -> Answer { Answer(type: t, caps: .none, ok: false) }

    /// The reference's `then_typecheck`: continue with a child's result; a failed child lends
    /// its type but no capabilities, and fails the parent.
    private func then(_ child: Answer, _ next: (CedarType?, Capabilities) -> Answer) -> Answer {
        var r = next(child.type, child.ok ? child.caps : .none)
        if !child.ok { r.ok = false; r.caps = .none }
        return r
    }

    private func report(_ kind: ValidationError.Kind, _ at: Expr, _ message: String, help: String? = nil) {
        errors.append(context.error(kind, at.location, message, help: help))
    }

    private func expect(_ e: Expr, _ prior: Capabilities, _ expected: [Expected],
                                 help: (CedarType) -> String? = { _ in nil }) -> Answer {
        let a = check(e, prior)
        guard let t = a.type else { return fail(nil) }
        guard expected.contains(where: { $0.admits(t) }) else {
            let what = expected.map(\.description).joined(separator: " or ")
            report(.unexpectedType, e, "expected \(what) but found \(t)", help: help(t))
            return fail(nil)
        }
        return a
    }

    private func lubOrError(_ types: [CedarType?], at e: Expr, _ context: String) -> CedarType? {
        var out: CedarType? = nil
        var all: [CedarType] = []
        for t in types {
            guard let t else { return nil }
            all.append(t)
        }
        for t in all {
            guard let acc = out else { out = t; continue }
            switch TypeLattice.leastUpperBound(acc, t) {
            case .success(let l): out = l
            case .failure(let c):
                report(.incompatibleTypes, e, "the types \(Self.listTypes(all)) are not compatible as \(context)", help: c.hint)
                return nil
            }
        }
        return out
    }

    private static func listTypes(_ ts: [CedarType]) -> String {
        var seen: [String] = []
        for t in ts where !seen.contains(t.description) { seen.append(t.description) }
        seen.sort()
        if seen.count <= 2 { return seen.joined(separator: " and ") }
        return seen.dropLast().joined(separator: ", ") + " and " + seen.last!
    }

    // MARK: - Expressions

    func check(_ e: Expr, _ prior: Capabilities) -> Answer {
        switch e.kind {
        case .bool(let b): return ok(.bool(b ? .true : .false))
        case .long: return ok(.long)
        case .string: return ok(.string)
        case .entity(let uid):
            guard let t = literalType(uid) else { return fail(nil) }  // reported by the scope checks
            return ok(.entity(t))
        case .variable(let v):
            switch v {
            case .principal: return ok(.entity(env.principal))
            case .action: return ok(.entity(env.action.type))
            case .resource: return ok(.entity(env.resource))
            case .context: return ok(.record(env.context))
            }
        case .slot(let s):
            guard let t = s == .principal ? env.principalSlot : env.resourceSlot else { return fail(nil) }
            return ok(.entity(t))
        case .ifThenElse(let c, let t, let f):
            return checkIf(c, t, f, e, prior)
        case .and(let l, let r):
            return checkAnd(l, r, prior)
        case .or(let l, let r):
            return checkOr(l, r, prior)
        case .not(let x):
            return checkNot(expect(x, prior, [.bool]))
        case .negate(let x):
            return then(expect(x, prior, [.long])) { _, _ in ok(.long) }
        case .binary(let op, let l, let r):
            return checkBinary(op, l, r, e, prior)
        case .isEmpty(let x):
            let a = expect(x, prior, [.anySet]) { $0 == .string ? "try `== \"\"` to test for the empty string" : nil }
            return then(a) { _, _ in ok(.anyBool) }
        case .getAttr(let x, let name):
            return checkGetAttr(x, name, e, prior)
        case .hasAttr(let x, let name):
            return checkHasAttr(x, name, prior)
        case .like(let x, _):
            let a = expect(x, prior, [.string]) { $0.isEntity ? "try `is` to test an entity's type" : nil }
            return then(a) { _, _ in ok(.anyBool) }
        case .isType(let x, let type):
            let a = expect(x, prior, [.anyEntity])
            return then(a) { t, _ in
                guard case .entity(let actual)? = t else { return fail(.anyBool) }
                return ok(.bool(actual == type ? .true : .false))
            }
        case .isTypeIn(let x, let type, let r):
            // `e is T in r` is `e is T && e in r`, so the `in` is only checked when `is` can hold.
            let isPart = Expr(.isType(x, type), at: e.location)
            let inPart = Expr(.binary(.in, x, r), at: e.location)
            return checkAnd(isPart, inPart, prior)
        case .set(let xs):
            var answers: [Answer] = []
            for x in xs { answers.append(check(x, prior)) }
            let allOK = answers.allSatisfy(\.ok)
            let element = lubOrError(answers.map(\.type), at: e, "elements of a set")
            var r: Answer
            if xs.isEmpty {
                report(.emptySetForbidden, e, "empty set literals are not allowed: their element type cannot be known")
                r = fail(nil)
            } else if let element {
                r = ok(.set(element))
            } else {
                r = fail(nil)
            }
            if !allOK { r.ok = false; r.caps = .none }
            return r
        case .record(let entries):
            var attrs: [ScalarString: AttributeType] = [:]
            var allOK = true, allTyped = true
            for en in entries {
                let a = check(en.value, prior)
                allOK = allOK && a.ok
                if let t = a.type { attrs[ScalarString(en.key)] = AttributeType(t) } else { allTyped = false }
            }
            guard allTyped else { return fail(nil) }
            return allOK ? ok(.record(RecordType(attrs))) : fail(.record(RecordType(attrs)))
        case .call(let name, let args):
            return checkCall(name, args, e, prior)
        }
    }

    /// The type of an entity literal, or nil for an undeclared type or action.
    private func literalType(_ uid: EntityUID) -> EntityType? {
        if uid.type.isAction { return schema.actions[uid] != nil ? uid.type : nil }
        return schema.entityTypes[uid.type] != nil ? uid.type : nil
    }

    private func checkIf(_ c: Expr, _ t: Expr, _ f: Expr, _ e: Expr, _ prior: Capabilities) -> Answer {
        let test = expect(c, prior, [.bool])
        return then(test) { tt, testCaps in
            if tt == .bool(.true) {
                let a = check(t, prior.union(testCaps))
                return then(a) { ty, caps in ok(ty, caps.union(testCaps)) }
            }
            if tt == .bool(.false) {
                let a = check(f, prior)
                return then(a) { ty, caps in ok(ty, caps) }
            }
            var thenA = check(t, prior.union(testCaps))
            if thenA.ok { thenA.caps = thenA.caps.union(testCaps) }
            let elseA = check(f, prior)
            return then(thenA) { thenT, thenCaps in
                then(elseA) { elseT, elseCaps in
                    guard let l = lubOrError([thenT, elseT], at: e, "both branches of a conditional") else { return fail(nil) }
                    return ok(l, elseCaps.intersection(thenCaps))
                }
            }
        }
    }

    private func checkAnd(_ l: Expr, _ r: Expr, _ prior: Capabilities) -> Answer {
        let left = expect(l, prior, [.bool])
        return then(left) { lt, leftCaps in
            if lt == .bool(.false) { return ok(lt) }
            let right = expect(r, prior.union(leftCaps), [.bool])
            return then(right) { rt, rightCaps in
                switch (lt, rt) {
                case (_?, .bool(.false)?): return ok(.bool(.false))
                case (_?, .bool(.true)?): return ok(lt, leftCaps.union(rightCaps))
                case (.bool(.true)?, _?): return ok(rt, rightCaps)
                case (_?, _?): return ok(.anyBool, leftCaps.union(rightCaps))
                default: return fail(.anyBool)
                }
            }
        }
    }

    private func checkOr(_ l: Expr, _ r: Expr, _ prior: Capabilities) -> Answer {
        let left = expect(l, prior, [.bool])
        return then(left) { lt, leftCaps in
            if lt == .bool(.true) { return ok(lt, leftCaps) }
            let right = expect(r, prior, [.bool])
            return then(right) { rt, rightCaps in
                switch (lt, rt) {
                case (_?, .bool(.true)?): return ok(.bool(.true), rightCaps)
                case (_?, .bool(.false)?): return ok(lt, leftCaps)
                case (.bool(.false)?, _?): return ok(rt, rightCaps)
                case (_?, _?): return ok(.anyBool, rightCaps.intersection(leftCaps))
                default: return fail(.anyBool)
                }
            }
        }
    }

    private func checkNot(_ a: Answer) -> Answer {
        then(a) { t, _ in
            switch t {
            case .bool(.true)?: ok(.bool(.false))
            case .bool(.false)?: ok(.bool(.true))
            case _?: ok(.anyBool)
            case nil: fail(.anyBool)
            }
        }
    }

    // MARK: - Binary operators

    private func checkBinary(_ op: BinaryOp, _ l: Expr, _ r: Expr, _ e: Expr, _ prior: Capabilities) -> Answer {
        switch op {
        case .eq:
            return checkEquality(l, r, e, prior)
        case .neq:
            return checkNot(checkEquality(l, r, e, prior))
        case .lt, .le:
            return checkComparison(l, r, prior)
        case .gt, .ge:
            return checkComparison(r, l, prior)
        case .add, .sub, .mul:
            let help: (CedarType) -> String? = { t in
                if op == .add && t == .string { return "Cedar does not concatenate strings" }
                if case .set = t { return "Cedar has no set arithmetic; use contains, containsAll or containsAny" }
                return nil
            }
            let a = expect(l, prior, [.long], help: help)
            return then(a) { _, _ in
                then(expect(r, prior, [.long], help: help)) { _, _ in ok(.long) }
            }
        case .in:
            return checkIn(l, r, prior)
        case .contains:
            let a = expect(l, prior, [.anySet], help: Self.notASetHelp)
            return then(a) { lt, _ in
                then(check(r, prior)) { rt, _ in
                    var element: CedarType? = nil
                    if case .set(let el)? = lt { element = el }
                    return strictEquality(.anyBool, element, rt, at: e, "the set's elements and the operand of `contains`")
                }
            }
        case .containsAll, .containsAny:
            let a = expect(l, prior, [.anySet], help: Self.notASetHelp)
            return then(a) { lt, _ in
                then(expect(r, prior, [.anySet]) { _ in "try `contains` to test for a single element" }) { rt, _ in
                    strictEquality(.anyBool, lt, rt, at: e, "the elements of both sets of `\(op.rawValue)`")
                }
            }
        case .hasTag:
            let a = expect(l, prior, [.anyEntity])
            return then(a) { lt, _ in
                then(expect(r, prior, [.string])) { _, _ in
                    guard case .entity(let type)? = lt else { return fail(nil) }
                    let cap = Capability(on: l, key: .tag(r))
                    let t: CedarType
                    if schema.entityTypes[type]?.tags == nil { t = .bool(.false) }
                    else if prior.contains(cap) { t = .bool(.true) }
                    else { t = .anyBool }
                    return ok(t, .single(cap))
                }
            }
        case .getTag:
            let a = expect(l, prior, [.anyEntity])
            return then(a) { lt, _ in
                then(expect(r, prior, [.string])) { _, _ in
                    guard case .entity(let type)? = lt else { return fail(nil) }
                    guard prior.contains(Capability(on: l, key: .tag(r))) else {
                        report(.unsafeTagAccess, e, "cannot tell that the tag exists on entity type \(type)",
                               help: "test for it first: `e.hasTag(t) && e.getTag(t)`")
                        return fail(nil)
                    }
                    guard let tags = schema.entityTypes[type]?.tags else {
                        report(.noTagsAllowed, e, "entity type \(type) has no tags in the schema")
                        return fail(nil)
                    }
                    return ok(tags)
                }
            }
        }
    }

    private static func notASetHelp(_ t: CedarType) -> String? {
        switch t {
        case .entity: "try `in` for hierarchy membership"
        case .record: "try `has` to test for an attribute"
        case .string: "try `like` to examine the contents of a string"
        default: nil
        }
    }

    /// Where the reference requires strict equality: a result already known to be `True` or
    /// `False` stands; otherwise both operand types need a least upper bound.
    private func strictEquality(_ result: CedarType, _ a: CedarType?, _ b: CedarType?, at e: Expr, _ what: String) -> Answer {
        if result == .bool(.true) || result == .bool(.false) { return ok(result) }
        guard let a, let b else { return ok(result) }
        if case .failure(let c) = TypeLattice.leastUpperBound(a, b) {
            report(.incompatibleTypes, e, "the types \(Self.listTypes([a, b])) are not compatible as \(what)", help: c.hint)
            return fail(result)
        }
        return ok(result)
    }

    private func checkEquality(_ l: Expr, _ r: Expr, _ e: Expr, _ prior: Capabilities) -> Answer {
        let la = check(l, prior)
        let ra = check(r, prior)
        return then(la) { lt, _ in
            then(ra) { rt, _ in
                let t: CedarType
                if let lt, let rt, TypeLattice.areDisjoint(lt, rt) {
                    t = .bool(.false)
                } else if let x = literal(l), let y = literal(r) {
                    t = .bool(x == y ? .true : .false)
                } else {
                    t = .anyBool
                }
                return strictEquality(t, lt, rt, at: e, "operands of `==`")
            }
        }
    }

    /// A literal value, with `action` read as the environment's action.
    private func literal(_ e: Expr) -> Value? {
        switch e.kind {
        case .bool(let b): .bool(b)
        case .long(let i): .long(i)
        case .string(let s): .string(s)
        case .entity(let u): .entity(u)
        case .variable(.action): .entity(env.action)
        default: nil
        }
    }

    private static func isComparable(_ t: CedarType) -> Bool {
        t == .long || t == .ext(.datetime) || t == .ext(.duration)
    }

    private func checkComparison(_ l: Expr, _ r: Expr, _ prior: Capabilities) -> Answer {
        let la = check(l, prior)
        return then(la) { lt, _ in
            then(check(r, prior)) { rt, _ in
                guard let lt, let rt else { return fail(.anyBool) }
                if lt == rt && Self.isComparable(lt) { return ok(.anyBool) }
                let any = "Long, datetime or duration"
                if lt == .long {
                    report(.unexpectedType, r, "expected Long but found \(rt)")
                } else if rt == .long {
                    report(.unexpectedType, l, "expected Long but found \(lt)")
                } else if Self.isComparable(lt) {
                    report(.unexpectedType, r, "expected \(lt) but found \(rt)")
                } else if Self.isComparable(rt) {
                    report(.unexpectedType, l, "expected \(rt) but found \(lt)")
                } else {
                    report(.unexpectedType, l, "expected \(any) but found \(lt)")
                    report(.unexpectedType, r, "expected \(any) but found \(rt)")
                }
                return fail(.anyBool)
            }
        }
    }

    // MARK: - `in`

    private func checkIn(_ l: Expr, _ r: Expr, _ prior: Capabilities) -> Answer {
        let la = expect(l, prior, [.anyEntity]) { _ in "try `contains` to test if a single element is in a set" }
        let ra = expect(r, prior, [.setOfEntities, .anyEntity]) { t in
            if case .set = t { return "try `contains` to test if a single element is in a set" }
            return t == .string ? "try `like` to examine the contents of a string" : nil
        }
        return then(la) { lt, _ in
            then(ra) { rt, _ in
                guard la.ok && ra.ok else { return fail(.anyBool) }
                if let lhs = entityLiteral(l), lhs.type.isAction, let rhs = entityLiterals(r) {
                    let groups = rhs.filter { $0.type.isAction }
                    guard !groups.isEmpty else { return ok(.bool(.false)) }
                    guard let members = schema.actions(in: groups) else { return fail(.anyBool) }
                    return ok(.bool(members.contains(lhs) ? .true : .false))
                }
                var lhsType: EntityType? = nil, rhsType: EntityType? = nil
                if case .entity(let t)? = lt { lhsType = t }
                switch rt {
                case .entity(let t)?, .set(.entity(let t))?: rhsType = t
                default: break
                }
                if let lhsType, let rhsType, !context.mayBeIn(lhsType, rhsType) { return ok(.bool(.false)) }
                return ok(.anyBool)
            }
        }
    }

    private func entityLiteral(_ e: Expr) -> EntityUID? {
        switch e.kind {
        case .entity(let u): u
        case .variable(.action): env.action
        default: nil
        }
    }

    private func entityLiterals(_ e: Expr) -> [EntityUID]? {
        if let u = entityLiteral(e) { return [u] }
        guard case .set(let xs) = e.kind else { return nil }
        var out: [EntityUID] = []
        for x in xs {
            guard let u = entityLiteral(x) else { return nil }
            out.append(u)
        }
        return out
    }

    // MARK: - Attributes

    /// The declared attribute of a record or entity type; entities of enumerated or action
    /// types have none.
    private func attribute(_ t: CedarType, _ name: String) -> AttributeType? {
        switch t {
        case .record(let r): r[name]
        case .entity(let type): schema.entityTypes[type]?.attributes[name]
        default: nil
        }
    }

    private func knownAttributes(_ t: CedarType) -> [String] {
        switch t {
        case .record(let r): r.names
        case .entity(let type): schema.entityTypes[type]?.attributes.names ?? []
        default: []
        }
    }

    private func mayHaveAttribute(_ t: CedarType, _ name: String) -> Bool {
        switch t {
        case .record(let r): r.isOpen || r[name] != nil
        case .entity(let type): schema.entityTypes[type]?.attributes.isOpen == true
        default: false
        }
    }

    private func describeOwner(_ x: Expr, _ t: CedarType) -> String {
        switch t {
        case .entity(let type): "entity type \(type)"
        case .record:
            if case .variable(.context) = x.kind { "the context of \(env.action)" } else { "record \(t)" }
        default: "\(t)"
        }
    }

    private func checkGetAttr(_ x: Expr, _ name: String, _ e: Expr, _ prior: Capabilities) -> Answer {
        let a = expect(x, prior, [.anyEntity, .anyRecord])
        return then(a) { t, _ in
            guard let t else { return fail(nil) }
            if let at = attribute(t, name) {
                if at.required || prior.contains(Capability(on: x, key: .attribute(ScalarString(name)))) { return ok(at.type) }
                report(.unsafeOptionalAttributeAccess, e,
                       "attribute \(cedarAttributeName(name)) of \(describeOwner(x, t)) is optional and may be absent",
                       help: "test for it first: `... has \(cedarAttributeName(name)) && ...`")
                return fail(at.type)
            }
            let suggestion = Suggestion.nearest(name, among: knownAttributes(t))
            report(.unsafeAttributeAccess, e, "attribute \(cedarAttributeName(name)) not found on \(describeOwner(x, t))",
                   help: suggestion.map { "did you mean \($0)?" })
            return fail(nil)
        }
    }

    private func checkHasAttr(_ x: Expr, _ name: String, _ prior: Capabilities) -> Answer {
        let a = expect(x, prior, [.anyEntity, .anyRecord]) { t in
            if case .set = t { return "try `contains` to test if a single element is in a set" }
            return t == .string ? "try `like` to examine the contents of a string" : nil
        }
        return then(a) { t, _ in
            guard let t else { return fail(.anyBool) }
            let cap = Capability(on: x, key: .attribute(ScalarString(name)))
            if let at = attribute(t, name) {
                let known = prior.contains(cap) || (at.required && t.isRecord)
                return ok(known ? .bool(.true) : .anyBool, .single(cap))
            }
            return ok(mayHaveAttribute(t, name) ? .anyBool : .bool(.false))
        }
    }

    // MARK: - Extension functions

    private static func isLiteral(_ e: Expr) -> Bool {
        switch e.kind {
        case .bool, .long, .string, .entity: true
        default: false
        }
    }

    private func checkCall(_ name: String, _ args: [Expr], _ e: Expr, _ prior: Capabilities) -> Answer {
        guard let fn = ExtensionFunction(rawValue: name) else {
            // The parser only accepts Cedar's extension names; kept for completeness.
            for x in args { _ = check(x, prior) }
            report(.unexpectedType, e, "`\(name)` is not an extension function")
            return fail(nil)
        }
        var failed = false
        if args.count != fn.arity {
            report(.wrongNumberArguments, e, "`\(name)` takes \(fn.arity) argument\(fn.arity == 1 ? "" : "s") but is given \(args.count)")
            failed = true
        }
        if let problem = fn.literalArgumentProblem(args) {
            report(.functionArgumentValidation, e, problem)
            failed = true
        }
        if fn.isConstructor && !args.allSatisfy(Self.isLiteral) {
            report(.nonLitExtConstructor, e, "`\(name)` must be applied to a string literal",
                   help: "a value computed at evaluation time cannot be checked; use a literal")
            failed = true
        }
        if failed {
            for x in args { _ = check(x, prior) }
            return fail(fn.returnType)
        }
        var allOK = true
        for (x, t) in zip(args, fn.argumentTypes) {
            let expected: Expected = switch t {
            case .string: .string
            case .long: .long
            case .ext(let k): .ext(k)
            default: .bool
            }
            allOK = expect(x, prior, [expected]).ok && allOK
        }
        return allOK ? ok(fn.returnType) : fail(fn.returnType)
    }
}
