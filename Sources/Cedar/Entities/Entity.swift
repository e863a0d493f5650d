/// An entity as loaded: its attributes, direct parents and tags.
public struct Entity: Sendable, Hashable {
    public let uid: EntityUID
    public let attrs: CedarRecord
    public let parents: [EntityUID]
    public let tags: CedarRecord

    public init(uid: EntityUID, attrs: CedarRecord = CedarRecord(), parents: [EntityUID] = [],
                tags: CedarRecord = CedarRecord()) {
        self.uid = uid; self.attrs = attrs; self.parents = parents; self.tags = tags
    }
}

/// Why a set of entities was refused.
public enum EntityError: Error, Sendable, Hashable, CustomStringConvertible {
    case duplicate(EntityUID)
    case cycle([EntityUID])
    /// The entity sits more than `limit` levels deep (an entity without parents is level 1);
    /// `request` when the levels counted are a request's own entities.
    case tooDeep(EntityUID, limit: Int, request: Bool)
    /// Building the ancestor set of this entity would take the ancestor links past `limit`.
    case tooManyAncestorLinks(at: EntityUID, limit: Int, request: Bool)
    /// A request brings more entities than `limit`.
    case tooManyRequestEntities(count: Int, limit: Int)
    /// A request defines an entity that the loaded entity `child` names as a parent.
    case namedByLoadedEntity(EntityUID, child: EntityUID)

    public var description: String {
        switch self {
        case .duplicate(let uid): "entity \(uid) is defined more than once"
        case .cycle(let path): "entity hierarchy has a cycle: " + path.map(\.description).joined(separator: " -> ")
        case .tooDeep(let uid, let limit, let request):
            request
                ? "entity \(uid) has more than \(limit) request entities in its parent chain, itself included; the limit is \(limit)"
                : "entity \(uid) is more than \(limit) levels deep in the entity hierarchy (an entity without parents is level 1); the limit is \(limit)"
        case .tooManyAncestorLinks(let uid, let limit, let request):
            (request ? "the request entities' ancestor sets" : "the entity hierarchy's ancestor sets")
                + " would hold more than \(limit) entries in all (reached at entity \(uid)); the limit is \(limit)"
        case .tooManyRequestEntities(let count, let limit):
            "the request brings \(count) entities; the limit is \(limit)"
        case .namedByLoadedEntity(let uid, let child):
            "entity \(uid) is named as a parent by the loaded entity \(child), so a request may not define it (that would change the loaded hierarchy)"
        }
    }
}
