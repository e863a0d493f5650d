import Cedar
import CustosJSON
import ReadMostly
import Synchronization

/// A change to the node inventory.
public enum NodeInventoryChange: Sendable {
    /// Adds these nodes, or replaces the stored node of the same name.
    case upsert([PlacementNode])
    /// Makes the inventory exactly these nodes.
    case replace([PlacementNode])
    /// Drops the nodes of these names; names the inventory does not hold are ignored.
    case remove([String])
}

/// An inventory's nodes prepared for one configuration: `nodes[index[name]]`. Positions let a
/// placement mark the nodes a call has named in a flat array rather than a set.
public struct PreparedInventory: Sendable {
    public let index: NameIndex
    public let nodes: [PreparedNode]

    public subscript(name: String) -> PreparedNode? { index.position(of: name).map { nodes[$0] } }
}

/// What a change did.
public struct NodeInventoryUpdate: Sendable, Hashable {
    /// Nodes in the inventory after the change.
    public var count: Int
    /// The revision after the change (see `NodeInventory.Snapshot.revision`).
    public var revision: String
    /// Nodes added, modified or removed: 0 when the change restated what was held.
    public var changed: Int
    /// Nodes removed (by `remove`, or by `replace` for nodes missing from the new list).
    public var removed: Int

    public init(count: Int, revision: String, changed: Int, removed: Int) {
        self.count = count; self.revision = revision; self.changed = changed; self.removed = removed
    }
}

/// The candidate nodes a scheduler names in `place` by name only, kept in memory.
///
/// A cache, not durable state: the scheduler's side fills it from what it already knows about
/// its nodes (a Kubernetes informer cache, `scontrol show node`) and fills it again whenever the
/// daemon restarts or answers `placement.unknown_node`. Sending names instead of node objects is
/// what makes a placement over a large cluster cheap (Kubernetes' `nodeCacheCapable` extenders).
///
/// Readers take the current snapshot (one read lock, one reference); changes are serialised, build a
/// new snapshot aside, let the caller confirm it (the daemon records it in the audit log there)
/// and only then install it, so a change is applied whole or not at all.
public final class NodeInventory: Sendable {
    public static let defaultLimit = 100_000

    /// One immutable state of the inventory.
    public final class Snapshot: Sendable {
        /// Name -> node; names hash and compare by Unicode scalars.
        public let nodes: [ScalarString: PlacementNode]
        /// The digest of the canonical form (`canonicalBytes`; the daemon's is `sha256:<hex>`),
        /// so a scheduler can tell whether the daemon holds what it last sent.
        public let revision: String
        /// Nodes prepared for the configuration last asked for, with that configuration's key.
        private let prepared = ReadMostly<(key: String, nodes: PreparedInventory)?>(nil)

        init(nodes: [ScalarString: PlacementNode], revision: String) {
            self.nodes = nodes; self.revision = revision
        }

        public var count: Int { nodes.count }

        public func node(named name: String) -> PlacementNode? { nodes[ScalarString(name)] }

        /// Every node in canonical order (names by Unicode scalars).
        public var sortedNodes: [PlacementNode] {
            nodes.sorted { $0.key < $1.key }.map(\.value)
        }

        /// The nodes prepared for `config`. `key` identifies the configuration (the daemon uses
        /// the policy revision, which covers `guardrails/`): the first call under a new key
        /// prepares every node, later calls under the same key reuse the result.
        public func prepared(for config: GuardrailConfig, key: String) -> PreparedInventory {
            if let p = prepared.read(), p.key.scalarEquals(key) { return p.nodes }
            var names: [String] = []
            names.reserveCapacity(nodes.count)
            var list: [PlacementNode] = []
            list.reserveCapacity(nodes.count)
            for (name, node) in nodes {
                names.append(name.value)
                list.append(node)
            }
            let out = PreparedInventory(index: NameIndex(names), nodes: PreparedNode.View(config).prepare(list))
            prepared.replace((key, out))
            return out
        }
    }

    public let limit: Int
    private let digest: @Sendable ([UInt8]) -> String
    private let current: ReadMostly<Snapshot>
    /// Held for the whole of a change, so two changes never build on the same base.
    private let changing = Mutex<Void>(())

