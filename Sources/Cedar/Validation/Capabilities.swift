/// What an expression being true proves may be read safely: `e has a` proves `e.a`,
/// `e.hasTag(t)` proves `e.getTag(t)`. Expressions are compared by shape, not by where they
/// were written, so `principal has a && principal.a` pairs up.
struct Capability: Hashable {
    enum Key: Hashable {
        case attribute(ScalarString)
        case tag(Expr)
    }
    let on: Expr
    let key: Key
}

struct Capabilities {
    private(set) var items: Set<Capability>

    static let none = Capabilities(items: [])

    static func single(_ c: Capability) -> Capabilities { Capabilities(items: [c]) }

    func contains(_ c: Capability) -> Bool { items.contains(c) }

    func union(_ o: Capabilities) -> Capabilities {
        if o.items.isEmpty { return self }
        if items.isEmpty { return o }
        return Capabilities(items: items.union(o.items))
    }

    func intersection(_ o: Capabilities) -> Capabilities {
        if items.isEmpty || o.items.isEmpty { return .none }
        return Capabilities(items: items.intersection(o.items))
    }
}
