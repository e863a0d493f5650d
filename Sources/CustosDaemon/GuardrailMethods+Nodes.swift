import AuditLog
import Cedar
import CustosJSON
import CustosServer
import Guardrails

/// `nodes.sync`, `nodes.remove`, `nodes.status`, `nodes.list`: the node inventory `place` resolves node names
/// against (see `NodeInventory`; docs/protocol.md).
///
/// The inventory is a cache the scheduler's side fills; it is not written to disk and starts
/// empty with every daemon. A change is validated whole, then noted to the audit log, then
/// installed: if the audit log cannot take the note the caller gets the not-ready error and
/// nothing changed.
extension GuardrailMethods {
    /// The daemon's node inventory, revisions as `sha256:<hex>` like policy revisions.
    static func makeInventory(limit: Int = NodeInventory.defaultLimit) -> NodeInventory {
        NodeInventory(limit: limit) { "sha256:" + SHA256Digest.hash($0).hex }
    }

    static func registerNodes(into table: inout MethodTable, _ services: DaemonServices, _ inventory: NodeInventory) {
        table.register("nodes.sync") { params, caller throws(RPCError) in
            try params.only(["nodes", "replace"], method: "nodes.sync")
            var replace = false
            if let r = try params.optional("replace"), !r.isNull {
                guard case .bool(let b) = r else { throw .invalidParams(field: "params.replace", "expected true or false, got \(r.kindName)") }
                replace = b
            }
            let nodes = try nodeList(params.required("nodes"))
            let update = try change(replace ? .replace(nodes) : .upsert(nodes), method: "nodes.sync", inventory: inventory,
                                    services: services, caller: caller, extra: [("replace", .bool(replace))])
            return .object(JSONObject([JSONObject.Member(key: "nodes", value: .int(Int64(update.count))),
                                       JSONObject.Member(key: "revision", value: .string(update.revision)),
                                       JSONObject.Member(key: "changed", value: .int(Int64(update.changed)))]))
        }
        table.register("nodes.remove") { params, caller throws(RPCError) in
            try params.only(["names"], method: "nodes.remove")
            let v = try params.required("names")
            guard case .array(let items) = v else {
                throw .invalidParams(field: "params.names", "expected an array of node names, got \(v.kindName)")
            }
            var names: [String] = []
            names.reserveCapacity(items.count)
            for (i, item) in items.enumerated() {
                guard case .string(let s) = item else {
                    throw .invalidParams(field: "params.names[\(i)]", "expected a node name (a string), got \(item.kindName)")
                }
                names.append(s)
            }
            let update = try change(.remove(names), method: "nodes.remove", inventory: inventory,
                                    services: services, caller: caller, extra: [])
            return .object(JSONObject([JSONObject.Member(key: "nodes", value: .int(Int64(update.count))),
                                       JSONObject.Member(key: "revision", value: .string(update.revision)),
                                       JSONObject.Member(key: "removed", value: .int(Int64(update.removed)))]))
        }
        // What a node-sync sidecar polls to see a restart (an empty inventory, another
        // revision) without reading every node or writing an audit entry.
        table.register("nodes.status") { params, _ throws(RPCError) in
            try params.none(method: "nodes.status")
            let snap = inventory.snapshot
            return .object(JSONObject([JSONObject.Member(key: "nodes", value: .int(Int64(snap.count))),
                                       JSONObject.Member(key: "revision", value: .string(snap.revision))]))
        }
        table.register("nodes.list") { params, _ throws(RPCError) in
            try params.none(method: "nodes.list")
            let snap = inventory.snapshot
            return .object(JSONObject([JSONObject.Member(key: "nodes", value: .array(snap.sortedNodes.map(\.json))),
                                       JSONObject.Member(key: "revision", value: .string(snap.revision))]))
        }
    }

    /// The `nodes` array of `nodes.sync`: node objects as `place` reads them, names unique.
    static func nodeList(_ json: JSON) throws(RPCError) -> [PlacementNode] {
        let nodes: [PlacementNode]
        do throws(GuardrailParamError) { nodes = try PlacementNode.list(json: json) } catch { throw invalid(error) }
        var seen: [ScalarString: Int] = [:]
        seen.reserveCapacity(nodes.count)
        for (i, n) in nodes.enumerated() {
            if let first = seen.updateValue(i, forKey: ScalarString(n.name)) {
                throw .invalidParams(field: "params.nodes[\(i)].name", "\"\(n.name)\" is already params.nodes[\(first)]; each node once")
            }
        }
        return nodes
    }

    /// Applies a change, noting it to the audit log before it takes effect.
    static func change(_ c: NodeInventoryChange, method: String, inventory: NodeInventory, services: DaemonServices,
                       caller: CallContext, extra: [(String, JSON)]) throws(RPCError) -> NodeInventoryUpdate {
        try inventory.apply(c, overLimit: { count, limit in
            RPCError(code: RPCError.overloadedCode,
                     message: "overloaded: the node inventory would hold \(count) nodes, the limit is \(limit); remove nodes no scheduler places on (nodes.remove) or sync with replace: true",
                     data: .object(JSONObject(["limit": .int(Int64(limit)), "nodes": .int(Int64(count))])))
        }, confirm: { u throws(RPCError) in
            var details = JSONObject([JSONObject.Member(key: "count", value: .int(Int64(u.count))),
                                      JSONObject.Member(key: "revision", value: .string(u.revision)),
                                      JSONObject.Member(key: "changed", value: .int(Int64(u.changed))),
                                      JSONObject.Member(key: "removed", value: .int(Int64(u.removed)))])
            for (k, v) in extra { details.append(k, v) }
            try services.note(.change(method: method, caller: caller, subject: "nodes", details: .object(details)))
        })
    }

