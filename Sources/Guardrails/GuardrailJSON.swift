import Cedar
import CustosJSON

/// A malformed `place` or `transfer` parameter, naming the field (JSON-RPC invalid params).
public struct GuardrailParamError: Error, Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public var message: String
    public init(path: String, message: String) { self.path = path; self.message = message }
    public var description: String { "\(path): \(message)" }
}

private func str(_ o: JSON, _ key: String, _ path: String, required: Bool) throws(GuardrailParamError) -> String? {
    guard let v = o[key], !v.isNull else {
        if required { throw GuardrailParamError(path: path + "." + key, message: "missing (required)") }
        return nil
    }
    guard case .string(let s) = v else { throw GuardrailParamError(path: path + "." + key, message: "expected a string, got \(v.kindName)") }
    return s
}

/// Refuses a member of `o` that is not in `allowed`: a misspelt flag (`"gpx": true`) must not
/// leave the real one at its default and pass.
private func only(_ o: JSONObject, _ allowed: [String], _ path: String, _ what: String) throws(GuardrailParamError) {
    if let m = o.firstUnknownMember(allowed: allowed) {
        throw GuardrailParamError(path: path + "." + m.key, message: "unknown member (\(what) has \(allowed.joined(separator: ", ")))")
    }
}

extension PlacementJob {
    static let members = ["id", "principal", "study", "purpose", "datasets", "gxp", "image", "images", "pod"]

    /// Reads `{id, principal, study?, purpose?, datasets:[ids], gxp?, image? | images?, pod?}`;
    /// any other member is an error naming it. `image` is one image, `images` every image of a
    /// job that runs several (not both). `pod` is `{namespace, name, uid}`, all strings.
    public init(json: JSON, path: String = "job") throws(GuardrailParamError) {
        guard case .object(let o) = json else { throw GuardrailParamError(path: path, message: "expected an object, got \(json.kindName)") }
        try only(o, Self.members, path, "a job")
        var ids: [String] = []
        guard case .array(let a)? = json["datasets"] else {
            throw GuardrailParamError(path: path + ".datasets", message: "expected an array of dataset ids")
        }
        for (i, e) in a.enumerated() {
            guard case .string(let s) = e else { throw GuardrailParamError(path: path + ".datasets[\(i)]", message: "expected a string, got \(e.kindName)") }
            ids.append(s)
        }
        if let (i, why) = Self.datasetsProblem(ids) { throw GuardrailParamError(path: path + ".datasets[\(i)]", message: why) }
        var gxp = false
        if let g = json["gxp"], !g.isNull {
            guard case .bool(let b) = g else { throw GuardrailParamError(path: path + ".gxp", message: "expected true or false, got \(g.kindName)") }
            gxp = b
        }
        var images: [String] = []
        if let l = json["images"], !l.isNull {
            guard json["image"] == nil || json["image"]!.isNull else {
                throw GuardrailParamError(path: path + ".images", message: "give image (one) or images (several), not both")
            }
            guard case .array(let a) = l else { throw GuardrailParamError(path: path + ".images", message: "expected an array of image references, got \(l.kindName)") }
            for (i, e) in a.enumerated() {
                guard case .string(let s) = e else { throw GuardrailParamError(path: path + ".images[\(i)]", message: "expected a string, got \(e.kindName)") }
                images.append(s)
            }
        }
        var pod: Pod? = nil
        if let p = json["pod"], !p.isNull {
            guard case .object(let po) = p else { throw GuardrailParamError(path: path + ".pod", message: "expected an object {namespace, name, uid}, got \(p.kindName)") }
            try only(po, ["namespace", "name", "uid"], path + ".pod", "a pod")
            pod = Pod(namespace: try str(p, "namespace", path + ".pod", required: true)!, name: try str(p, "name", path + ".pod", required: true)!,
                      uid: try str(p, "uid", path + ".pod", required: true)!)
        }
        self.init(id: try str(json, "id", path, required: true)!, principal: try str(json, "principal", path, required: true)!,
                  study: try str(json, "study", path, required: false), purpose: try str(json, "purpose", path, required: false),
                  datasets: ids, gxp: gxp, image: try str(json, "image", path, required: false), images: images, pod: pod)
    }
}

