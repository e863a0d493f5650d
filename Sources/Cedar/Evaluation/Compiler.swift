/// Turns parsed expressions into the evaluator's IR: resolves extension names to
/// `ExtensionFunction`, checks their arity, and folds sub-expressions whose value does not
/// depend on the request (literals, constant sets and records, valid extension constructors).
enum Compiler {
    static func compile(_ e: Expr) throws(ParseError) -> IR {
        let node: IR
        switch e.kind {
        case .bool(let b): return .value(.bool(b))
        case .long(let i): return .value(.long(i))
        case .string(let s): return .value(.string(s))
        case .entity(let u): return .value(.entity(u))
        case .variable(let v):
            switch v {
            case .principal: return .principal
            case .action: return .action
            case .resource: return .resource
            case .context: return .context
            }
        case .slot(let s): return .slot(s)
        case .ifThenElse(let c, let t, let f): node = .ite(try compile(c), try compile(t), try compile(f))
        case .and(let l, let r): node = .and(try compile(l), try compile(r))
        case .or(let l, let r): node = .or(try compile(l), try compile(r))
        case .not(let x): node = .not(try compile(x))
        case .negate(let x): node = .negate(try compile(x))
        case .binary(let op, let l, let r):
            let a = try compile(l), b = try compile(r)
            switch op {
            case .eq: node = .eq(a, b)
            case .neq: node = .neq(a, b)
            case .lt: node = .compare(.lt, a, b)
            case .le: node = .compare(.le, a, b)
            case .gt: node = .compare(.gt, a, b)
            case .ge: node = .compare(.ge, a, b)
            case .in: node = .inHierarchy(a, b)
            case .add: node = .arith(.add, a, b)
            case .sub: node = .arith(.sub, a, b)
            case .mul: node = .arith(.mul, a, b)
            case .contains: node = .contains(a, b)
            case .containsAll: node = .containsAll(a, b)
            case .containsAny: node = .containsAny(a, b)
            case .getTag: node = .getTag(a, b)
            case .hasTag: node = .hasTag(a, b)
            }
        case .isEmpty(let x): node = .isEmpty(try compile(x))
        case .getAttr(let x, let name):
            if case .variable(let v) = x.kind, v != .action { return .varAttr(v, FieldKey(name)) }
            node = .getAttr(try compile(x), FieldKey(name))
        case .hasAttr(let x, let name):
            if case .variable(let v) = x.kind, v != .action { return .varHas(v, FieldKey(name)) }
            node = .hasAttr(try compile(x), FieldKey(name))
        case .like(let x, let p): node = .like(try compile(x), Pattern(p))
        case .isType(let x, let t): node = .isType(try compile(x), t)
        case .isTypeIn(let x, let t, let r): node = .isTypeIn(try compile(x), t, try compile(r))
        case .set(let xs):
            var nodes: [IR] = []
            for x in xs { nodes.append(try compile(x)) }
            node = .set(nodes)
        case .record(let entries):
            var fields: [(String, IR)] = []
            for en in entries { fields.append((en.key, try compile(en.value))) }
            node = .record(fields)
        case .call(let name, let args):
            guard let fn = ExtensionFunction(rawValue: name) else {
                throw ParseError("unknown extension function or method `\(name)`", at: e.location)
            }
            guard args.count == fn.arity else {
                // Cedar accepts the policy and fails when the call is evaluated.
                return .fail(.extensionFailure("wrong number of arguments to `\(name)`: expected \(fn.arity), got \(args.count)"))
            }
            var nodes: [IR] = []
            for x in args { nodes.append(try compile(x)) }
            node = .call(fn, nodes)
        }
        return fold(node)
    }

    /// Evaluates a node now when it reads nothing from the request. A fold that would raise an
    /// error is left in place so the error surfaces at evaluation, as Cedar reports it.
    private static func fold(_ node: IR) -> IR {
        guard isConstant(node) else { return node }
        let ev = Evaluator(request: placeholderRequest, entities: .empty)
        if let v = try? ev.eval(node) { return .value(v) }
        return node
    }

    /// Constant means built only from literal values through operations that do not consult
    /// entities (so `in`, attribute and tag access on entity literals are never folded).
    private static func isConstant(_ node: IR) -> Bool {
        switch node {
        case .value: return true
        case .principal, .action, .resource, .context, .slot, .fail, .varAttr, .varHas: return false
        case .ite(let a, let b, let c): return isConstant(a) && isConstant(b) && isConstant(c)
        case .and(let a, let b), .or(let a, let b), .eq(let a, let b), .neq(let a, let b),
             .compare(_, let a, let b), .arith(_, let a, let b), .contains(let a, let b),
             .containsAll(let a, let b), .containsAny(let a, let b):
            return isConstant(a) && isConstant(b)
        case .not(let a), .negate(let a), .isEmpty(let a), .like(let a, _), .isType(let a, _):
            return isConstant(a)
        case .getAttr(let a, _), .hasAttr(let a, _):
            if case .value(.record) = a { return true }
            return false
        case .inHierarchy, .isTypeIn, .getTag, .hasTag: return false
        case .set(let xs): return xs.allSatisfy(isConstant)
        case .record(let fs): return fs.allSatisfy { isConstant($0.1) }
        case .call(_, let xs): return xs.allSatisfy(isConstant)
        }
    }

    private static let placeholderRequest = Request(
        principal: EntityUID("", ""), action: EntityUID("", ""), resource: EntityUID("", ""))
}
