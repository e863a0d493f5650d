/// The entities a decision may consult, with every entity's ancestors computed once at load so
/// that `in` is a single set lookup during evaluation.
///
/// A request's own entities are an overlay on a loaded store (`adding`): the loaded store's
/// ancestor sets are shared, never recomputed, and the overlay computes only the ancestor sets
/// of the entities the request brings. Both are bounded (`HierarchyLimits`, `RequestLimits`)
/// because a full ancestor set per entity costs quadratic memory on a long parent chain.
public struct EntityStore: Sendable {
    /// A class so that handing an entry around during evaluation costs one retain, not one
    /// per field.
    public final class Entry: Sendable {
        public let entity: Entity
        /// Transitive parents, excluding the entity itself.
        public let ancestors: Set<EntityUID>

        init(entity: Entity, ancestors: Set<EntityUID>) { self.entity = entity; self.ancestors = ancestors }
    }

    /// Bounds on a loaded hierarchy (entities.json). Depth is counted in entities: an entity
    /// without parents has depth 1. Ancestor links are the sizes of all ancestor sets added
    /// up, which is what the store holds in memory (a chain of n entities has n(n-1)/2).
    public struct HierarchyLimits: Sendable, Hashable {
        public var maxDepth: Int
        public var maxAncestorLinks: Int

        public init(maxDepth: Int = 1_000, maxAncestorLinks: Int = 10_000_000) {
            self.maxDepth = maxDepth; self.maxAncestorLinks = maxAncestorLinks
        }

        public static let `default` = HierarchyLimits()
    }

    /// Bounds on the entities one request adds. Depth counts request entities only: a request
    /// entity whose parents are all loaded entities has depth 1. Ancestor links count every
    /// entry of the request entities' ancestor sets, loaded ancestors included.
    public struct RequestLimits: Sendable, Hashable {
        public var maxEntities: Int
        public var maxDepth: Int
        public var maxAncestorLinks: Int

        public init(maxEntities: Int = 1_000, maxDepth: Int = 32, maxAncestorLinks: Int = 100_000) {
            self.maxEntities = maxEntities; self.maxDepth = maxDepth; self.maxAncestorLinks = maxAncestorLinks
        }

        public static let `default` = RequestLimits()
    }

    /// The loaded entities, or in a store with request entities (see `adding`) those, looked
    /// up first: a loaded store pays nothing for the overlay a request store may have.
    private var entries: UIDMap<Entry>
    /// Under a request's entities, the loaded ones; nil for a loaded store.
    private var loaded: Loaded?
    /// Uids that some loaded entity names as a parent without the store defining them, with the
    /// first entity that names each; nil when there are none (the usual case). A request may
    /// not define one: that would change loaded entities' ancestors.
    private var namedOnly: UIDMap<EntityUID>?

    /// A class, so a request store refers to the loaded entries without copying their tables.
    private final class Loaded: Sendable {
        let entries: UIDMap<Entry>
        init(_ entries: UIDMap<Entry>) { self.entries = entries }
    }

    private var loadedEntries: UIDMap<Entry> { loaded?.entries ?? entries }

    public static let empty = EntityStore(uncheckedEntries: UIDMap(), namedOnly: nil)

    private init(uncheckedEntries: UIDMap<Entry>, namedOnly: UIDMap<EntityUID>?) {
        entries = uncheckedEntries
        self.namedOnly = namedOnly
    }

    /// Builds the store; duplicate uids, parent cycles and hierarchies beyond `limits` are
    /// refused. Time and memory are linear in entities plus parent references, plus the
    /// ancestor links kept (at most `limits.maxAncestorLinks`).
    public init(_ entities: [Entity], limits: HierarchyLimits = .default) throws(EntityError) {
        var byUID = UIDMap<Entity>(capacity: entities.count)
        for e in entities {
            if byUID.updateValue(e, forKey: e.uid) != nil { throw .duplicate(e.uid) }
        }
        var named: UIDMap<EntityUID>? = nil
        for e in entities {
            for p in e.parents where byUID[p] == nil {
                if named == nil { named = UIDMap() }
                if named![p] == nil { named!.updateValue(e.uid, forKey: p) }
            }
        }
        let order = try Self.topologicalOrder(entities.map(\.uid), byUID, maxDepth: limits.maxDepth, request: false)
        var result = UIDMap<Entry>(capacity: entities.count)
        var links = 0
        for uid in order {
            let entity = byUID[uid]!
            let anc = try Self.ancestors(of: entity, links: &links, limit: limits.maxAncestorLinks, request: false) { result[$0] }
            result.updateValue(Entry(entity: entity, ancestors: anc), forKey: uid)
        }
        entries = result
        namedOnly = named
    }

    /// Loaded entities plus the request's own.
    public var count: Int { entries.count + (loaded?.entries.count ?? 0) }

    @inline(__always) public func entry(_ uid: EntityUID) -> Entry? {
        if let e = entries[uid] { return e }
        guard let loaded else { return nil }
        return loaded.entries[uid]
    }