extension PlacementNode {
    static let members = ["name", "region", "labels"]

    /// Reads `{name, region?, labels?: {string: string}}`; any other member is an error naming
    /// it. Label names are free (they are the node's own labels); their values must be strings.
    public init(json: JSON, path: String) throws(GuardrailParamError) {
        guard case .object(let o) = json else { throw GuardrailParamError(path: path, message: "expected an object, got \(json.kindName)") }
        try only(o, Self.members, path, "a node")
        var labels: [String: String] = [:]
        if let l = json["labels"], !l.isNull {
            guard case .object(let o) = l else { throw GuardrailParamError(path: path + ".labels", message: "expected an object, got \(l.kindName)") }
            labels.reserveCapacity(o.count)
            for m in o.members {
                guard case .string(let s) = m.value else {
                    throw GuardrailParamError(path: path + ".labels." + m.key, message: "expected a string, got \(m.value.kindName)")
                }
                labels[m.key] = s
            }
        }
        self.init(name: try str(json, "name", path, required: true)!, region: try str(json, "region", path, required: false), labels: labels)
    }

    /// Reads the `nodes` array.
    public static func list(json: JSON) throws(GuardrailParamError) -> [PlacementNode] {
        guard case .array(let a) = json else { throw GuardrailParamError(path: "nodes", message: "expected an array, got \(json.kindName)") }
        var out: [PlacementNode] = []
        out.reserveCapacity(a.count)
        for (i, e) in a.enumerated() { out.append(try PlacementNode(json: e, path: "nodes[\(i)]")) }
        return out
    }
}

extension TransferRequest {
    static let members = ["principal", "dataset", "from", "to", "kind", "basis"]

    /// Reads `{principal, dataset, from, to, kind, basis?}`; any other member is an error naming it.
    public init(json: JSON) throws(GuardrailParamError) {
        guard case .object(let o) = json else { throw GuardrailParamError(path: "params", message: "expected an object, got \(json.kindName)") }
        try only(o, Self.members, "params", "a transfer")
        let k = try str(json, "kind", "params", required: true)!
        guard let kind = TransferKind(rawValue: k) else {
            throw GuardrailParamError(path: "params.kind", message: "expected one of \(TransferKind.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(k)\"")
        }
        self.init(principal: try str(json, "principal", "params", required: true)!, dataset: try str(json, "dataset", "params", required: true)!,
                  from: try str(json, "from", "params", required: true)!, to: try str(json, "to", "params", required: true)!,
                  kind: kind, basis: try str(json, "basis", "params", required: false))
    }
}

extension JSONWriter {
    /// `{"guardrail":..., "code":..., "message":...}`
    public mutating func denial(_ d: Denial) {
        raw("{\"guardrail\":"); string(d.guardrail.rawValue)
        raw(",\"code\":"); string(d.code.rawValue)
        raw(",\"message\":"); string(d.message)
        raw("}")
    }

    /// `{"kind":"transfer_basis","dataset":...,"destination":...,"basis":...}` and the like.
    public mutating func obligation(_ o: Obligation) {
        raw("{\"kind\":"); string(o.kind)
        switch o {
        case .transferBasis(let d, let dest, let b):
            raw(",\"dataset\":"); string(d); raw(",\"destination\":"); string(dest); raw(",\"basis\":"); string(b)
        case .dispose(let d, let e):
            raw(",\"dataset\":"); string(d); raw(",\"expired_at\":"); string(e)
        case .legalBasis(let p, let b):
            raw(",\"purpose\":"); string(p); raw(",\"basis\":"); string(b)
        }
        raw("}")
    }

    public mutating func denials(_ ds: [Denial]) {
        byte(UInt8(ascii: "["))
        for (i, d) in ds.enumerated() { if i > 0 { byte(UInt8(ascii: ",")) }; denial(d) }
        byte(UInt8(ascii: "]"))
    }

