/// Evaluates compiled expressions for one request against one entity store.
///
/// Semantics follow the Cedar 4 specification: `&&`, `||` and `if` short-circuit; operands of
/// the wrong kind are type errors; `==` across kinds is false; integer overflow is an error;
/// attribute access on a missing entity or attribute is an error, while `has` is false.
struct Evaluator {
    let request: Request
    let entities: EntityStore
    let contextValue: Value
    let principalEntry: EntityStore.Entry?
    let resourceEntry: EntityStore.Entry?

    init(request: Request, entities: EntityStore) {
        self.init(request: request, entities: entities, scope: RequestScope(request, entities))
    }

    init(request: Request, entities: EntityStore, scope: RequestScope) {
        self.request = request
        self.entities = entities
        self.contextValue = .record(request.context)
        self.principalEntry = scope.principalEntry
        self.resourceEntry = scope.resourceEntry
    }

    func eval(_ node: IR) throws(EvalError) -> Value {
        switch node {
        case .value(let v): return v
        case .principal: return .entity(request.principal)
        case .action: return .entity(request.action)
        case .resource: return .entity(request.resource)
        case .context: return contextValue
        case .slot(let s): throw .unlinkedSlot(s)

        case .ite(let c, let t, let e):
            return try evalBool(c) ? eval(t) : eval(e)
        case .and(let l, let r):
            guard try evalBool(l) else { return .bool(false) }
            return .bool(try evalBool(r))
        case .or(let l, let r):
            if try evalBool(l) { return .bool(true) }
            return .bool(try evalBool(r))
        case .not(let e):
            return .bool(!(try evalBool(e)))
        case .negate(let e):
            let x = try evalLong(e)
            let (r, o) = Int64(0).subtractingReportingOverflow(x)
            if o { throw .overflow("negating \(x)") }
            return .long(r)

        case .eq(let l, let r):
            return .bool(try eval(l) == eval(r))
        case .neq(let l, let r):
            return .bool(try eval(l) != eval(r))
        case .compare(let op, let l, let r):
            return .bool(try compare(op, eval(l), eval(r)))
        case .arith(let op, let l, let r):
            let a = try evalLong(l), b = try evalLong(r)
            let (v, o): (Int64, Bool)
            switch op {
            case .add: (v, o) = a.addingReportingOverflow(b)
            case .sub: (v, o) = a.subtractingReportingOverflow(b)
            case .mul: (v, o) = a.multipliedReportingOverflow(by: b)
            }
            if o { throw .overflow("\(a) \(op == .add ? "+" : op == .sub ? "-" : "*") \(b)") }
            return .long(v)

        case .inHierarchy(let l, let r):
            let uid = try evalEntity(l)
            return .bool(try isIn(uid, eval(r)))
        case .contains(let l, let r):
            let s = try evalSet(l)
            return .bool(s.contains(try eval(r)))
        case .containsAll(let l, let r):
            let a = try evalSet(l), b = try evalSet(r)
            return .bool(a.isSuperset(of: b))
        case .containsAny(let l, let r):
            let a = try evalSet(l), b = try evalSet(r)
            return .bool(a.intersects(b))
        case .isEmpty(let e):
            return .bool(try evalSet(e).isEmpty)

        case .getTag(let l, let r):
            let uid = try evalEntity(l)
            let tag = try evalString(r)
            guard let entry = entities.entry(uid) else { throw .entityNotFound(uid) }
            guard let v = entry.entity.tags[tag] else { throw .tagNotFound(tag: tag, on: uid) }
            return v
        case .hasTag(let l, let r):
            let uid = try evalEntity(l)
            let tag = try evalString(r)
            guard let entry = entities.entry(uid) else { return .bool(false) }
            return .bool(entry.entity.tags.has(tag))

        case .getAttr(let e, let name):
            switch try eval(e) {
            case .record(let rec):
                guard let v = rec[name] else { throw .attributeNotFound(attribute: name.string, on: "record") }
                return v
            case .entity(let uid):
                guard let entry = entities.entry(uid) else { throw .entityNotFound(uid) }
                guard let v = entry.entity.attrs[name] else { throw .attributeNotFound(attribute: name.string, on: "entity \(uid)") }
                return v
            case let other:
                throw .typeMismatch(expected: "entity or record", got: other.typeName)
            }
        case .hasAttr(let e, let name):
            switch try eval(e) {
            case .record(let rec): return .bool(rec.has(name))
            case .entity(let uid): return .bool(entities.entry(uid)?.entity.attrs.has(name) ?? false)
            case let other: throw .typeMismatch(expected: "entity or record", got: other.typeName)
            }

        case .varAttr(let v, let name):
            switch v {
            case .context:
                guard let x = request.context[name] else { throw .attributeNotFound(attribute: name.string, on: "context") }
                return x
            case .principal, .resource:
                let uid = v == .principal ? request.principal : request.resource
                guard let entry = v == .principal ? principalEntry : resourceEntry else { throw .entityNotFound(uid) }
                guard let x = entry.entity.attrs[name] else { throw .attributeNotFound(attribute: name.string, on: "entity \(uid)") }
                return x
            case .action:
                guard let entry = entities.entry(request.action) else { throw .entityNotFound(request.action) }
                guard let x = entry.entity.attrs[name] else { throw .attributeNotFound(attribute: name.string, on: "entity \(request.action)") }
                return x
            }
        case .varHas(let v, let name):
            switch v {
            case .context: return .bool(request.context.has(name))
            case .principal: return .bool(principalEntry?.entity.attrs.has(name) ?? false)
            case .resource: return .bool(resourceEntry?.entity.attrs.has(name) ?? false)
            case .action: return .bool(entities.entry(request.action)?.entity.attrs.has(name) ?? false)
            }

        case .like(let e, let pattern):
            return .bool(pattern.matches(try evalString(e)))
        case .isType(let e, let type):
            return .bool(try evalEntity(e).type == type)
        case .isTypeIn(let e, let type, let r):
            let uid = try evalEntity(e)
            guard uid.type == type else { return .bool(false) }
            return .bool(try isIn(uid, eval(r)))

        case .set(let elements):
            var out: [Value] = []
            out.reserveCapacity(elements.count)
            for el in elements { out.append(try eval(el)) }
            return .set(CedarSet(out))
        case .record(let fields):
            var out: [(String, Value)] = []
            out.reserveCapacity(fields.count)
            for (k, v) in fields { out.append((k, try eval(v))) }
            return .record(CedarRecord(out))
        case .call(let fn, let args):
            return try callExtension(fn, args)
        case .fail(let e):
            throw e
        }
    }