    /// The loaded entities (not a request's own).
    public var all: [Entity] { loadedEntries.entries.map(\.value.entity) }

    /// Cedar's `a in b`: reflexive and transitive.
    @inline(__always) public func isDescendant(_ a: EntityUID, of b: EntityUID) -> Bool {
        if a == b { return true }
        guard let e = entry(a) else { return false }
        return e.ancestors.contains(b)
    }

    /// This store plus `extra` entities (a request's own), in time and memory proportional to
    /// what they add: the loaded entities' ancestor sets are shared, and only the new
    /// entities' sets are built (each: its parents plus their ancestors, from `extra` or the
    /// loaded store). Refused: a uid defined twice or already loaded (as Cedar refuses one
    /// entity list with duplicates), a uid a loaded entity names as a parent, a cycle, and
    /// anything beyond `limits`. Adding to a store that already has request entities replaces
    /// them.
    public func adding(_ extra: [Entity], limits: RequestLimits = .default) throws(EntityError) -> EntityStore {
        if extra.isEmpty { return self }
        guard extra.count <= limits.maxEntities else { throw .tooManyRequestEntities(count: extra.count, limit: limits.maxEntities) }
        let base = loadedEntries
        var byUID = UIDMap<Entity>(capacity: extra.count)
        for e in extra {
            if base[e.uid] != nil || byUID.updateValue(e, forKey: e.uid) != nil { throw .duplicate(e.uid) }
            if let namedOnly, let child = namedOnly[e.uid] { throw .namedByLoadedEntity(e.uid, child: child) }
        }
        let order = try Self.topologicalOrder(extra.map(\.uid), byUID, maxDepth: limits.maxDepth, request: true)
        var added = UIDMap<Entry>(capacity: extra.count)
        var links = 0
        for uid in order {
            let entity = byUID[uid]!
            let anc = try Self.ancestors(of: entity, links: &links, limit: limits.maxAncestorLinks, request: true) {
                added[$0] ?? base[$0]
            }
            added.updateValue(Entry(entity: entity, ancestors: anc), forKey: uid)
        }
        var out = self
        out.loaded = loaded ?? Loaded(entries)
        out.entries = added
        return out
    }

    /// Every entity of `roots` after its parents among `byUID` (parents outside it are
    /// settled already), with cycles and depths beyond `maxDepth` refused. Iterative, so a
    /// long parent chain cannot exhaust the stack; linear in entities plus parent references.
    private static func topologicalOrder(_ roots: [EntityUID], _ byUID: UIDMap<Entity>, maxDepth: Int,
                                         request: Bool) throws(EntityError) -> [EntityUID] {
        // 0: unvisited; -1: on the current path; n > 0: done, at depth n.
        var depth = UIDMap<Int>(capacity: roots.count)
        var order: [EntityUID] = []
        order.reserveCapacity(roots.count)
        // Stack of (entity, next parent index to visit).
        var stack: [(EntityUID, Int)] = []
        for root in roots where depth[root] == nil {
            stack.append((root, 0))
            depth.updateValue(-1, forKey: root)
            while let (uid, i) = stack.last {
                let entity = byUID[uid]!
                if i < entity.parents.count {
                    stack[stack.count - 1].1 = i + 1
                    let p = entity.parents[i]
                    guard byUID[p] != nil else { continue }  // loaded, or known only by name
                    switch depth[p] {
                    case .some(-1):
                        let start = stack.firstIndex { $0.0 == p } ?? 0
                        throw .cycle(stack[start...].map(\.0) + [p])
                    case .some:
                        continue
                    case nil:
                        depth.updateValue(-1, forKey: p)
                        stack.append((p, 0))
                    }
                } else {
                    var d = 1
                    for p in entity.parents { if let pd = depth[p], pd + 1 > d { d = pd + 1 } }
                    if d > maxDepth { throw .tooDeep(uid, limit: maxDepth, request: request) }
                    depth.updateValue(d, forKey: uid)
                    order.append(uid)
                    stack.removeLast()
                }
            }
        }
        return order
    }

    /// The parents of `entity` and their ancestors (`known` looks a settled entity up). The
    /// links it would add are counted against `limit` before any set is built, so refusing
    /// costs no more than the limit allows.
    @inline(__always)
    private static func ancestors(of entity: Entity, links: inout Int, limit: Int, request: Bool,
                                  _ known: (EntityUID) -> Entry?) throws(EntityError) -> Set<EntityUID> {
        var bound = 0
        for p in entity.parents { bound += 1 + (known(p)?.ancestors.count ?? 0) }
        if bound > limit - links { throw .tooManyAncestorLinks(at: entity.uid, limit: limit, request: request) }
        // Overlapping parents make `bound` an over-estimate; reserve it only when exact.
        var anc = Set<EntityUID>(minimumCapacity: entity.parents.count == 1 ? bound : entity.parents.count)
        for p in entity.parents {
            anc.insert(p)
            if let pe = known(p) { anc.formUnion(pe.ancestors) }
        }
        links += anc.count
        return anc
    }
}
