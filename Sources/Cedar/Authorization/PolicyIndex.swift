/// The request's principal, action and resource with their ancestor sets, looked up once per
/// request so scope checks are set look-ups rather than entity-store look-ups.
struct RequestScope {
    let principal: EntityUID
    let action: EntityUID
    let resource: EntityUID
    let principalEntry: EntityStore.Entry?
    let actionEntry: EntityStore.Entry?
    let resourceEntry: EntityStore.Entry?

    /// Stored, not computed from the entries: scope checks read them once per candidate
    /// policy, and each read through an entry retained and released the set.
    let principalAncestors: Set<EntityUID>?
    let actionAncestors: Set<EntityUID>?
    let resourceAncestors: Set<EntityUID>?

    init(_ r: Request, _ entities: EntityStore) {
        principal = r.principal; action = r.action; resource = r.resource
        principalEntry = entities.entry(r.principal)
        actionEntry = entities.entry(r.action)
        resourceEntry = entities.entry(r.resource)
        principalAncestors = principalEntry?.ancestors
        actionAncestors = actionEntry?.ancestors
        resourceAncestors = resourceEntry?.ancestors
    }
}

/// Policies of one primary bucket, split again by their action constraint, so a request only
/// sees the policies whose principal (or resource) and action can both match.
/// A class: index look-ups hand it out once per matching bucket, and a struct copy would retain
/// each of its collections.
final class ActionBuckets: @unchecked Sendable {  // mutated only while the index is built
    var any: [Int32] = []
    /// Keyed by the hash each entity reference carries (`UIDMap`): a `Dictionary` would run
    /// it through SipHash again on every request.
    var eq = UIDMap<[Int32]>()
    /// `action in A` and `action in [A, B]` (filed under each member).
    var within = UIDMap<[Int32]>()
    /// Some policy here is filed under several members; a request may reach it twice.
    var mayRepeat = false
    /// Below this many policies the action look-ups cost more than letting the scope check
    /// reject the few whose action does not match, so small buckets are one flat list.
    static let splitThreshold = 8
    private var all: [(Int32, ActionConstraint)] = []
    private var split = false

    func add(_ k: Int32, _ c: ActionConstraint) {
        all.append((k, c))
        if split {
            file(k, c)
        } else if all.count > Self.splitThreshold {
            split = true
            any = []
            for (k2, c2) in all { file(k2, c2) }
        } else {
            any.append(k)
        }
    }

    private func file(_ k: Int32, _ c: ActionConstraint) {
        func put(_ m: inout UIDMap<[Int32]>, _ a: EntityUID) { m.updateValue((m[a] ?? []) + [k], forKey: a) }
        switch c {
        case .any: any.append(k)
        case .eq(let a): put(&eq, a)
        case .in(let a): put(&within, a)
        case .inSet(let members):
            let distinct = Set(members)
            if distinct.count > 1 { mayRepeat = true }
            for a in distinct { put(&within, a) }
        }
    }

    func collect(_ s: RequestScope, into out: inout [Int32]) {
        let start = out.count
        out.append(contentsOf: any)
        if let b = eq[s.action] { out.append(contentsOf: b) }
        if !within.isEmpty {
            if let b = within[s.action] { out.append(contentsOf: b) }
            if let anc = s.actionAncestors {
                for a in anc { if let b = within[a] { out.append(contentsOf: b) } }
            }
        }
        if mayRepeat && out.count - start > 1 {
            out[start...].sort()
            var w = start + 1
            for i in (start + 1)..<out.count where out[i] != out[w - 1] { out[w] = out[i]; w += 1 }
            out.removeLast(out.count - w)
        }
    }
}

/// Where each policy is filed: under the pair of entities its principal and resource scopes
/// name when it names both, else under the one it names (`==` apart from `in`, since `==`
/// must not be reached through an ancestor), else under the type of `principal is T` /
/// `resource is T`, else nowhere in particular; then by action. Every policy is in exactly
/// one primary bucket, so a request never sees it twice. A request looks up its principal and
/// resource, their ancestors, and the pairs of those.
struct PolicyIndex: Sendable {
    /// Pairs are keyed (principal anchor, resource anchor).
    private var pairs = CachedHashMap<UIDPair, ActionBuckets>()
    /// Whether some pair is anchored by `in` on that side (so its ancestors are looked up),
    /// settled once rather than per request.
    private var anyPairPrincipalIn = false, anyPairResourceIn = false
    /// The principal anchors of all pairs: a principal-side entity that anchors none needs no
    /// look-up per resource-side entity.
    private var pairPrincipals = UIDMap<Bool>()
    private var principalEq = UIDMap<ActionBuckets>()
    private var principalIn = UIDMap<ActionBuckets>()
    private var resourceEq = UIDMap<ActionBuckets>()
    private var resourceIn = UIDMap<ActionBuckets>()
    private var principalType: [EntityType: ActionBuckets] = [:]
    private var resourceType: [EntityType: ActionBuckets] = [:]
    /// The same, as lists when they are short (as they usually are): comparing a few type
    /// names costs less than hashing one.
    private var principalTypeFew: [(EntityType, ActionBuckets)]?
    private var resourceTypeFew: [(EntityType, ActionBuckets)]?
    private static let fewTypes = 8
    private let rest = ActionBuckets()

