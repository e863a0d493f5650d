import Cedar
import CustosJSON

/// An adequacy decision (GDPR Art 45), facts.md §1 table.
public struct AdequacyDecision: Sendable, Hashable {
    public var destination: String
    /// Nil for the whole territory; otherwise the qualification the receiving region must carry
    /// (the recipient matters, not only the country: US only for DPF-certified organisations).
    public var requiredQualification: String?
    public var decision: String
    public var validUntil: CedarDatetime?
    public var excludedDataClasses: Set<String>
}

/// Appropriate safeguards on record (Art 46 SCC, Art 47 BCR), facts.md §1 step 4.
public struct TransferBasis: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable { case scc, bcr }
    public var id: String
    public var kind: Kind
    /// SCC: the contract and the Decision (EU) 2021/914 module. BCR: the approval reference.
    public var reference: String
    /// The transfer impact assessment on file.
    public var tia: String
    /// SCC: the receiving regions (the recipient the clauses were signed with).
    public var regions: Set<String>
    /// BCR: the group; only regions operated by a member of it may receive.
    public var group: String?
    /// BCR: the destination jurisdictions the rules cover.
    public var destinations: Set<String>
    /// Data classes this basis covers; `*` for all.
    public var dataClasses: Set<String>

    func covers(dataClass: String?) -> Bool {
        dataClasses.contains("*") || (dataClass.map { dataClasses.containsScalar($0) } ?? false)
    }
}

/// transfers.json: adequacy destinations and the accepted transfer bases.
public struct TransfersConfig: Sendable {
    public var lastReviewed: CedarDatetime
    public var adequacy: [String: AdequacyDecision]
    public var bases: [TransferBasis]

    static let file = "guardrails/transfers.json"

    static func parse(_ json: JSON, regions: RegionsConfig) throws(GuardrailConfigError) -> TransfersConfig {
        let r = try ConfigReader(file: file, path: "$", json: json)
        try r.only(["last_reviewed", "illustrative", "adequacy", "bases"])
        let reviewed = try r.lastReviewed()
        _ = try r.bool("illustrative", default: false)

        var adequacy: [String: AdequacyDecision] = [:]
        for a in try r.array("adequacy", required: false) {
            try a.only(["destination", "scope", "requires", "decision", "valid_until", "review_by", "excluded_data_classes"])
            let raw = try a.string("destination")
            let code = Jurisdictions.normalise(raw)
            guard regions.isKnownJurisdiction(code) else {
                throw a.error("destination", "\"\(raw)\" is neither an ISO 3166-1 alpha-2 code nor a jurisdiction declared in regions.json")
            }
            if regions.isEEA(code) {
                throw a.error("destination", "\(Jurisdictions.written(raw)) is in the EEA: moving data there is not a transfer (facts.md §1 step 2)")
            }
            if adequacy[code] != nil {
                throw a.error("destination", "a second adequacy entry for \(Jurisdictions.written(raw)); merge them")
            }
            let scope = try a.string("scope")
            var requires: String?
            switch scope {
            case "whole_territory":
                if a.object["requires"] != nil {
                    throw a.error("requires", "contradicts scope \"whole_territory\"; use scope \"qualified_recipients\"")
                }
            case "qualified_recipients":
                requires = try a.string("requires")
            default:
                throw a.error("scope", "expected \"whole_territory\" or \"qualified_recipients\", got \"\(scope)\"")
            }
            _ = try a.optionalDate("review_by")
            adequacy[code] = AdequacyDecision(
                destination: code, requiredQualification: requires, decision: try a.string("decision"),
                validUntil: try a.optionalDate("valid_until"),
                excludedDataClasses: Set(try a.strings("excluded_data_classes", required: false)))
        }

        var bases: [TransferBasis] = []
        var coveredRegion: [String: String] = [:]      // "region|class" -> basis id
        var coveredDestination: [String: String] = [:] // "group|destination|class" -> basis id
        for b in try r.array("bases", required: false) {
            let id = try b.string("id")
            if bases.contains(where: { $0.id.scalarEquals(id) }) { throw b.error("id", "basis id \"\(id)\" is used twice") }
            let kindName = try b.string("kind")
            guard let kind = TransferBasis.Kind(rawValue: kindName) else {
                throw b.error("kind", "expected \"scc\" or \"bcr\", got \"\(kindName)\"; Art 49 derogations are for occasional transfers only and never a configured basis (facts.md §1 step 5)")
            }
            let classes = try b.strings("data_classes")
            if classes.isEmpty { throw b.error("data_classes", "list at least one data class, or \"*\"") }
            var basis = TransferBasis(id: id, kind: kind, reference: "", tia: "", regions: [], group: nil,
                                      destinations: [], dataClasses: Set(classes))
            switch kind {
            case .scc:
                try b.only(["id", "kind", "reference", "tia", "regions", "data_classes"])
                let names = try b.strings("regions")
                if names.isEmpty { throw b.error("regions", "list the receiving regions the clauses cover") }
                for (i, name) in names.enumerated() {
                    let p = ConfigReader.child(b.path, "regions") + "[\(i)]"
                    guard let reg = regions.regions[name] else {
                        throw GuardrailConfigError(file: file, path: p, message: "region \"\(name)\" is not defined in regions.json")
                    }
                    if regions.isEEA(reg.jurisdiction) {
                        throw GuardrailConfigError(file: file, path: p, message: "region \"\(name)\" is in the EEA (\(reg.jurisdiction)); no transfer basis is needed there")
                    }
                    for c in classes {
                        if let other = coveredRegion[name + "|" + c] {
                            throw GuardrailConfigError(file: file, path: p, message: "region \"\(name)\" and data class \"\(c)\" are already covered by basis \"\(other)\"; overlapping bases make the recorded basis ambiguous")
                        }
                        coveredRegion[name + "|" + c] = id
                    }
                }
                basis.regions = Set(names)
            case .bcr:
                try b.only(["id", "kind", "reference", "tia", "group", "destinations", "data_classes"])
                let group = try b.string("group")
                let dests = try b.strings("destinations")
                if dests.isEmpty { throw b.error("destinations", "list the destination jurisdictions the rules cover") }
                var set = Set<String>()
                for (i, raw) in dests.enumerated() {
                    let p = ConfigReader.child(b.path, "destinations") + "[\(i)]"
                    let code = Jurisdictions.normalise(raw)
                    guard regions.isKnownJurisdiction(code) else {
                        throw GuardrailConfigError(file: file, path: p, message: "\"\(raw)\" is neither an ISO 3166-1 alpha-2 code nor a declared jurisdiction")
                    }
                    if regions.isEEA(code) {
                        throw GuardrailConfigError(file: file, path: p, message: "\(Jurisdictions.written(raw)) is in the EEA; no transfer basis is needed there")
                    }
                    for c in classes {
                        let key = group + "|" + code + "|" + c
                        if let other = coveredDestination[key] {
                            throw GuardrailConfigError(file: file, path: p, message: "\(Jurisdictions.written(raw)) and data class \"\(c)\" are already covered for group \"\(group)\" by basis \"\(other)\"")
                        }
                        coveredDestination[key] = id
                    }
                    set.insert(code)
                }
                basis.group = group
                basis.destinations = set
            }
            basis.reference = try b.string("reference")
            basis.tia = try b.string("tia")
            bases.append(basis)
        }
        return TransfersConfig(lastReviewed: reviewed, adequacy: adequacy, bases: bases)
    }
}
