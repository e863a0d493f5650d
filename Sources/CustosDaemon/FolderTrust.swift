import Cedar
import CustosServer
import Guardrails

/// What only the policies folder may say about entities, worked out once per load (see
/// `PolicySnapshot.trust`) so a decision never recomputes it.
///
/// A socket caller is authenticated, not trusted to describe the world: the folder's
/// `entities.json` says who is in which role and study and which data exists. Request entities
/// (a privilege, see `DecisionMethods.entitiesPrivilege`) may add to that world only where the
/// folder has nothing to say.
public struct FolderTrust: Sendable {
    /// Entity types a request may not define or attach to as a child: `custos.json`
    /// `authoritative_types`, by default every type `entities.json` defines or names as a
    /// parent. Action types always count: a request must not put an action into a group.
    public let authoritativeTypes: Set<EntityType>
    /// Entity types that are data: `custos.json` `data_types`, by default every type of which
    /// some folder entity carries a data attribute (`DatasetAttributes.attributeNames`). An id
    /// of one of them that the folder does not hold is unknown data, and denied.
    public let dataTypes: Set<EntityType>
    /// Entities that folder entities of an authoritative type name as parents without
    /// defining them: a request that defined one would choose its parents, and so the
    /// ancestors of the folder's own principals.
    public let danglingParents: Set<EntityUID>
    /// What `custos.json` leaves open that the folder itself describes, or names that nothing
    /// in `entities.json` has: each list replaces its default, so a type left out (or misspelt,
    /// `"Datset"`) opens the folder's own users, roles or data to request entities, or stops
    /// misspelt dataset ids being denied. Shown by `custos check` (`--strict` fails on them)
    /// and `policy.status`.
    public let warnings: [String]

    public static let empty = FolderTrust(entities: .empty, settings: .default)

    public init(entities: EntityStore, settings: FolderSettings) {
        var present = Set<EntityType>(), data = Set<EntityType>()
        let all = entities.all
        for e in all {
            present.insert(e.uid.type)
            for p in e.parents { present.insert(p.type) }
            if DatasetAttributes.attributeNames.contains(where: { e.attrs.has($0) }) { data.insert(e.uid.type) }
        }
        let authoritative = settings.authoritativeTypes.map { Set($0.map(EntityType.init)) } ?? present
        var dangling = Set<EntityUID>()
        for e in all where authoritative.contains(e.uid.type) {
            for p in e.parents where entities.entry(p) == nil { dangling.insert(p) }
        }
        authoritativeTypes = authoritative
        dataTypes = settings.dataTypes.map { Set($0.map(EntityType.init)) } ?? data
        danglingParents = dangling
        var warnings: [String] = []
        func sorted(_ s: Set<EntityType>) -> [String] { s.map(\.description).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) } }
        if let listed = settings.authoritativeTypes.map({ Set($0.map(EntityType.init)) }) {
            let open = present.subtracting(listed).filter { !$0.isAction }
            if !open.isEmpty {
                warnings.append("custos.json authoritative_types leaves out \(sorted(open).joined(separator: ", ")), which entities.json defines or names as a parent: a caller granted request entities may define such entities and attach them to the folder's; list \(open.count == 1 ? "it" : "them") unless that is meant")
            }
        }
        if let listed = settings.dataTypes.map({ Set($0.map(EntityType.init)) }) {
            let left = data.subtracting(listed)
            if !left.isEmpty {
                warnings.append("custos.json data_types leaves out \(sorted(left).joined(separator: ", ")), whose entities in entities.json carry data attributes: an id of \(left.count == 1 ? "that type" : "those types") the folder does not hold is no longer denied (data.unknown_dataset); list \(left.count == 1 ? "it" : "them")")
            }
            let unheld = listed.subtracting(present)
            if !unheld.isEmpty {
                warnings.append("custos.json data_types names \(sorted(unheld).joined(separator: ", ")), of which entities.json has no entity: a misspelt type name? Every id of \(unheld.count == 1 ? "it" : "them") is denied as unknown data")
            }
        }
        self.warnings = warnings
    }

    /// Whether a request may define or attach to entities of type `t`.
    @inline(__always) func isFolderOnly(_ t: EntityType) -> Bool {
        t.isAction || authoritativeTypes.contains(t) || dataTypes.contains(t)
    }

    /// Refuses request entities that would describe what the folder describes: an entity of an
    /// authoritative or data type, one that a folder entity names as its parent, or one whose
    /// parents include an entity of such a type. `field` is where the request sits (`params`,
    /// `params.requests[3]`).
    public func check(_ entities: [Entity], field: String) throws(RPCError) {
        for (i, e) in entities.enumerated() {
            if isFolderOnly(e.uid.type) {
                throw .invalidParams(field: "\(field).entities[\(i)]",
                    "\(e.uid) has type \(e.uid.type), whose entities only the policies folder defines (entities.json, custos.json authoritative_types and data_types); a request may not define them")
            }
            if danglingParents.contains(e.uid) {
                throw .invalidParams(field: "\(field).entities[\(i)]",
                    "\(e.uid) is named as a parent by an entity of entities.json; only the policies folder may define it")
            }
            for (j, p) in e.parents.enumerated() where isFolderOnly(p.type) {
                throw .invalidParams(field: "\(field).entities[\(i)].parents[\(j)]",
                    "\(e.uid) may not be a child of \(p): type \(p.type) is defined only by the policies folder, so a request cannot join its hierarchy")
            }
        }
    }
}
