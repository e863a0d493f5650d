/// The entities a decision may consult, with every entity's ancestors computed once at load so
/// that `in` is a single set lookup during evaluation.
public struct EntityStore: Sendable {
    /// A class so that handing an entry around during evaluation costs one retain, not one
    /// per field.
    public final class Entry: Sendable {
        public let entity: Entity
        /// Transitive parents, excluding the entity itself.
        public let ancestors: Set<EntityUID>

        init(entity: Entity, ancestors: Set<EntityUID>) { self.entity = entity; self.ancestors = ancestors }
    }

    private var entries: UIDMap<Entry>

    public static let empty = EntityStore(uncheckedEntries: UIDMap())

    private init(uncheckedEntries: UIDMap<Entry>) { entries = uncheckedEntries }

    /// Builds the store; duplicate uids and parent cycles are refused.
    public init(_ entities: [Entity]) throws(EntityError) {
        var byUID: [EntityUID: Entity] = [:]
        byUID.reserveCapacity(entities.count)
        for e in entities {
            if byUID.updateValue(e, forKey: e.uid) != nil { throw .duplicate(e.uid) }
        }
        entries = try Self.closure(byUID, order: entities.map(\.uid))
    }

    public var count: Int { entries.count }

    @inline(__always) public func entry(_ uid: EntityUID) -> Entry? { entries[uid] }

    public var all: [Entity] { entries.entries.map(\.value.entity) }

    /// Cedar's `a in b`: reflexive and transitive.
    @inline(__always) public func isDescendant(_ a: EntityUID, of b: EntityUID) -> Bool {
        if a == b { return true }
        guard let e = entries[a] else { return false }
        return e.ancestors.contains(b)
    }

    /// This store plus `extra` entities (a request's own entities). Duplicates with the base
    /// are refused, as Cedar refuses them in one entity list.
    public func adding(_ extra: [Entity]) throws(EntityError) -> EntityStore {
        if extra.isEmpty { return self }
        var combined: [EntityUID: Entity] = [:]
        combined.reserveCapacity(entries.count + extra.count)
        for (k, v) in entries.entries { combined[k] = v.entity }
        for e in extra {
            if combined.updateValue(e, forKey: e.uid) != nil { throw .duplicate(e.uid) }
        }
        return EntityStore(uncheckedEntries: try Self.closure(combined, order: extra.map(\.uid) + entries.entries.map(\.key)))
    }

    /// Iterative depth-first transitive closure with cycle detection (no recursion, so a long
    /// parent chain cannot exhaust the stack).
    private static func closure(_ byUID: [EntityUID: Entity], order: [EntityUID]) throws(EntityError) -> UIDMap<Entry> {
        enum Mark { case visiting, done }
        var marks: [EntityUID: Mark] = [:]
        marks.reserveCapacity(byUID.count)
        var result = UIDMap<Entry>(capacity: byUID.count)

        for root in order where marks[root] == nil {
            // Stack of (entity, next parent index to visit).
            var stack: [(EntityUID, Int)] = [(root, 0)]
            marks[root] = .visiting
            while let (uid, i) = stack.last {
                let entity = byUID[uid]!
                if i < entity.parents.count {
                    stack[stack.count - 1].1 = i + 1
                    let p = entity.parents[i]
                    guard byUID[p] != nil else { continue }  // a parent we know nothing more about
                    switch marks[p] {
                    case .visiting?:
                        let start = stack.firstIndex { $0.0 == p } ?? 0
                        throw .cycle(stack[start...].map(\.0) + [p])
                    case .done?:
                        continue
                    case nil:
                        marks[p] = .visiting
                        stack.append((p, 0))
                    }
                } else {
                    var anc = Set<EntityUID>()
                    for p in entity.parents {
                        anc.insert(p)
                        if let pe = result[p] { anc.formUnion(pe.ancestors) }
                    }
                    result.updateValue(Entry(entity: entity, ancestors: anc), forKey: uid)
                    marks[uid] = .done
                    stack.removeLast()
                }
            }
        }
        return result
    }
}
