/// A set of policies with an index by scope (see `PolicyIndex`), so a request only evaluates
/// the policies whose scope can possibly match it.
public struct PolicySet: Sendable {
    public let policies: [Policy]
    let index: PolicyIndex
    /// What evaluation reads of each policy, one reference per policy: reading a `Policy`
    /// struct from the array retains every one of its fields.
    let code: ContiguousArray<PolicyCode>
    /// How answers name each policy (`@id`, else its position id), so that writing a reason
    /// reads one string rather than copying a whole `Policy` out of `policies`.
    let answerNames: ContiguousArray<String>

    /// Compiles parsed policies; ids are `policy<N>` numbering from `firstIndex`.
    public init(_ asts: [PolicyAST], firstIndex: Int = 0) throws(ParseError) {
        var ps: [Policy] = []
        ps.reserveCapacity(asts.count)
        for (i, a) in asts.enumerated() { ps.append(try Policy(id: "policy\(firstIndex + i)", ast: a)) }
        self.init(compiled: ps)
    }

    public init(compiled: [Policy]) {
        policies = compiled
        index = PolicyIndex(compiled)
        code = ContiguousArray(compiled.map(PolicyCode.init))
        answerNames = ContiguousArray(compiled.map { $0.annotatedID ?? $0.id })
    }

    /// Parses and compiles Cedar text; ids continue from `firstIndex`.
    public static func parse(_ text: String, file: String, firstIndex: Int = 0) throws(ParseError) -> PolicySet {
        try PolicySet(CedarParser.parsePolicies(text, file: file), firstIndex: firstIndex)
    }
}

/// The parts of a policy that authorization evaluates.
final class PolicyCode: Sendable {
    let isForbid: Bool
    let principal: ScopeConstraint
    let action: ActionConstraint
    let resource: ScopeConstraint
    let condition: IR?

    init(_ p: Policy) {
        isForbid = p.effect == .forbid
        principal = p.principal; action = p.action; resource = p.resource
        condition = p.condition
    }

    @inline(__always) func scopeMatches(_ s: RequestScope) -> Bool {
        Policy.matches(principal, s.principal, s.principalAncestors)
            && Policy.matches(action, s.action, s.actionAncestors)
            && Policy.matches(resource, s.resource, s.resourceAncestors)
    }
}