    /// `digest` turns the canonical bytes into the revision text (`sha256:<hex>`); it is passed
    /// in because the SHA-256 implementation lives with the audit log.
    public init(limit: Int = NodeInventory.defaultLimit, digest: @escaping @Sendable ([UInt8]) -> String) {
        self.limit = limit
        self.digest = digest
        current = ReadMostly(Snapshot(nodes: [:], revision: digest(Self.canonicalBytes([:]))))
    }

    /// The current state; a placement reads it once.
    public var snapshot: Snapshot { current.read() }

    /// Applies `change`: builds the new state, refuses it with `overLimit(count, limit)` when it
    /// would hold more than `limit` nodes, hands the outcome to `confirm` and installs it only
    /// if `confirm` returns. A throw from either leaves the inventory as it was.
    public func apply<E: Error>(_ change: NodeInventoryChange, overLimit: (_ count: Int, _ limit: Int) -> E,
                                confirm: (NodeInventoryUpdate) throws(E) -> Void) throws(E) -> NodeInventoryUpdate {
        try changing.withLock { _ throws(E) -> NodeInventoryUpdate in
            let base = snapshot
            var nodes = base.nodes
            var changed = 0, removed = 0
            switch change {
            case .upsert(let list):
                for n in list {
                    let key = ScalarString(n.name)
                    if let old = nodes[key], Self.identical(old, n) { continue }
                    nodes[key] = n
                    changed += 1
                }
            case .replace(let list):
                var fresh: [ScalarString: PlacementNode] = [:]
                fresh.reserveCapacity(list.count)
                for n in list {
                    let key = ScalarString(n.name)
                    if let old = nodes[key], Self.identical(old, n) {} else { changed += 1 }
                    fresh[key] = n
                }
                for key in nodes.keys where fresh[key] == nil { removed += 1 }
                changed += removed
                nodes = fresh
            case .remove(let names):
                for name in names where nodes.removeValue(forKey: ScalarString(name)) != nil { removed += 1 }
                changed = removed
            }
            if nodes.count > limit { throw overLimit(nodes.count, limit) }
            let next = changed == 0 ? base : Snapshot(nodes: nodes, revision: digest(Self.canonicalBytes(nodes)))
            let update = NodeInventoryUpdate(count: nodes.count, revision: next.revision, changed: changed, removed: removed)
            try confirm(update)
            if changed > 0 { current.replace(next) }
            return update
        }
    }

    /// The bytes the revision is the digest of: the nodes sorted by name (Unicode scalars) as
    /// compact JSON, `[{"name":..,"region":..|null,"labels":{..}},...]`, label keys sorted the
    /// same way, strings escaped as `JSONWriter` does.
    public static func canonicalBytes(_ nodes: [ScalarString: PlacementNode]) -> [UInt8] {
        var w = JSONWriter(capacity: 64 + nodes.count * 128)
        w.byte(UInt8(ascii: "["))
        for (i, entry) in nodes.sorted(by: { $0.key < $1.key }).enumerated() {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            let n = entry.value
            w.raw("{\"name\":"); w.string(n.name)
            w.raw(",\"region\":"); if let r = n.region { w.string(r) } else { w.null() }
            w.raw(",\"labels\":{")
            for (j, l) in n.labels.sorted(by: { $0.key.scalarLess($1.key) }).enumerated() {
                if j > 0 { w.byte(UInt8(ascii: ",")) }
                w.string(l.key); w.byte(UInt8(ascii: ":")); w.string(l.value)
            }
            w.raw("}}")
        }
        w.byte(UInt8(ascii: "]"))
        return w.bytes
    }

    /// Equal by Unicode scalars in every field (`==` on `PlacementNode` is canonical
    /// equivalence, which would keep a stale spelling).
    static func identical(_ a: PlacementNode, _ b: PlacementNode) -> Bool {
        guard a.name.scalarEquals(b.name), a.labels.count == b.labels.count else { return false }
        switch (a.region, b.region) {
        case (nil, nil): break
        case (let x?, let y?): guard x.scalarEquals(y) else { return false }
        default: return false
        }
        for (k, v) in a.labels {
            guard let i = b.labels.index(forKey: k), b.labels[i].key.scalarEquals(k), b.labels[i].value.scalarEquals(v) else { return false }
        }
        return true
    }
}
