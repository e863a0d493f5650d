import Cedar
import CustosJSON

/// compute.json: what GxP workloads may run on (qualified GPU models with their driver versions,
/// container images by digest), and the node labels that say what a node is.
public struct ComputeConfig: Sendable {
    public var lastReviewed: CedarDatetime
    /// GPU model -> qualified driver versions.
    public var gpuModels: [String: Set<String>]
    /// Qualified image digests (`sha256:<64 hex>`).
    public var imageDigests: Set<String>
    public var labels: NodeLabelKeys
    /// Studies confined to their own nodes, in file order (see `DedicatedNodes`).
    public var dedicated: [DedicatedNodes] = []

    static let file = "guardrails/compute.json"

    static func parse(_ json: JSON) throws(GuardrailConfigError) -> ComputeConfig {
        let r = try ConfigReader(file: file, path: "$", json: json)
        try r.only(["last_reviewed", "labels", "gpu_models", "images", "dedicated"])
        let reviewed = try r.lastReviewed()
        var labels = NodeLabelKeys()
        if r.object["labels"] != nil {
            let l = try ConfigReader(file: file, path: "$.labels", json: r.object["labels"]!)
            try l.only(["gpu_model", "gpu_driver", "study"])
            labels.gpuModel = try l.optionalString("gpu_model") ?? labels.gpuModel
            labels.gpuDriver = try l.optionalString("gpu_driver") ?? labels.gpuDriver
            labels.study = try l.optionalString("study") ?? labels.study
        }
        var models: [String: Set<String>] = [:]
        for g in try r.array("gpu_models") {
            try g.only(["model", "drivers"])
            let model = try g.string("model")
            if models[model] != nil { throw g.error("model", "GPU model \"\(model)\" is listed twice; merge its drivers") }
            let drivers = try g.strings("drivers")
            if drivers.isEmpty { throw g.error("drivers", "list at least one qualified driver version") }
            models[model] = Set(drivers)
        }
        var digests = Set<String>()
        for i in try r.array("images") {
            try i.only(["name", "digest"])
            _ = try i.string("name")
            let d = try i.string("digest")
            let b = Array(d.utf8)
            let hex = b.dropFirst(7).allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
            guard b.count == 71, d.hasPrefix("sha256:"), hex else {
                throw i.error("digest", "expected \"sha256:\" and 64 lowercase hex digits, got \"\(d)\"")
            }
            guard digests.insert(d).inserted else { throw i.error("digest", "image digest listed twice") }
        }
        var config = ComputeConfig(lastReviewed: reviewed, gpuModels: models, imageDigests: digests, labels: labels)
        config.dedicated = try DedicatedNodes.parse(r)
        return config
    }
}

/// A study confined to a set of nodes (`dedicated` in compute.json): its jobs run on those
/// nodes only (`isolation.not_dedicated` elsewhere), and those nodes run no other study's job
/// (`isolation.study_mismatch`). A node belongs to the set when it carries every label of
/// `labels` with that value, or when its name is in `nodes` (a node group).
///
///     "dedicated": [{"study": "CARD-201", "labels": {"node-restriction.kubernetes.io/study": "CARD-201"}},
///                   {"study": "RARE-7", "nodes": ["gpu-rare-01", "gpu-rare-02"]}]
///
/// Labels should be ones the node cannot set on itself: in Kubernetes a key under
/// `node-restriction.kubernetes.io/`, which the NodeRestriction admission plugin keeps kubelets
/// from setting (callers.md §3.1); in Slurm, node features of slurm.conf.
public struct DedicatedNodes: Sendable {
    public var study: String
    /// Key -> value, every one required; empty when the set is given by names only.
    public var labels: [(key: String, value: String)]
    /// Node names; empty when the set is given by labels only.
    public var nodes: Set<String>

    /// How the set is written, for messages.
    public var selector: String {
        var parts: [String] = []
        if !labels.isEmpty { parts.append("labels " + labels.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")) }
        if !nodes.isEmpty { parts.append("nodes " + nodes.sorted { $0.scalarLess($1) }.joined(separator: ", ")) }
        return parts.joined(separator: " or ")
    }

    @inline(__always) func contains(name: String, labels nodeLabels: [String: String]) -> Bool {
        if !nodes.isEmpty, nodes.containsScalar(name) { return true }
        guard !labels.isEmpty else { return false }
        for l in labels {
            guard let v = nodeLabels.scalarLookup(l.key), v.scalarEquals(l.value) else { return false }
        }
        return true
    }

    static func parse(_ r: ConfigReader) throws(GuardrailConfigError) -> [DedicatedNodes] {
        var out: [DedicatedNodes] = []
        var owner: [String: String] = [:]  // node name -> study, across entries
        for e in try r.array("dedicated", required: false) {
            try e.only(["study", "labels", "nodes"])
            let study = try e.string("study")
            if out.contains(where: { $0.study.scalarEquals(study) }) {
                throw e.error("study", "study \"\(study)\" has a dedicated entry already; give one entry per study (labels and nodes may be combined)")
            }
            var labels: [(key: String, value: String)] = []
            if let l = e.object["labels"] {
                guard case .object(let o) = l else { throw e.error("labels", "expected an object of label key -> value, got \(l.kindName)") }
                let base = ConfigReader.child(e.path, "labels")
                for m in o.members {
                    guard case .string(let v) = m.value, !v.isEmpty, !m.key.isEmpty else {
                        throw GuardrailConfigError(file: e.file, path: ConfigReader.child(base, m.key),
                                                   message: "expected a non-empty label key with a non-empty string value, got \(m.value.kindName)")
                    }
                    labels.append((m.key, v))
                }
            }
            let names = try e.strings("nodes", required: false)
            if e.object["labels"] != nil, labels.isEmpty { throw e.error("labels", "list at least one label, or leave the member out") }
            if e.object["nodes"] != nil, names.isEmpty { throw e.error("nodes", "list at least one node, or leave the member out") }
            if labels.isEmpty && names.isEmpty {
                throw e.error(nil, "say which nodes study \(study) is dedicated to: \"labels\" (every label must match) and/or \"nodes\" (node names)")
            }
            for n in names {
                if let other = owner.first(where: { $0.key.scalarEquals(n) })?.value {
                    throw e.error("nodes", "node \(n) is dedicated to study \(other) already; a node is dedicated to one study")
                }
                owner[n] = study
            }
            if !labels.isEmpty, let same = out.first(where: { o in
                o.labels.count == labels.count && o.labels.allSatisfy { l in labels.contains { $0.key.scalarEquals(l.key) && $0.value.scalarEquals(l.value) } }
            }) {
                throw e.error("labels", "the same labels select the nodes of study \(same.study); a node is dedicated to one study")
            }
            out.append(DedicatedNodes(study: study, labels: labels, nodes: Set(names)))
        }
        return out
    }
}

/// The node label names placement reads; overridable in compute.json `labels`.
public struct NodeLabelKeys: Sendable, Hashable {
    public var gpuModel = "custos.io/gpu-model"
    public var gpuDriver = "custos.io/gpu-driver"
    /// A node carrying this label is dedicated to that study and runs no other study's jobs.
    public var study = "custos.io/study"
    public init() {}
}
