/// The compiled form of a Cedar expression: names resolved, extension functions bound to an
/// enum, constant sub-expressions folded to values. Evaluation walks this, never the AST.
indirect enum IR: Sendable {
    case value(Value)
    case principal, action, resource, context
    case slot(SlotID)
    case ite(IR, IR, IR)
    case and(IR, IR)
    case or(IR, IR)
    case not(IR)
    case negate(IR)
    case eq(IR, IR)
    case neq(IR, IR)
    case compare(Comparison, IR, IR)
    case arith(Arith, IR, IR)
    case inHierarchy(IR, IR)
    case contains(IR, IR)
    case containsAll(IR, IR)
    case containsAny(IR, IR)
    case isEmpty(IR)
    case getTag(IR, IR)
    case hasTag(IR, IR)
    case getAttr(IR, FieldKey)
    case hasAttr(IR, FieldKey)
    /// `principal.a`, `resource.a`, `context.a` (and `has`): the commonest accesses, read
    /// straight from the entries prefetched for the request without building a Value first.
    case varAttr(Variable, FieldKey)
    case varHas(Variable, FieldKey)
    case like(IR, Pattern)
    case isType(IR, EntityType)
    case isTypeIn(IR, EntityType, IR)
    case set([IR])
    case record([(String, IR)])
    case call(ExtensionFunction, [IR])
    /// An error Cedar raises only when evaluation reaches it (e.g. an extension call with the
    /// wrong number of arguments).
    case fail(EvalError)
}

enum Comparison: Sendable { case lt, le, gt, ge }
enum Arith: Sendable { case add, sub, mul }

/// Every extension function and method Cedar 4 defines, with its arity (receiver included).
enum ExtensionFunction: String, Sendable, CaseIterable {
    case decimal, ip, datetime, duration
    case lessThan, lessThanOrEqual, greaterThan, greaterThanOrEqual
    case isIpv4, isIpv6, isLoopback, isMulticast, isInRange
    case offset, durationSince, toDate, toTime
    case toMilliseconds, toSeconds, toMinutes, toHours, toDays

    var arity: Int {
        switch self {
        case .decimal, .ip, .datetime, .duration: 1
        case .isIpv4, .isIpv6, .isLoopback, .isMulticast: 1
        case .toDate, .toTime, .toMilliseconds, .toSeconds, .toMinutes, .toHours, .toDays: 1
        case .lessThan, .lessThanOrEqual, .greaterThan, .greaterThanOrEqual, .isInRange,
             .offset, .durationSince: 2
        }
    }

    /// Constructors called as functions: `ip("...")`. The rest are methods.
    var isConstructor: Bool {
        switch self {
        case .decimal, .ip, .datetime, .duration: true
        default: false
        }
    }
}

/// A `like` pattern, compiled to scalar runs split at wildcards.
struct Pattern: Sendable {
    /// Scalars of the pattern; nil stands for a wildcard.
    private let pat: [Unicode.Scalar?]

    init(_ elements: [PatternElement]) {
        var pat: [Unicode.Scalar?] = []
        for e in elements {
            switch e {
            case .wildcard: pat.append(nil)
            case .literal(let run): pat.append(contentsOf: run.map(Optional.some))
            }
        }
        self.pat = pat
    }

    /// Glob match over Unicode scalars with `*` matching any run, including the empty one.
    /// Greedy with a single backtrack point: linear in practice, O(n*m) worst case.
    func matches(_ s: String) -> Bool {
        let text = Array(s.unicodeScalars)
        var t = 0, p = 0
        var star = -1, mark = 0
        while t < text.count {
            if p < pat.count, let c = pat[p], c == text[t] {
                t += 1; p += 1
            } else if p < pat.count, pat[p] == nil {
                star = p; mark = t; p += 1
            } else if star >= 0 {
                p = star + 1; mark += 1; t = mark
            } else {
                return false
            }
        }
        while p < pat.count, pat[p] == nil { p += 1 }
        return p == pat.count
    }
}