    /// Reads `place`'s `nodes`: each element a node name or a node object.
    static func queryNodes(_ json: JSON) throws(RPCError) -> [PlacementQuery.Node] {
        guard case .array(let items) = json else {
            throw .invalidParams(field: "params.nodes", "expected an array of node objects or node names, got \(json.kindName)")
        }
        var out: [PlacementQuery.Node] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            switch item {
            case .string(let name):
                out.append(.name(name))
            case .object:
                do throws(GuardrailParamError) { out.append(.object(try PlacementNode(json: item, path: "nodes[\(i)]"))) } catch { throw invalid(error) }
            default:
                throw .invalidParams(field: "params.nodes[\(i)]", "expected a node object {name, region?, labels?} or a node name, got \(item.kindName)")
            }
        }
        return out
    }

    /// Resolves `place`'s nodes: a name through the inventory's snapshot (read once, and only
    /// when a name occurs), an object as it is. Unknown names become `.unknown` candidates,
    /// which `Placement` rejects with `placement.unknown_node`. A node named twice is refused:
    /// the answer is keyed by node name.
    static func candidates(_ items: [PlacementQuery.Node], job: PlacementJob, snapshot: PolicySnapshot,
                           inventory: NodeInventory.Snapshot) throws(RPCError) -> [PlacementCandidate] {
        var out: [PlacementCandidate] = []
        out.reserveCapacity(items.count)
        // Prepared on the first name (a call with node objects only never needs it).
        var known: PreparedInventory? = nil
        // Inventory nodes this call named, one bit per inventory position (no hashing), and the
        // other names, for the duplicate check.
        var named: [UInt64] = []
        var others: [String] = []
        // Node objects are prepared together once read (see `PreparedNode.View.prepare`).
        var objects: [PlacementNode] = []
        var objectAt: [Int] = []
        for item in items {
            switch item {
            case .name(let name):
                if known == nil {
                    known = inventory.prepared(for: snapshot.guardrails, key: snapshot.revision)
                    named = Array(repeating: 0, count: (known!.nodes.count + 63) / 64)
                }
                if let k = known.unsafelyUnwrapped.index.position(of: name) {
                    let bit: UInt64 = 1 << UInt64(k & 63)
                    if named[k >> 6] & bit != 0 { throw duplicate(name, in: items) }
                    named[k >> 6] |= bit
                    out.append(.node(known.unsafelyUnwrapped.nodes[k]))
                } else {
                    others.append(name)
                    out.append(.unknown(name))
                }
            case .object(let node):
                others.append(node.name)
                objects.append(node)
                objectAt.append(out.count)
                out.append(.unknown(node.name))  // replaced by the prepared node below
            }
        }
        if !objects.isEmpty {
            for (k, n) in PreparedNode.View(snapshot.guardrails).prepare(objects, gpu: job.gxp).enumerated() {
                out[objectAt[k]] = .node(n)
            }
        }
        if !others.isEmpty {
            var seen = Set<ScalarString>(minimumCapacity: others.count)
            for name in others {
                let key = ScalarString(name)
                if !seen.insert(key).inserted { throw duplicate(name, in: items) }
                if let k = known?.index.position(of: name), named[k >> 6] & (1 << UInt64(k & 63)) != 0 { throw duplicate(name, in: items) }
            }
        }
        return out
    }

    /// The error for a node named twice, pointing at its second occurrence (found again here:
    /// this is the rare path, so the main loop keeps no positions).
    private static func duplicate(_ name: String, in items: [PlacementQuery.Node]) -> RPCError {
        let key = ScalarString(name)
        var at: [Int] = []
        for (i, item) in items.enumerated() {
            if ScalarString(item.name) == key { at.append(i) }
            if at.count == 2 { break }
        }
        guard at.count == 2 else { return .invalidParams(field: "params.nodes", "node \"\(name)\" is named twice; name each node once") }
        return .invalidParams(field: "params.nodes[\(at[1])]", "node \"\(name)\" is already params.nodes[\(at[0])]; name each node once")
    }
}

extension PlacementNode {
    /// `{name, region, labels}` as `nodes.sync` takes it (region null when absent).
    var json: JSON {
        var labels = JSONObject()
        labels.members.reserveCapacity(self.labels.count)
        for (k, v) in self.labels.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) { labels.append(k, .string(v)) }
        return .object(JSONObject([JSONObject.Member(key: "name", value: .string(name)),
                                   JSONObject.Member(key: "region", value: region.map { .string($0) } ?? .null),
                                   JSONObject.Member(key: "labels", value: .object(labels))]))
    }
}
