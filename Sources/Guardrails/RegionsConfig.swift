import Cedar
import CustosJSON

/// A place where processing or storage can happen: a cloud region, a data centre, a cluster.
public struct Region: Sendable, Hashable {
    public var name: String
    /// ISO 3166-1 alpha-2 code (EL/UK normalised) or a declared non-country jurisdiction.
    public var jurisdiction: String
    /// What the operator of this region is, where an adequacy decision depends on the recipient
    /// (facts.md §1 table: e.g. `dpf_certified` for the US, `pipeda_commercial` for Canada).
    public var qualifications: Set<String>
    /// The corporate group operating the region, for binding corporate rules (Art 47).
    public var group: String?
}

/// regions.json: where each region is, and which jurisdictions exist besides countries.
public struct RegionsConfig: Sendable {
    public var lastReviewed: CedarDatetime
    public var eea: Set<String>
    /// Non-country jurisdictions (facts.md §1: "a jurisdiction need not be a country"), code -> name.
    public var jurisdictions: [String: String]
    public var regions: [String: Region]
    /// Region names in document order, so diagnostics and listings are stable.
    public var regionOrder: [String]
    /// Region name -> position in `regionOrder`, so per-request work uses arrays, not dictionaries.
    var regionIndex: [String: Int] = [:]

    public func isEEA(_ jurisdiction: String) -> Bool { eea.contains(jurisdiction) }

    public func isKnownJurisdiction(_ code: String) -> Bool {
        Jurisdictions.iso3166Alpha2.contains(code) || jurisdictions[code] != nil
    }

    static let file = "guardrails/regions.json"

    static func parse(_ json: JSON) throws(GuardrailConfigError) -> RegionsConfig {
        let r = try ConfigReader(file: file, path: "$", json: json)
        try r.only(["last_reviewed", "eea", "jurisdictions", "regions"])
        let reviewed = try r.lastReviewed()

        var extra: [String: String] = [:]
        for (code, j) in try r.members("jurisdictions", required: false) {
            try j.only(["name"])
            if Jurisdictions.iso3166Alpha2.contains(code) || code == "EL" || code == "UK" {
                throw j.error(nil, "\"\(code)\" is an ISO 3166-1 country code; list only jurisdictions that are not countries here")
            }
            extra[code] = try j.string("name")
        }

        var eea = Jurisdictions.eea
        if r.object["eea"] != nil {
            let listed = try r.strings("eea")
            var set = Set<String>()
            for (i, raw) in listed.enumerated() {
                let code = Jurisdictions.normalise(raw)
                let path = "$.eea[\(i)]"
                guard Jurisdictions.iso3166Alpha2.contains(code) else {
                    throw GuardrailConfigError(file: file, path: path, message: "\"\(raw)\" is not an ISO 3166-1 alpha-2 country code")
                }
                guard Jurisdictions.eea.contains(code) else {
                    throw GuardrailConfigError(file: file, path: path, message: "\(Jurisdictions.written(raw)) is not in the EEA (facts.md §1: EU-27 plus IS, LI, NO)")
                }
                guard set.insert(code).inserted else {
                    throw GuardrailConfigError(file: file, path: path, message: "\(Jurisdictions.written(raw)) is listed twice (after EL/UK normalisation)")
                }
            }
            let missing = Jurisdictions.eea.subtracting(set).sorted()
            if !missing.isEmpty {
                throw r.error("eea", "missing EEA members \(missing.joined(separator: " ")) (facts.md §1); omit the list to use the built-in one")
            }
            eea = set
        }

        var regions: [String: Region] = [:]
        var order: [String] = []
        for (name, reg) in try r.members("regions") {
            try reg.only(["jurisdiction", "qualifications", "group"])
            let raw = try reg.string("jurisdiction")
            let code = Jurisdictions.normalise(raw)
            guard Jurisdictions.iso3166Alpha2.contains(code) || extra[code] != nil else {
                throw reg.error("jurisdiction", "\"\(raw)\" is neither an ISO 3166-1 alpha-2 code nor a jurisdiction declared under $.jurisdictions")
            }
            if regions[name] != nil {
                throw reg.error(nil, "region name is canonically equivalent to an earlier one; use distinct names")
            }
            let q = Set(try reg.strings("qualifications", required: false))
            regions[name] = Region(name: name, jurisdiction: code, qualifications: q, group: try reg.optionalString("group"))
            order.append(name)
        }
        var index: [String: Int] = [:]
        for (i, n) in order.enumerated() { index[n] = i }
        return RegionsConfig(lastReviewed: reviewed, eea: eea, jurisdictions: extra, regions: regions, regionOrder: order,
                             regionIndex: index)
    }
}
