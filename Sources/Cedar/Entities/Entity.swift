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

    public var description: String {
        switch self {
        case .duplicate(let uid): "entity \(uid) is defined more than once"
        case .cycle(let path): "entity hierarchy has a cycle: " + path.map(\.description).joined(separator: " -> ")
        }
    }
}
