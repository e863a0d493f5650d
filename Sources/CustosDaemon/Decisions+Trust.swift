import Cedar
import CustosServer
import Guardrails

/// The facts a `decide` request asserts that the daemon does not simply believe (see the trust
/// table in docs/security.md): request entities, unknown data ids, and where the processing
/// happens. Each check runs before the decision, against the snapshot's `FolderTrust`, the
/// daemon's bound region and its node inventory.
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

    /// Where a `decide` says the processing happens, once the daemon has checked it.
    struct ProcessingRegion {
        /// The region the guardrails use and the audit record names.
        var region: String?
        /// The request's context with `region` set to that region, when the request did not
        /// carry it (so Cedar policies read the region the guardrails used); nil when unchanged.
        var context: CedarRecord?
        /// Why the region could not be established (`context.node` names no inventory node).
        var denial: Denial?
        /// Whether `region` is the daemon's (bound region or inventory node), not the caller's.
        var fromDaemon = false
    }

    static let regionKey = FieldKey("region")
    static let nodeKey = FieldKey("node")

    /// Resolves `context.region` and `context.node` against the daemon's bound region and its
    /// node inventory. Nil when the daemon is unbound and the request names no node: the
    /// region is then the caller's `context.region`, as asserted.
    ///
    /// - A node (`context.node`, a string) is looked up in the inventory; its region is used.
    ///   An unknown node is a denial (`placement.unknown_node`), as in `place`: the scheduler
    ///   refills the inventory on that code. A node in another region than the bound one, or a
    ///   `context.region` that disagrees with the node's, is -32602. A node the inventory holds
    ///   without a region has none: personal data is then denied (`residency.location_missing`)
    ///   and a `context.region` beside it is -32602.
    /// - With a bound region, `context.region` must be absent or name it (else -32602 naming
    ///   `context.region`); absent means the bound region.
    static func processingRegion(_ context: CedarRecord, services: DaemonServices,
                                 field: String) throws(RPCError) -> ProcessingRegion? {
        let bound = services.region
        let nodeValue = context[nodeKey]
        guard bound != nil || nodeValue != nil else { return nil }
        var asserted: String? = nil
        if let v = context[regionKey] {
            guard case .string(let s) = v else { throw .invalidParams(field: "\(field).context.region", "expected a string, got \(v.typeName)") }
            asserted = s
        }
        var region: String? = nil
        var regionless = false
        var denial: Denial? = nil
        if let nodeValue {
            guard case .string(let name) = nodeValue else {
                throw .invalidParams(field: "\(field).context.node", "expected the name of a node of the inventory (a string), got \(nodeValue.typeName)")
            }
            if let node = services.inventory.snapshot.node(named: name) {
                if let r = node.region {
                    if let a = asserted, !a.scalarEquals(r) {
                        throw .invalidParams(field: "\(field).context.region",
                                             "\"\(a)\" disagrees with the region of node \(name) in the node inventory (\(r)); send one of them")
                    }
                    if let b = bound, !b.scalarEquals(r) {
                        throw .invalidParams(field: "\(field).context.node",
                                             "node \(name) is in region \(r) (node inventory); this daemon decides for region \(b) only")
                    }
                    region = r
                } else {
                    // The inventory knows the node but not where it is: neither the caller's
                    // region nor the daemon's bound one may stand in for the node's, as `place`
                    // rejects such a node for personal data (`residency.location_missing`).
                    if asserted != nil {
                        throw .invalidParams(field: "\(field).context.region",
                                             "node \(name) has no region in the node inventory, and the caller cannot supply it; sync the node with its region (nodes.sync)")
                    }
                    regionless = true
                }
            } else {
                denial = Denial(.placementUnknownNode,
                                "node \(name) is not in the node inventory, so the daemon does not know where it is; send it with nodes.sync")
            }
        }
        if region == nil && !regionless {
            if let b = bound {
                if let a = asserted, !a.scalarEquals(b) {
                    throw .invalidParams(field: "\(field).context.region",
                                         "this daemon decides for region \(b) only (its configured region), not \"\(a)\"; leave context.region out or name \(b)")
                }
                region = b
            } else {
                region = asserted
            }
        }
        var out = ProcessingRegion(region: region, context: nil, denial: denial)
        out.fromDaemon = region != nil && (bound != nil || (nodeValue != nil && denial == nil && region != asserted))
        if asserted == nil, let r = region {
            out.context = CedarRecord(context.fields.map { ($0.key, $0.value) } + [("region", .string(r))])
        }
        return out
    }

    /// A load that would leave a bound daemon deciding for a region its guardrail configuration
    /// does not define is refused (the previous policies stay in service).
    static func checkBoundRegion(_ region: String?, _ snapshot: PolicySnapshot) throws(PolicyStoreError) {
        guard let region, snapshot.guardrails.status.isActive, let regions = snapshot.guardrails.regions else { return }
        guard regions.regions.keys.contains(where: { $0.scalarEquals(region) }) else {
            throw PolicyStoreError("this daemon is bound to region \"\(region)\" (--region or the configuration's region), which guardrails/regions.json does not define; known regions: \(regions.regionOrder.joined(separator: ", "))")
        }
    }
}
