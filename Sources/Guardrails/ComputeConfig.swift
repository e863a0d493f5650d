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

    static let file = "guardrails/compute.json"

    static func parse(_ json: JSON) throws(GuardrailConfigError) -> ComputeConfig {
        let r = try ConfigReader(file: file, path: "$", json: json)
        try r.only(["last_reviewed", "labels", "gpu_models", "images"])
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
        return ComputeConfig(lastReviewed: reviewed, gpuModels: models, imageDigests: digests, labels: labels)
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
