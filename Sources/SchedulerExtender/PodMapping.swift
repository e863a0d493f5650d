import CustosJSON

/// How a pod becomes `place`'s `job` (docs/schedulers.md, "Pod to place"):
///
/// | `job` member | from the pod |
/// |---|---|
/// | `id` | `metadata.namespace` + `/` + `metadata.name` |
/// | `principal` | annotation `custos.io/principal` (an entity reference, `User::"alice"`), else the pod's service account as `ServiceAccount::"<namespace>/<serviceAccountName or default>"` |
/// | `study` | label `custos.io/study` |
/// | `purpose` | annotation `custos.io/purpose` |
/// | `datasets` | annotation `custos.io/datasets`, comma-separated ids (none: `[]`) |
/// | `gxp` | label `custos.io/gxp`: `"true"` or `"false"` (anything else is an error) |
/// | `image` | the image of every container and init container; a GxP pod must run one image |
/// | `pod` | `{namespace, name, uid}` from `metadata`, for the audit entry |
///
/// A pod author can write any label or annotation: an admission policy must set
/// `custos.io/principal` from the requesting user (or refuse pods that set it), or leave it out
/// so the service account (which Kubernetes vouches for) is the principal.
public struct PodMapping: Sendable {
    public var principalAnnotation: String? = "custos.io/principal"
    public var studyLabel = "custos.io/study"
    public var purposeAnnotation = "custos.io/purpose"
    public var datasetsAnnotation = "custos.io/datasets"
    public var gxpLabel = "custos.io/gxp"

    public init() {}

    /// Why a pod does not map onto a job.
    struct Failure: Error { var message: String }

    /// The `job` object of `place` for `pod` (a `v1.Pod` as the scheduler sends it).
    func job(_ pod: JSONObject) throws(Failure) -> JSON {
        guard case .object(let meta)? = pod["metadata"] else { throw Failure(message: "metadata missing") }
        let namespace = meta["namespace"]?.stringValue ?? "default"
        guard let name = meta["name"]?.stringValue, !name.isEmpty else { throw Failure(message: "metadata.name missing") }
        let labels = try Self.strings(meta["labels"], "metadata.labels")
        let annotations = try Self.strings(meta["annotations"], "metadata.annotations")
        let spec = pod["spec"]?.objectValue

        var job = JSONObject()
        job.append("id", .string(namespace + "/" + name))
        if let key = principalAnnotation, let p = annotations[key] {
            job.append("principal", .string(p))
        } else {
            let account = spec?["serviceAccountName"]?.stringValue ?? "default"
            job.append("principal", .string("ServiceAccount::\"" + namespace + "/" + account + "\""))
        }
        if let s = labels[studyLabel] { job.append("study", .string(s)) }
        if let p = annotations[purposeAnnotation] { job.append("purpose", .string(p)) }
        var datasets: [JSON] = []
        if let d = annotations[datasetsAnnotation] {
            for part in d.split(separator: ",", omittingEmptySubsequences: true) {
                let id = part.trimmingSpaces
                if !id.isEmpty { datasets.append(.string(id)) }
            }
        }
        job.append("datasets", .array(datasets))
        var gxp = false
        switch labels[gxpLabel] {
        case nil, "false"?: gxp = false
        case "true"?: gxp = true
        case let other?: throw Failure(message: "label \(gxpLabel) is \"\(other)\"; expected \"true\" or \"false\"")
        }
        if gxp { job.append("gxp", .bool(true)) }
        let images = Self.images(spec)
        if gxp, Set(images).count > 1 {
            throw Failure(message: "a GxP pod must run one qualified image; its containers run \(Set(images).sorted().joined(separator: ", "))")
        }
        if let first = images.first { job.append("image", .string(first)) }
        job.append("pod", .object(JSONObject([JSONObject.Member(key: "namespace", value: .string(namespace)),
                                              JSONObject.Member(key: "name", value: .string(name)),
                                              JSONObject.Member(key: "uid", value: .string(meta["uid"]?.stringValue ?? ""))])))
        return .object(job)
    }

    /// Every container's and init container's image, containers first.
    static func images(_ spec: JSONObject?) -> [String] {
        var out: [String] = []
        for key in ["containers", "initContainers"] {
            for c in spec?[key]?.arrayValue ?? [] { if let i = c["image"]?.stringValue { out.append(i) } }
        }
        return out
    }

    /// A `map[string]string` of the pod (labels, annotations); absent is empty.
    static func strings(_ v: JSON?, _ path: String) throws(Failure) -> [String: String] {
        guard let v, !v.isNull else { return [:] }
        guard case .object(let o) = v else { throw Failure(message: "\(path): expected an object, got \(v.kindName)") }
        var out: [String: String] = [:]
        for m in o.members {
            guard case .string(let s) = m.value else { throw Failure(message: "\(path).\(m.key): expected a string, got \(m.value.kindName)") }
            out[m.key] = s
        }
        return out
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs.
    var trimmingSpaces: String {
        var s = self[...]
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
