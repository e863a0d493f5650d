import Cedar

/// Where EU personal data may be processed or stored (facts.md §1).
public enum ResidencyCheck {
    /// The verdict for one dataset at one region: nil when no restriction applies (not personal,
    /// not EEA-resident, or guardrails inactive), else allowed with the basis used or denied.
    public enum Verdict: Sendable, Hashable {
        case unrestricted
        case allowed(Obligation?)
        case denied(Denial)
    }

    /// Whether the residency guardrail governs this dataset at all.
    public static func governs(_ data: DatasetAttributes, config: GuardrailConfig) -> Bool {
        guard let regions = config.regions, data.isPersonal else { return false }
        // Personal data that does not say where it is resident is treated as EEA-resident: the
        // strictest reading, never a guess in the permissive direction.
        guard let r = data.residency else { return true }
        return regions.isEEA(r)
    }

    /// Residency of `data` processed or stored in `region` (a region name from regions.json).
    public static func check(_ data: DatasetAttributes, region: String?, config: GuardrailConfig,
                             now: CedarDatetime) -> Verdict {
        guard governs(data, config: config), let regions = config.regions else { return .unrestricted }
        guard let name = region else {
            return .denied(Denial(.residencyLocationMissing,
                                  "dataset \(data.id) is EEA-resident personal data and the request does not say in which region it is processed"))
        }
        guard let reg = regions.regions.scalarLookup(name) else {
            return .denied(Denial(.residencyUnknownLocation, "region \"\(name)\" is not defined in guardrails/regions.json"))
        }
        return verdict(data, region: reg, config: config, now: now)
    }

    /// The verdict for a known region; the order follows facts.md §1: EEA, adequacy, safeguards.
    static func verdict(_ data: DatasetAttributes, region reg: Region, config: GuardrailConfig,
                        now: CedarDatetime) -> Verdict {
        guard let regions = config.regions else { return .unrestricted }
        let j = reg.jurisdiction
        if regions.isEEA(j) { return .allowed(nil) }
        var why: [String] = []
        if let a = config.transfers?.adequacy[j] {
            if let until = a.validUntil, !(now < until) {
                why.append("the adequacy decision for \(j) expired on \(CivilTime.format(until))")
            } else if let c = data.dataClass, a.excludedDataClasses.containsScalar(c) {
                why.append("the adequacy decision for \(j) excludes data class \"\(c)\"")
            } else if data.dataClass == nil, !a.excludedDataClasses.isEmpty {
                // Without a class the data cannot be shown outside the excluded ones, as a
                // transfer basis limited to some classes does not cover it either.
                why.append("the adequacy decision for \(j) excludes data classes (\(a.excludedDataClasses.sorted().joined(separator: ", "))) and dataset \(data.id) has no data_class")
            } else if let q = a.requiredQualification, !reg.qualifications.containsScalar(q) {
                why.append("adequacy for \(j) covers only recipients qualified \"\(q)\", which region \(reg.name) is not")
            } else {
                return .allowed(.transferBasis(dataset: data.id, destination: reg.name,
                                               basis: "adequacy:\(j) (\(a.decision))"))
            }
        }
        for b in config.transfers?.bases ?? [] where b.covers(dataClass: data.dataClass) {
            switch b.kind {
            case .scc where b.regions.containsScalar(reg.name):
                return .allowed(.transferBasis(dataset: data.id, destination: reg.name,
                                               basis: "scc:\(b.id) (\(b.reference); TIA \(b.tia))"))
            case .bcr where b.destinations.contains(j) && reg.group != nil && reg.group!.scalarEquals(b.group ?? ""):
                return .allowed(.transferBasis(dataset: data.id, destination: reg.name,
                                               basis: "bcr:\(b.id) (\(b.reference); TIA \(b.tia))"))
            default: continue
            }
        }
        if why.isEmpty { why.append("\(j) has no adequacy decision and no SCC or BCR basis covers region \(reg.name)") }
        let residency = data.residency ?? "undeclared (treated as EEA)"
        return .denied(Denial(.residencyCrossBorder,
                              "dataset \(data.id) (\(data.state.rawValue), resident \(residency)) may not be processed in region \(reg.name) (\(j)): \(why.joined(separator: "; "))"))
    }
}