    init(_ policies: [Policy]) {
        func bucket<K: Hashable>(_ d: inout [K: ActionBuckets], _ k: K) -> ActionBuckets {
            if let b = d[k] { return b }
            let b = ActionBuckets()
            d[k] = b
            return b
        }
        func bucket(_ d: inout UIDMap<ActionBuckets>, _ k: EntityUID) -> ActionBuckets {
            if let b = d[k] { return b }
            let b = ActionBuckets()
            d.updateValue(b, forKey: k)
            return b
        }
        func pairBucket(_ d: inout CachedHashMap<UIDPair, ActionBuckets>, _ k: UIDPair) -> ActionBuckets {
            if let b = d[k] { return b }
            let b = ActionBuckets()
            d.updateValue(b, forKey: k)
            return b
        }
        for (i, p) in policies.enumerated() where !p.isTemplate {
            let k = Int32(i)
            if let (pk, pe) = Self.anchor(p.principal), let (rk, re) = Self.anchor(p.resource) {
                anyPairPrincipalIn = anyPairPrincipalIn || pk
                anyPairResourceIn = anyPairResourceIn || rk
                pairPrincipals.updateValue(true, forKey: pe)
                pairBucket(&pairs, UIDPair(pe, re)).add(k, p.action)
                continue
            }
            switch (p.principal, p.resource) {
            case (.eq(.entity(let e)), _): bucket(&principalEq, e).add(k, p.action)
            case (.in(.entity(let e)), _), (.isIn(_, .entity(let e)), _): bucket(&principalIn, e).add(k, p.action)
            case (_, .eq(.entity(let e))): bucket(&resourceEq, e).add(k, p.action)
            case (_, .in(.entity(let e))), (_, .isIn(_, .entity(let e))): bucket(&resourceIn, e).add(k, p.action)
            case (.is(let t), _): bucket(&principalType, t).add(k, p.action)
            case (_, .is(let t)): bucket(&resourceType, t).add(k, p.action)
            default: rest.add(k, p.action)
            }
        }
        if principalType.count <= Self.fewTypes { principalTypeFew = principalType.map { ($0.key, $0.value) } }
        if resourceType.count <= Self.fewTypes { resourceTypeFew = resourceType.map { ($0.key, $0.value) } }
    }

    private static func anchor(_ c: ScopeConstraint) -> (Bool, EntityUID)? {
        switch c {
        case .eq(.entity(let e)): (false, e)
        case .in(.entity(let e)), .isIn(_, .entity(let e)): (true, e)
        default: nil
        }
    }

    func candidates(_ s: RequestScope, into out: inout [Int32]) {
        rest.collect(s, into: &out)
        if !pairs.isEmpty {
            // Pairs whose sides may be reached: the entity itself always, its ancestors only
            // for `in`. A policy filed under (P, R) with `==` on P is only found via P itself,
            // and a policy reached via an ancestor is re-checked by the scope test anyway.
            let pAnc = anyPairPrincipalIn ? s.principalAncestors : nil, rAnc = anyPairResourceIn ? s.resourceAncestors : nil
            func resources(_ p: EntityUID, _ out: inout [Int32]) {
                guard pairPrincipals[p] != nil else { return }
                pairs[UIDPair(p, s.resource)]?.collect(s, into: &out)
                if let rAnc { for r in rAnc { pairs[UIDPair(p, r)]?.collect(s, into: &out) } }
            }
            resources(s.principal, &out)
            if let pAnc { for p in pAnc { resources(p, &out) } }
        }
        if !principalEq.isEmpty { principalEq[s.principal]?.collect(s, into: &out) }
        if !principalIn.isEmpty {
            principalIn[s.principal]?.collect(s, into: &out)
            if let anc = s.principalAncestors { for a in anc { principalIn[a]?.collect(s, into: &out) } }
        }
        if !resourceEq.isEmpty { resourceEq[s.resource]?.collect(s, into: &out) }
        if !resourceIn.isEmpty {
            resourceIn[s.resource]?.collect(s, into: &out)
            if let anc = s.resourceAncestors { for a in anc { resourceIn[a]?.collect(s, into: &out) } }
        }
        if let few = principalTypeFew {
            for (t, b) in few where t == s.principal.type { b.collect(s, into: &out) }
        } else {
            principalType[s.principal.type]?.collect(s, into: &out)
        }
        if let few = resourceTypeFew {
            for (t, b) in few where t == s.resource.type { b.collect(s, into: &out) }
        } else {
            resourceType[s.resource.type]?.collect(s, into: &out)
        }
    }
}
