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

/// Study isolation: data of one study is used only in that study's environment.
public enum IsolationCheck {
    /// `requestStudy` is the study environment the request or job declares; `principalStudies`
    /// the studies the principal belongs to (its `studies` attribute), used when the request
    /// declares none.
    public static func check(_ data: DatasetAttributes, requestStudy: String?, principalStudies: Set<String>?) -> Denial? {
        guard let s = data.study else { return nil }
        if let r = requestStudy {
            return r.scalarEquals(s) ? nil
                : Denial(.isolationStudyMismatch, "dataset \(data.id) belongs to study \(s), the request runs in study \(r)")
        }
        if let ps = principalStudies {
            return ps.containsScalar(s) ? nil
                : Denial(.isolationStudyMismatch, "dataset \(data.id) belongs to study \(s), which the principal is not a member of")
        }
        return Denial(.isolationStudyMissing, "dataset \(data.id) belongs to study \(s) and neither the request nor the principal names a study")
    }
}
