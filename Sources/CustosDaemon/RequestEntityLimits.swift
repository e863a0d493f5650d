import Cedar
import CustosJSON
import CustosServer

// The cost rule for a request's own `entities` (issue 10 §3): they are an overlay on the
// folder's store, built in time proportional to what they add and bounded by the daemon's
// limits. Who may bring request entities, and of which types, is a trust rule kept apart
// from this (next to `DecideParams`).

extension DaemonLimits {
    var requestEntityLimits: EntityStore.RequestLimits {
        EntityStore.RequestLimits(maxEntities: maxRequestEntities, maxDepth: maxRequestEntityDepth,
                                  maxAncestorLinks: maxRequestAncestors)
    }
}

extension DaemonLimits {
    /// Refuses a decide whose `entities` array is over the count limit before any of it is
    /// read into entities (the same error `addingRequestEntities` gives).
    func checkRequestEntityCount(_ params: JSON?, field: String) throws(RPCError) {
        guard case .object(let o)? = params, case .array(let items)? = o["entities"], items.count > maxRequestEntities else { return }
        throw .invalidParams(field: "\(field).entities",
                             EntityError.tooManyRequestEntities(count: items.count, limit: maxRequestEntities).description
                                 + " (limits.max_request_entities)")
    }
}

extension EntityStore {
    /// The folder's store with a request's entities on top, or -32602 naming `field.entities`
    /// and, for a limit, the configuration key that sets it.
    func addingRequestEntities(_ extra: [Entity], limits: DaemonLimits, field: String) throws(RPCError) -> EntityStore {
        do { return try adding(extra, limits: limits.requestEntityLimits) } catch {
            let hint: String
            switch error {
            case .duplicate: hint = "; request entities must not repeat each other or the folder's entities.json"
            case .tooManyRequestEntities: hint = " (limits.max_request_entities)"
            case .tooDeep: hint = " (limits.max_request_entity_depth)"
            case .tooManyAncestorLinks: hint = " (limits.max_request_ancestors)"
            case .cycle, .namedByLoadedEntity: hint = ""
            }
            throw .invalidParams(field: "\(field).entities", error.description + hint)
        }
    }
}
