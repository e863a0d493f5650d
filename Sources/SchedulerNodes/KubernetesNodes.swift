import CustosJSON

/// How a Kubernetes `v1.Node` becomes a node of the daemon's inventory (`nodes.sync`'s
/// `{name, region, labels}`), for `custos k8s-node-sync`.
///
/// The region is read from one label, by default `node-restriction.kubernetes.io/region`: the
/// NodeRestriction admission plugin keeps a kubelet from setting labels under that prefix on its
/// own node, while `topology.kubernetes.io/region` is one a kubelet may set (callers.md §3.1),
/// so a compromised node could claim to be in the EU. Only the labels `labelKeys` select are
/// copied: the ones Custos reads (compute.json's keys, dedicated-node selectors, per-node
/// policies), which keeps a sync of thousands of nodes within one request line.
public struct KubernetesNodeMapping: Sendable {
    public static let defaultRegionLabel = "node-restriction.kubernetes.io/region"
    /// A key ending in `/` selects every label with that prefix; `*` selects every label.
    public static let defaultLabelKeys = ["custos.io/", "node-restriction.kubernetes.io/",
                                          "nvidia.com/gpu.product", "nvidia.com/cuda.driver-version.full",
                                          "topology.kubernetes.io/region", "topology.kubernetes.io/zone"]

    public var regionLabel: String
    public var labelKeys: [String]

    public init(regionLabel: String = KubernetesNodeMapping.defaultRegionLabel,
                labelKeys: [String] = KubernetesNodeMapping.defaultLabelKeys) {
        self.regionLabel = regionLabel; self.labelKeys = labelKeys
    }

    /// Whether a kubelet is kept from setting the region label on its own node: only keys under
    /// `node-restriction.kubernetes.io/` are (NodeRestriction, callers.md §3.1); a kubelet may set
    /// `topology.kubernetes.io/region` and any label outside the `kubernetes.io` namespaces.
    public var regionLabelIsProtected: Bool { regionLabel.hasPrefix("node-restriction.kubernetes.io/") }

    /// Why a node object was not usable.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    func keeps(_ key: String) -> Bool {
        for k in labelKeys {
            if k == "*" { return true }
            if k.hasSuffix("/") ? key.hasPrefix(k) : key.utf8.elementsEqual(k.utf8) { return true }
        }
        return false
    }

    /// `{"name", "region"?, "labels"}` for a `v1.Node` (`kind` `Node` or absent).
    public func node(_ json: JSON) throws(Failure) -> JSON {
        guard case .object(let o) = json else { throw Failure(message: "expected a Node object, got \(json.kindName)") }
        if let kind = o["kind"]?.stringValue, kind != "Node" { throw Failure(message: "expected kind Node, got \(kind)") }
        guard let meta = o["metadata"]?.objectValue, let name = meta["name"]?.stringValue, !name.isEmpty else {
            throw Failure(message: "a Node without metadata.name")
        }
        var labels = JSONObject()
        var region: String? = nil
        if let l = meta["labels"], !l.isNull {
            guard case .object(let lo) = l else { throw Failure(message: "node \(name): metadata.labels is not an object") }
            for m in lo.members {
                guard case .string(let v) = m.value else { throw Failure(message: "node \(name): label \(m.key) is not a string") }
                if m.key.utf8.elementsEqual(regionLabel.utf8) { region = v }
                if keeps(m.key) { labels.append(m.key, .string(v)) }
            }
        }
        var out = JSONObject([JSONObject.Member(key: "name", value: .string(name))])
        if let region { out.append("region", .string(region)) }
        out.append("labels", .object(labels))
        return .object(out)
    }

    /// What one document of `kubectl get nodes -o json` (a `NodeList`, or a `List` of nodes),
    /// of `kubectl get nodes -o json --watch` (one `Node` each), or of `--output-watch-events`
    /// (`{"type": "ADDED"|"MODIFIED"|"DELETED"|..., "object": Node}`) says.
    public enum Document: Sendable {
        /// The whole set of nodes.
        case all([JSON])
        /// Nodes added or changed.
        case upsert([JSON])
        /// Names of nodes deleted.
        case delete([String])
        /// A watch event that says nothing about nodes (`BOOKMARK`).
        case none
    }

    public func document(_ json: JSON) throws(Failure) -> Document {
        guard case .object(let o) = json else { throw Failure(message: "expected a JSON object (NodeList, Node or watch event), got \(json.kindName)") }
        if let type = o["type"]?.stringValue, let object = o["object"] {
            switch type {
            case "ADDED", "MODIFIED": return .upsert([try node(object)])
            case "DELETED":
                guard let n = object["metadata"]?["name"]?.stringValue else { throw Failure(message: "a DELETED event without object.metadata.name") }
                return .delete([n])
            case "BOOKMARK": return .none
            case "ERROR": throw Failure(message: "the watch reported an error: \(object["message"]?.stringValue ?? "(no message)")")
            default: throw Failure(message: "unknown watch event type \(type)")
            }
        }
        if case .array(let items)? = o["items"] {
            var out: [JSON] = []
            out.reserveCapacity(items.count)
            for item in items { out.append(try node(item)) }
            return .all(out)
        }
        return .upsert([try node(json)])
    }
}
