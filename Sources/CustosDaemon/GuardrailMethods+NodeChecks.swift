import Cedar
import CustosJSON
import CustosServer
import Guardrails
import ReadMostly

/// Per-node Cedar checks in `place`: when a policy names `Action::"place_on_node"` in its
/// scope, every node the guardrails leave allowed is asked about as the resource
/// `Node::"<name>"`, with the node's attributes (`name`, `region`, `labels`) from where `place`
/// read the node (the inventory for a name, the call for an object). A node Cedar does not
/// allow is rejected with `placement.not_authorized`. Folders whose policies never name the
/// action pay nothing: `place_job` alone decides, as before.
extension GuardrailMethods {
    /// The Cedar action asked once per node that survives the guardrails.
    public static let placeOnNodeAction = EntityUID("Action", "place_on_node")
    /// The entity type of the node a per-node check is about.
    public static let nodeType = "Node"

    /// Whether some policy's action scope can match `place_on_node`: `==` it, a list holding
    /// it or a group the folder makes it a member of (Cedar reads `action in [G]` as in any of
    /// them, so a forbid written that way must turn the checks on too), or such a group. An
    /// unscoped `action` does not count: a folder turns per-node checks on by naming the action.
    static func asksAboutNodes(_ snapshot: PolicySnapshot) -> Bool {
        for p in snapshot.policies.policies {
            switch p.action {
            case .any: continue
            case .eq(let a): if a == placeOnNodeAction { return true }
            case .inSet(let s):
                if s.contains(where: { $0 == placeOnNodeAction || snapshot.entities.isDescendant(placeOnNodeAction, of: $0) }) { return true }
            case .in(let g): if snapshot.entities.isDescendant(placeOnNodeAction, of: g) { return true }
            }
        }
        return false
    }

    /// `Node::"<name>"` with `name`, `region` (when known) and `labels` (a record of strings).
    static func nodeEntity(_ n: PlacementNode) -> Entity {
        var labels: [(String, Value)] = []
        labels.reserveCapacity(n.labels.count)
        for (k, v) in n.labels { labels.append((k, .string(v))) }
        var attrs: [(String, Value)] = [("name", .string(n.name)), ("labels", .record(CedarRecord(labels)))]
        if let r = n.region { attrs.append(("region", .string(r))) }
        return Entity(uid: EntityUID(nodeType, n.name), attrs: CedarRecord(attrs))
    }

    /// The folder's entities plus one `Node` entity per inventory node, built once per
    /// inventory revision and policy revision, so a placement by names adds no entities per call.
    final class NodeEntityCache: Sendable {
        private let cached = ReadMostly<(inventory: String, policies: String, store: Result<EntityStore, EntityError>)?>(nil)

        func store(_ inventory: NodeInventory.Snapshot, _ snapshot: PolicySnapshot) -> Result<EntityStore, EntityError> {
            if let c = cached.read(), c.inventory.scalarEquals(inventory.revision), c.policies.scalarEquals(snapshot.revision) {
                return c.store
            }
            let entities = inventory.nodes.values.map(GuardrailMethods.nodeEntity)
            let r = Result { () throws(EntityError) -> EntityStore in
                try snapshot.entities.adding(entities, limits: nodeLimits(entities.count))
            }
            cached.replace((inventory.revision, snapshot.revision, r))
            return r
        }
    }

    /// Node entities have no parents; only their number needs room.
    static func nodeLimits(_ count: Int) -> EntityStore.RequestLimits {
        EntityStore.RequestLimits(maxEntities: max(count, 1), maxDepth: 1, maxAncestorLinks: 1)
    }

    /// What the per-node checks add to a placement's answer.
    struct NodeCheckOutcome {
        /// Policies that decided a node (the permits of allowed nodes, the forbids of rejected
        /// ones), each once, in the order first met: they join the answer's `reasons`.
        var reasons: [Int] = []
        /// Policies that failed to evaluate on some node, for `errors`.
        var failures: [PolicyFailure] = []
    }

    /// Asks Cedar about every allowed node; moves the ones it does not allow to `rejected`
    /// (with `placement.not_authorized`, naming the forbids that decided) and drops their
    /// transfer bases.
    static func checkNodes(_ result: inout PlacementResult, job: PlacementJob, principal: EntityUID,
                           context: [(String, Value)], nodes: (String) -> PlacementNode?, objectNames: Set<ScalarString>,
                           inventory: NodeInventory.Snapshot, cache: NodeEntityCache,
                           snapshot: PolicySnapshot) -> NodeCheckOutcome {
        // Names resolve through the cached inventory store; node objects (rare with many nodes)
        // get a store of their own for this call.
        let usesObjects = !objectNames.isEmpty && result.allowed.contains { objectNames.contains(ScalarString($0)) }
        let store: Result<EntityStore, EntityError>
        if usesObjects {
            let entities = result.allowed.compactMap { nodes($0) }.map(nodeEntity)
            store = Result { () throws(EntityError) -> EntityStore in
                try snapshot.entities.adding(entities, limits: nodeLimits(entities.count))
            }
        } else {
            store = cache.store(inventory, snapshot)
        }
        var ctx = context
        if let s = job.study { ctx.append(("study", .string(s))) }
        let record = CedarRecord(ctx)
        var kept: [String] = []
        kept.reserveCapacity(result.allowed.count)
        var keptScores: [Int] = []
        var dropped: [(node: String, reasons: [Denial])] = []
        var outcome = NodeCheckOutcome()
        for (i, name) in result.allowed.enumerated() {
            let denial: Denial?
            switch store {
            case .failure(let e):
                // The folder defines or names a Node entity itself: the node's attributes would
                // not be the inventory's, so no node is shown allowed.
                denial = Denial(.placementNotAuthorized,
                                "node \(name) cannot be checked with Cedar (\(placeOnNodeAction) on \(nodeType)::\"\(name)\"): \(e); the Node type is the placement's own")
            case .success(let entities):
                let request = Request(principal: principal, action: placeOnNodeAction,
                                      resource: EntityUID(nodeType, name), context: record)
                let v = snapshot.authorize(request, entities: entities)
                if !v.errors.isEmpty {
                    for f in snapshot.failures(v) where !outcome.failures.contains(where: { $0.policy == f.policy }) { outcome.failures.append(f) }
                }
                for r in v.reasons where !outcome.reasons.contains(r) { outcome.reasons.append(r) }
                if v.decision == .allow {
                    denial = nil
                } else {
                    let by = v.reasons.map { snapshot.policyNames[$0] }
                    denial = Denial(.placementNotAuthorized,
                                    "Cedar does not let \(principal) place job \(job.id) on node \(name) (\(placeOnNodeAction)): "
                                        + (by.isEmpty ? "no policy permits it" : "forbidden by " + by.joined(separator: ", ")))
                }
            }
            if let denial {
                dropped.append((name, [denial]))
            } else {
                kept.append(name)
                if i < result.scores.count { keptScores.append(result.scores[i]) }
            }
        }
        guard !dropped.isEmpty else { return outcome }
        let gone = Set(dropped.map { ScalarString($0.node) })
        result.allowed = kept
        if !result.scores.isEmpty { result.scores = keptScores }
        result.nodeObligations.removeAll { gone.contains(ScalarString($0.node)) }
        result.rejected += dropped
        return outcome
    }
}