    // MARK: - Typed helpers

    @inline(__always) func evalBool(_ n: IR) throws(EvalError) -> Bool {
        let v = try eval(n)
        guard case .bool(let b) = v else { throw .typeMismatch(expected: "bool", got: v.typeName) }
        return b
    }

    @inline(__always) func evalLong(_ n: IR) throws(EvalError) -> Int64 {
        let v = try eval(n)
        guard case .long(let x) = v else { throw .typeMismatch(expected: "long", got: v.typeName) }
        return x
    }

    @inline(__always) func evalString(_ n: IR) throws(EvalError) -> String {
        let v = try eval(n)
        guard case .string(let s) = v else { throw .typeMismatch(expected: "string", got: v.typeName) }
        return s
    }

    @inline(__always) func evalEntity(_ n: IR) throws(EvalError) -> EntityUID {
        let v = try eval(n)
        guard case .entity(let u) = v else { throw .typeMismatch(expected: "entity", got: v.typeName) }
        return u
    }

    @inline(__always) func evalSet(_ n: IR) throws(EvalError) -> CedarSet {
        let v = try eval(n)
        guard case .set(let s) = v else { throw .typeMismatch(expected: "set", got: v.typeName) }
        return s
    }

    /// `uid in target` where target is an entity or a set of entities (every element must be
    /// an entity, checked before any membership, as Cedar does).
    func isIn(_ uid: EntityUID, _ target: Value) throws(EvalError) -> Bool {
        switch target {
        case .entity(let t):
            return entities.isDescendant(uid, of: t)
        case .set(let s):
            // Two passes rather than an array of the targets: one allocation less per `in`.
            for el in s.elements {
                guard case .entity = el else { throw .typeMismatch(expected: "entity", got: el.typeName) }
            }
            let ancestors = entities.entry(uid)?.ancestors
            for el in s.elements {
                guard case .entity(let t) = el else { continue }
                if t == uid || ancestors?.contains(t) == true { return true }
            }
            return false
        default:
            throw .typeMismatch(expected: "entity or set", got: target.typeName)
        }
    }

    func compare(_ op: Comparison, _ a: Value, _ b: Value) throws(EvalError) -> Bool {
        func ord<T: Comparable>(_ x: T, _ y: T) -> Bool {
            switch op {
            case .lt: x < y
            case .le: x <= y
            case .gt: x > y
            case .ge: x >= y
            }
        }
        switch (a, b) {
        case (.long(let x), .long(let y)): return ord(x, y)
        case (.datetime(let x), .datetime(let y)): return ord(x, y)
        case (.duration(let x), .duration(let y)): return ord(x, y)
        case (.long, _), (.datetime, _), (.duration, _):
            throw .typeMismatch(expected: a.typeName, got: b.typeName)
        default:
            throw .typeMismatch(expected: "long, datetime or duration", got: a.typeName)
        }
    }
}