    public mutating func obligations(_ os: [Obligation]) {
        byte(UInt8(ascii: "["))
        for (i, o) in os.enumerated() { if i > 0 { byte(UInt8(ascii: ",")) }; obligation(o) }
        byte(UInt8(ascii: "]"))
    }

    /// The members `"allowed":[...],"rejected":{...},"obligations":[...],"node_obligations":{...}`
    /// without braces, so the daemon can add `decision_id`.
    public mutating func placementMembers(_ r: PlacementResult) {
        raw("\"allowed\":[")
        for (i, n) in r.allowed.enumerated() { if i > 0 { byte(UInt8(ascii: ",")) }; string(n) }
        raw("],\"rejected\":{")
        for (i, e) in r.rejected.enumerated() {
            if i > 0 { byte(UInt8(ascii: ",")) }
            string(e.node); byte(UInt8(ascii: ":")); denials(e.reasons)
        }
        raw("},\"obligations\":"); obligations(r.obligations)
        raw(",\"node_obligations\":{")
        for (i, e) in r.nodeObligations.enumerated() {
            if i > 0 { byte(UInt8(ascii: ",")) }
            string(e.node); byte(UInt8(ascii: ":")); obligations(e.obligations)
        }
        raw("}")
    }
}

extension JSONWriter {
    /// `retention.status`: `{"dataset", "retention_class", "expiry", "expired", "disposal_due",
    /// "holds":[...], "rules":[{"id","citation","period","trigger","triggered_at","expiry"}]}`;
    /// dates as `YYYY-MM-DD` (or full UTC timestamps), null while unknown.
    public mutating func retentionStatus(_ st: RetentionStatus) {
        func date(_ d: CedarDatetime?, _ w: inout JSONWriter) {
            if let d { w.string(CivilTime.format(d)) } else { w.null() }
        }
        raw("{\"dataset\":"); string(st.dataset)
        raw(",\"retention_class\":"); if let c = st.retentionClass { string(c) } else { null() }
        raw(",\"expiry\":"); date(st.expiry, &self)
        raw(",\"expired\":"); bool(st.expired)
        raw(",\"disposal_due\":"); bool(st.disposalDue)
        raw(",\"holds\":[")
        for (i, h) in st.holds.enumerated() { if i > 0 { byte(UInt8(ascii: ",")) }; string(h) }
        raw("],\"rules\":[")
        for (i, r) in st.rules.enumerated() {
            if i > 0 { byte(UInt8(ascii: ",")) }
            raw("{\"id\":"); string(r.schedule.id)
            raw(",\"citation\":"); string(r.schedule.citation)
            raw(",\"period\":"); string(r.schedule.period.description)
            raw(",\"trigger\":"); string(r.schedule.trigger)
            raw(",\"triggered_at\":"); date(r.triggeredAt, &self)
            raw(",\"expiry\":"); date(r.expiry, &self)
            raw("}")
        }
        raw("]}")
    }

    /// A consent record: `{"subject":{"dataset"|"cohort": id}, "purpose", "granted_at",
    /// "withdrawn_at", "evidence", "granted_by", "withdrawn_by"}`.
    public mutating func consentRecord(_ r: ConsentRecord) {
        raw("{\"subject\":{"); string(r.subject.kind); byte(UInt8(ascii: ":")); string(r.subject.id)
        raw("},\"purpose\":"); string(r.purpose)
        raw(",\"granted_at\":"); string(CivilTime.format(r.grantedAt))
        raw(",\"withdrawn_at\":"); if let w = r.withdrawnAt { string(CivilTime.format(w)) } else { null() }
        raw(",\"evidence\":"); string(r.evidence)
        raw(",\"granted_by\":"); string(r.grantedBy)
        raw(",\"withdrawn_by\":"); if let w = r.withdrawnBy { string(w) } else { null() }
        raw("}")
    }
}
