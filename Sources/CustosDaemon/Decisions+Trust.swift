import Cedar
import CustosServer
import Guardrails

/// The facts a `decide` request asserts that the daemon does not simply believe: request
/// entities and unknown data ids. Each check runs before the decision, against the snapshot's
/// `FolderTrust`.
extension DecisionMethods {
    /// The access-rule name that lets a caller send request `entities` (`access.methods` in the
    /// configuration). Granted to nobody unless an operator names the caller.
    public static let entitiesPrivilegeName = "entities"

    /// Refuses request entities the caller may not send: without the `entities` privilege any
    /// non-empty `entities` is -32001 (and audited), and with it the entities must not describe
    /// what the folder describes (`FolderTrust.check`, -32602 naming the entity). Called before
    /// the entities are added to the folder's.
    static func admitEntities(_ p: DecideParams, privilege: Privilege, caller: CallContext, snapshot: PolicySnapshot,
                              services: DaemonServices, method: String, field: String) throws(RPCError) {
        guard !p.entities.isEmpty else { return }
        guard caller.holds(privilege) else {
            try services.note(.refusedPrivilege(method: method, privilege: privilege.name, caller: caller))
            throw RPCError(code: RPCError.forbiddenCode,
                           message: "forbidden: uid \(caller.uid) (gid \(caller.gid)) may not send request entities (\(field).entities): the access rules do not grant it the \"\(privilege.name)\" privilege; describe the world in the policies folder's entities.json, or ask the operator to grant it (access.methods.\(privilege.name))")
        }
        try snapshot.trust.check(p.entities, field: field)
    }

    /// `data.unknown_dataset` when the resource is of a data type and the folder does not hold
    /// it: a misspelt dataset id must not be allowed by a permit that reads no attributes.
    /// Request entities cannot supply it (data types are folder-only), so the folder decides.
    @inline(__always)
    static func unknownData(_ resource: EntityUID, snapshot: PolicySnapshot) -> Denial? {
        guard snapshot.entities.entry(resource) == nil, snapshot.trust.dataTypes.contains(resource.type) else { return nil }
        return Denial(.dataUnknownDataset,
                      "\(resource) is not in the policies folder's entities.json, and \(resource.type) is a data type (custos.json data_types): unknown data is never decided on")
    }
}
