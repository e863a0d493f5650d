import Cedar

/// Purpose and consent (facts.md §2): the legal basis belongs to the purpose; a consent-based
/// purpose needs granted_at <= now < withdrawn_at; other bases are not stopped by withdrawal.
public enum ConsentCheck {
    public static func check(_ data: DatasetAttributes, purpose: String?, config: GuardrailConfig,
                             consent: ConsentSnapshot, now: CedarDatetime) -> Result<Obligation?, Denial> {
        guard let purposes = config.purposes, data.isPersonal else { return .success(nil) }
        guard let name = purpose else {
            return .failure(Denial(.purposeMissing, "dataset \(data.id) is personal data and the request does not say for which purpose"))
        }
        guard let p = purposes.purposes.scalarLookup(name) else {
            return .failure(Denial(.purposeUnknown, "purpose \"\(name)\" is not defined in guardrails/purposes.json"))
        }
        let obligation = Obligation.legalBasis(purpose: name, basis: p.legalBasis.rawValue)
        guard p.consentBased else { return .success(obligation) }
        // From here the answer rests on the consent records: a view that may miss a withdrawal
        // must not decide it.
        if let why = consent.unavailable {
            return .failure(Denial(.stateStale, "purpose \"\(name)\" rests on consent and the consent of dataset \(data.id) cannot be checked: \(why)"))
        }
        switch consent.consentState(dataset: data.id, cohort: data.cohort, purpose: name, at: now) {
        case .granted:
            return .success(obligation)
        case .withdrawn(let at, let subject):
            return .failure(Denial(.consentWithdrawn,
                                   "consent of \(subject) for purpose \"\(name)\" was withdrawn at \(CivilTime.format(at)); processing that rests on it stopped then"))
        case .none:
            return .failure(Denial(.consentMissing,
                                   "purpose \"\(name)\" rests on consent and no consent of dataset \(data.id)\(data.cohort.map { " or cohort \($0)" } ?? "") covers \(CivilTime.format(now))"))
        }
    }
}

/// Study isolation: data of one study is used only in that study's environment, and only by
/// its members. The environment is what the request or job declares (`context.study`,
/// `job.study`), else the principal's own studies; declaring the data's study does not make
/// the principal a member of it, so membership is checked as well.
public enum IsolationCheck {
    /// `requestStudy` is the study environment the request or job declares; `principalStudies`
    /// the studies the principal belongs to (its `studies` attribute, nil when it has none).
    /// Every reason found is returned, in this order:
    ///
    /// - no declared study: the principal's studies are the environment; data of a study the
    ///   principal is not in is `isolation.study_mismatch`, and a principal without `studies`
    ///   is `isolation.study_missing`;
    /// - a declared study other than the data's is `isolation.study_mismatch`, and a principal
    ///   who is not a member of the data's study is `isolation.not_member` (a principal without
    ///   `studies` is a member of none).
    public static func check(_ data: DatasetAttributes, requestStudy: String?, principalStudies: Set<String>?) -> [Denial] {
        guard let s = data.study else { return [] }
        guard let r = requestStudy else {
            guard let ps = principalStudies else {
                return [Denial(.isolationStudyMissing, "dataset \(data.id) belongs to study \(s) and neither the request nor the principal names a study")]
            }
            return ps.containsScalar(s) ? []
                : [Denial(.isolationStudyMismatch, "dataset \(data.id) belongs to study \(s), which the principal is not a member of")]
        }
        var out: [Denial] = []
        if !r.scalarEquals(s) {
            out.append(Denial(.isolationStudyMismatch, "dataset \(data.id) belongs to study \(s), the request runs in study \(r)"))
        }
        if !(principalStudies?.containsScalar(s) ?? false) {
            out.append(Denial(.isolationNotMember, principalStudies == nil
                ? "dataset \(data.id) belongs to study \(s) and the principal has no studies attribute, so it is a member of no study"
                : "dataset \(data.id) belongs to study \(s), which the principal is not a member of (naming the study in the request does not make it one)"))
        }
        return out
    }
}
