/// A Cedar schema after every name is resolved: the entity types with their attributes, tags,
/// enumerated ids and hierarchy, and the actions with what they apply to and their context.
/// Built by `Schema.parse(cedarSchema:file:)` or `Schema.parse(json:file:)`; immutable after.
public struct Schema: Sendable {
    public enum EntityKind: Sendable, Hashable {
        case standard(attributes: RecordType, tags: CedarType?)
        /// `entity Color enum ["red", "green"]`: only these ids exist, with no attributes or tags.
        case enumerated([String])
    }

    public struct EntityTypeDefinition: Sendable, Equatable {
        public let name: EntityType
        public let kind: EntityKind
        /// Types whose entities may be members of this type's entities, directly or through
        /// other types (the transitive inverse of `in [...]`), not including the type itself.
        public internal(set) var descendants: Set<EntityType> = []
        /// Types an entity of this type may list among its parents: every type this one is
        /// declared `in`, directly or transitively.
        public internal(set) var allowedParents: Set<EntityType> = []

        public var attributes: RecordType {
            if case .standard(let a, _) = kind { return a }
            return RecordType()
        }

        public var tags: CedarType? {
            if case .standard(_, let t) = kind { return t }
            return nil
        }

        public var enumIDs: [String]? {
            if case .enumerated(let ids) = kind { return ids }
            return nil
        }

        /// Whether `id` may name an entity of this type (always, unless the type is enumerated).
        public func allows(id: ScalarString) -> Bool {
            guard let ids = enumIDs else { return true }
            return ids.contains { ScalarString($0) == id }
        }
    }

    public struct ActionDefinition: Sendable, Equatable {
        public let uid: EntityUID
        /// In declaration order, without repeats.
        public let principalTypes: [EntityType]
        public let resourceTypes: [EntityType]
        public let context: RecordType
        /// The action groups it is declared `in`.
        public let parents: [EntityUID]
        /// Every group it is in, directly or transitively.
        public internal(set) var ancestors: Set<EntityUID> = []
        /// Every action in it, directly or transitively.
        public internal(set) var descendants: Set<EntityUID> = []

        public func appliesTo(principal: EntityType) -> Bool { principalTypes.contains(principal) }
        public func appliesTo(resource: EntityType) -> Bool { resourceTypes.contains(resource) }
    }

    /// One combination a request may take: a principal type and a resource type the action
    /// applies to, with the action's context type.
    public struct RequestEnvironment: Sendable {
        public let principal: EntityType
        public let action: EntityUID
        public let resource: EntityType
        public let context: RecordType
    }

    public let entityTypes: [EntityType: EntityTypeDefinition]
    public let actions: [EntityUID: ActionDefinition]
    /// Every (principal, action, resource) the schema allows, actions in uid order.
    public let environments: [RequestEnvironment]
    /// The types of the declared actions (`Action`, `Ns::Action`).
    public let actionTypes: Set<EntityType>
    /// What a request for each declared action must satisfy, and the ids of the enumerated
    /// types: `checkRequestScope` runs for every request a daemon validates, so it looks these
    /// up rather than copying definitions.
    let requestShapes: [EntityUID: RequestShape]
    let enumeratedIDs: [EntityType: Set<ScalarString>]

    final class RequestShape: Sendable {
        let principals: [EntityType]
        let resources: [EntityType]
        let context: RecordType
        init(_ a: ActionDefinition) { principals = a.principalTypes; resources = a.resourceTypes; context = a.context }
    }

    init(entityTypes: [EntityType: EntityTypeDefinition], actions: [EntityUID: ActionDefinition]) {
        self.entityTypes = entityTypes
        self.actions = actions
        var envs: [RequestEnvironment] = []
        for uid in actions.keys.sorted() {
            let a = actions[uid]!
            for p in a.principalTypes {
                for r in a.resourceTypes {
                    envs.append(RequestEnvironment(principal: p, action: uid, resource: r, context: a.context))
                }
            }
        }
        environments = envs
        actionTypes = Set(actions.keys.map(\.type))
        requestShapes = actions.mapValues(RequestShape.init)
        enumeratedIDs = entityTypes.compactMapValues { $0.enumIDs.map { Set($0.map(ScalarString.init)) } }
    }

    /// Entity types declared in the schema, in name order.
    public var entityTypeNames: [EntityType] { entityTypes.keys.sorted() }

    /// The action entities the schema defines, each with its groups as parents. Schema-based
    /// entity loading adds these to the store, as the reference engine does.
    public var actionEntities: [Entity] {
        actions.keys.sorted().map { uid in Entity(uid: uid, parents: actions[uid]!.parents) }
    }

    /// `A in B` can hold for some entities of these types: B is A, or A is declared (possibly
    /// transitively) in B.
    func mayBeDescendant(_ a: EntityType, of b: EntityType) -> Bool {
        a == b || entityTypes[b]?.descendants.contains(a) == true
    }

    /// Every action `action in group` holds for: the group itself and its members, or nil
    /// when one of the groups is not a declared action.
    func actions(in groups: [EntityUID]) -> Set<EntityUID>? {
        var out = Set<EntityUID>()
        for g in groups {
            guard let a = actions[g] else { return nil }
            out.insert(g)
            out.formUnion(a.descendants)
        }
        return out
    }
}
