import Cedar

/// Whether data identifies people (facts.md §1 step 1).
public enum DataState: String, Sendable, Hashable, CaseIterable {
    case identified, pseudonymised, anonymised
}

/// The guardrail-relevant attributes of one data entity (see docs/guardrails.md, "Attribute
/// conventions"). Built from a Cedar entity by `init(entity:)` or directly by tests.
public struct DatasetAttributes: Sendable, Hashable {
    public var id: String
    /// Jurisdiction the data is resident in (ISO code, EL/UK normalised).
    public var residency: String?
    public var state: DataState
    /// Reference to the documented anonymisation assessment. `anonymised` without one is
    /// treated as personal data: anonymisation is never inferred (facts.md §1 step 1).
    public var anonymisationAssessment: String?
    public var dataClass: String?
    public var study: String?
    /// The consent cohort, when consent is recorded per cohort rather than per dataset.
    public var cohort: String?
    public var retentionClass: String?
    /// Trigger event -> when it happened. An event not listed has not happened yet.
    public var retentionTriggers: [String: CedarDatetime]
    /// A hold recorded on the entity itself (holds set through the store are added to this).
    public var legalHold: Bool

    public init(id: String, residency: String? = nil, state: DataState = .identified,
                anonymisationAssessment: String? = nil, dataClass: String? = nil, study: String? = nil,
                cohort: String? = nil, retentionClass: String? = nil,
                retentionTriggers: [String: CedarDatetime] = [:], legalHold: Bool = false) {
        self.id = id
        self.residency = residency.map(Jurisdictions.normalise)
        self.state = state
        self.anonymisationAssessment = anonymisationAssessment
        self.dataClass = dataClass; self.study = study; self.cohort = cohort
        self.retentionClass = retentionClass; self.retentionTriggers = retentionTriggers
        self.legalHold = legalHold
    }

    /// Personal data in the sense of facts.md §1: anything not anonymised with an assessment.
    public var isPersonal: Bool { !(state == .anonymised && anonymisationAssessment != nil) }

    /// The attribute names a data entity may carry; an entity with none of them is not data.
    public static let attributeNames = [
        "residency", "data_state", "anonymisation_assessment", "data_class", "study", "cohort",
        "retention_class", "retention_triggers", "legal_hold",
    ]

    /// Reads the conventions from a Cedar entity; nil when the entity carries none of them (a
    /// user, a role, an action). Throws `data.invalid_attribute` naming the attribute.
    public init?(entity: Entity) throws(Denial) {
        let a = entity.attrs
        guard Self.attributeNames.contains(where: { a.has($0) }) else { return nil }
        let id = entity.uid.id.value
        func str(_ key: String) throws(Denial) -> String? {
            guard let v = a[key] else { return nil }
            guard case .string(let s) = v else {
                throw Denial(.dataInvalidAttribute, "\(entity.uid).\(key) must be a string, got \(v.typeName)")
            }
            return s
        }
        // Studies and cohorts are often entities in the Cedar model (`study: Study::"ONC-301"`);
        // the guardrails need only their ids.
        func ref(_ key: String) throws(Denial) -> String? {
            if case .entity(let uid)? = a[key] { return uid.id.value }
            return try str(key)
        }
        var state = DataState.identified
        if let s = try str("data_state") {
            guard let st = DataState(rawValue: s) else {
                throw Denial(.dataInvalidAttribute, "\(entity.uid).data_state must be identified, pseudonymised or anonymised, got \"\(s)\"")
            }
            state = st
        }
        var residency = try str("residency")
        if let r = residency {
            // A misspelt residency ("Germany") must not make EU data look non-EU and free to move.
            residency = Jurisdictions.normalise(r)
            guard Jurisdictions.iso3166Alpha2.contains(residency!), residency!.utf8.count == 2 else {
                throw Denial(.dataInvalidAttribute, "\(entity.uid).residency must be an ISO 3166-1 alpha-2 code (EL and UK accepted), got \"\(r)\"")
            }
        }
        var triggers: [String: CedarDatetime] = [:]
        if let v = a["retention_triggers"] {
            guard case .record(let rec) = v else {
                throw Denial(.dataInvalidAttribute, "\(entity.uid).retention_triggers must be a record of event -> datetime, got \(v.typeName)")
            }
            for f in rec.fields {
                switch f.value {
                case .datetime(let d): triggers[f.key] = d
                case .string(let s):
                    guard let d = CivilTime.parseDate(s) else {
                        throw Denial(.dataInvalidAttribute, "\(entity.uid).retention_triggers.\(f.key) is not a date: \"\(s)\"")
                    }
                    triggers[f.key] = d
                default:
                    throw Denial(.dataInvalidAttribute, "\(entity.uid).retention_triggers.\(f.key) must be a datetime or a YYYY-MM-DD string, got \(f.value.typeName)")
                }
            }
        }
        var hold = false
        if let v = a["legal_hold"] {
            guard case .bool(let b) = v else {
                throw Denial(.dataInvalidAttribute, "\(entity.uid).legal_hold must be a boolean, got \(v.typeName)")
            }
            hold = b
        }
        // The assessment is what makes anonymised data non-personal: an empty one is none.
        let assessment = try str("anonymisation_assessment")
        if let s = assessment, s.unicodeScalars.allSatisfy(\.properties.isWhitespace) {
            throw Denial(.dataInvalidAttribute, "\(entity.uid).anonymisation_assessment must name the assessment, got \"\(s)\"")
        }
        self.init(id: id, residency: residency, state: state,
                  anonymisationAssessment: assessment, dataClass: try str("data_class"),
                  study: try ref("study"), cohort: try ref("cohort"), retentionClass: try str("retention_class"),
                  retentionTriggers: triggers, legalHold: hold)
    }
}

extension DatasetAttributes {
    /// The studies a principal belongs to, from its `studies` attribute (a set of study ids or
    /// Study entities); nil when the principal has no such attribute.
    public static func principalStudies(_ principal: Entity) -> Set<String>? {
        guard case .set(let s)? = principal.attrs["studies"] else { return nil }
        var out = Set<String>()
        for v in s.elements {
            switch v {
            case .string(let id): out.insert(id)
            case .entity(let uid): out.insert(uid.id.value)
            default: continue
            }
        }
        return out
    }
}

extension Denial: Error {}
