/// The guardrail that produced a denial or obligation.
public enum Guardrail: String, Sendable, Hashable, CaseIterable {
    case residency, purpose, consent, retention, isolation, compute, placement, data, state
}

/// Stable denial codes; their meaning is documented in docs/guardrails.md.
public enum DenialCode: String, Sendable, Hashable, CaseIterable {
    /// Personal EEA data would be processed or stored outside the EEA with no accepted basis.
    case residencyCrossBorder = "residency.cross_border"
    /// Resident personal data is touched and the request does not say where.
    case residencyLocationMissing = "residency.location_missing"
    /// The request names a region regions.json does not define.
    case residencyUnknownLocation = "residency.unknown_location"
    /// Personal data is touched and the request does not say why.
    case purposeMissing = "purpose.missing"
    /// The purpose is not in purposes.json.
    case purposeUnknown = "purpose.unknown"
    /// A consent-based purpose without a consent record covering this moment.
    case consentMissing = "consent.missing"
    /// A consent-based purpose whose consent was withdrawn before this moment.
    case consentWithdrawn = "consent.withdrawn"
    /// Deletion before the retention expiry (or before a trigger event is recorded).
    case retentionActive = "retention.active"
    /// Use after the retention expiry: the data is due for disposal.
    case retentionExpired = "retention.expired"
    /// Deletion while a legal hold is in force.
    case retentionLegalHold = "retention.legal_hold"
    /// A retention class with no schedule in retention.json.
    case retentionUnknownClass = "retention.unknown_class"
    /// The data belongs to another study than the environment the request, job or node runs in.
    case isolationStudyMismatch = "isolation.study_mismatch"
    /// The principal is not a member of the study the data belongs to (whatever study the
    /// request says it runs in).
    case isolationNotMember = "isolation.not_member"
    /// Study data is touched and neither the request nor the principal names a study.
    case isolationStudyMissing = "isolation.study_missing"
    /// The job's study is confined to its dedicated nodes (compute.json `dedicated`) and the
    /// node is not one of them.
    case isolationNotDedicated = "isolation.not_dedicated"
    /// A GxP job on a node whose GPU model or driver is not qualified.
    case computeUnqualifiedNode = "compute.unqualified_node"
    /// A GxP job whose image digest is not qualified (or is given by tag only).
    case computeUnqualifiedImage = "compute.unqualified_image"
    /// The principal may not place jobs (Cedar said no).
    case placementNotAuthorized = "placement.not_authorized"
    /// `place` named a node by a name the node inventory does not hold (see `nodes.sync`), or a
    /// `decide` named one as `context.node`.
    case placementUnknownNode = "placement.unknown_node"
    /// Stands last in a node's list of reasons cut at `Placement.maxReasonsPerNode`: how many
    /// more there were. The node is rejected for the ones listed already.
    case placementMoreReasons = "placement.more_reasons"
    /// A dataset named by the job or request is unknown to the entity store (for `decide`: a
    /// resource of a data type that the folder does not hold).
    case dataUnknownDataset = "data.unknown_dataset"
    /// A data entity carries a guardrail attribute with a wrong type or value.
    case dataInvalidAttribute = "data.invalid_attribute"
    /// The decision needs the consent or hold state, and the daemon's view of the shared store
    /// (fleet mode) is older than `max_staleness`: it may miss a withdrawal or a hold.
    case stateStale = "state.stale"

    /// The code's prefix. A switch rather than parsing the prefix: answers with many rejected
    /// nodes ask this once per denial.
    public var guardrail: Guardrail {
        switch self {
        case .residencyCrossBorder, .residencyLocationMissing, .residencyUnknownLocation: .residency
        case .purposeMissing, .purposeUnknown: .purpose
        case .consentMissing, .consentWithdrawn: .consent
        case .retentionActive, .retentionExpired, .retentionLegalHold, .retentionUnknownClass: .retention
        case .isolationStudyMismatch, .isolationNotMember, .isolationStudyMissing, .isolationNotDedicated: .isolation
        case .computeUnqualifiedNode, .computeUnqualifiedImage: .compute
        case .placementNotAuthorized, .placementUnknownNode, .placementMoreReasons: .placement
        case .dataUnknownDataset, .dataInvalidAttribute: .data
        case .stateStale: .state
        }
    }
}

/// One reason a guardrail said no.
public struct Denial: Sendable, Hashable, CustomStringConvertible {
    public var code: DenialCode
    public var message: String
    public var guardrail: Guardrail { code.guardrail }

    public init(_ code: DenialCode, _ message: String) { self.code = code; self.message = message }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// Something an allowed decision obliges the caller to do or record.
public enum Obligation: Sendable, Hashable {
    /// A cross-border processing or move rests on this basis; record it (facts.md §1 step 6).
    case transferBasis(dataset: String, destination: String, basis: String)
    /// Retention expired and no hold applies: disposal is a duty (facts.md §3).
    case dispose(dataset: String, expiredAt: String)
    /// The legal basis the purpose rests on, for the audit entry (facts.md §4 "why").
    case legalBasis(purpose: String, basis: String)

    public var kind: String {
        switch self {
        case .transferBasis: "transfer_basis"
        case .dispose: "dispose"
        case .legalBasis: "legal_basis"
        }
    }
}

/// What the guardrails say about one request: allowed (possibly with obligations) or denied
/// (with every reason found, in check order).
public struct GuardrailOutcome: Sendable, Hashable {
    public var denials: [Denial] = []
    public var obligations: [Obligation] = []
    public var allowed: Bool { denials.isEmpty }

    public init(denials: [Denial] = [], obligations: [Obligation] = []) {
        self.denials = denials; self.obligations = obligations
    }
}
