public enum Decision: String, Sendable, Hashable {
    case allow, deny
}

/// The answer to one request.
public struct Response: Sendable {
    public var decision: Decision
    /// Indices into `PolicySet.policies` of the policies that determined the decision, ascending.
    public var reasons: [Int]
    /// Policies whose evaluation failed (they were skipped), ascending, with the error.
    public var errors: [(policy: Int, error: EvalError)]
}

extension PolicySet {
    /// Cedar's authorization: a satisfied forbid denies; otherwise a satisfied permit allows;
    /// otherwise deny. Policies that raise an error are skipped and listed in `errors`.
    public func authorize(_ request: Request, entities: EntityStore) -> Response {
        var cands: [Int32] = []
        cands.reserveCapacity(16)
        let scope = RequestScope(request, entities)
        index.candidates(scope, into: &cands)
        let ev = Evaluator(request: request, entities: entities, scope: scope)
        var permits: [Int] = []
        var forbids: [Int] = []
        var errors: [(policy: Int, error: EvalError)] = []
        for k in cands {
            let i = Int(k)
            let p = code[i]
            guard p.scopeMatches(scope) else { continue }
            if let c = p.condition {
                do {
                    guard try ev.evalBool(c) else { continue }
                } catch {
                    errors.append((policy: i, error: error))
                    continue
                }
            }
            if p.isForbid { forbids.append(i) } else { permits.append(i) }
        }
        errors.sort { $0.policy < $1.policy }
        if !forbids.isEmpty { return Response(decision: .deny, reasons: forbids.sorted(), errors: errors) }
        if !permits.isEmpty { return Response(decision: .allow, reasons: permits.sorted(), errors: errors) }
        return Response(decision: .deny, reasons: [], errors: errors)
    }
}
