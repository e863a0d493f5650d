import Cedar
import CustosJSON

/// GDPR Art 6(1) legal bases.
public enum LegalBasis: String, Sendable, Hashable, CaseIterable {
    case consent, contract, legalObligation = "legal_obligation", vitalInterests = "vital_interests"
    case publicTask = "public_task", legitimateInterests = "legitimate_interests"
}

/// A processing purpose and the legal basis it rests on (facts.md §2: the basis belongs to the
/// purpose, not to the person).
public struct Purpose: Sendable, Hashable {
    public var name: String
    public var legalBasis: LegalBasis
    /// The Art 9(2) condition letter for special-category data (`a` explicit consent, `i` public
    /// health, `j` research), if given.
    public var art9Condition: String?
    /// True when processing for this purpose stops on withdrawal (facts.md §2).
    public var consentBased: Bool { legalBasis == .consent }
}

/// purposes.json.
public struct PurposesConfig: Sendable {
    public var purposes: [String: Purpose]

    static let file = "guardrails/purposes.json"

    static func parse(_ json: JSON) throws(GuardrailConfigError) -> PurposesConfig {
        let r = try ConfigReader(file: file, path: "$", json: json)
        try r.only(["last_reviewed", "purposes"])
        if r.object["last_reviewed"] != nil { _ = try r.lastReviewed() }
        var out: [String: Purpose] = [:]
        for (name, p) in try r.members("purposes") {
            try p.only(["legal_basis", "art9_condition"])
            let raw = try p.string("legal_basis")
            guard let basis = LegalBasis(rawValue: raw) else {
                throw p.error("legal_basis", "expected one of \(LegalBasis.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(raw)\"")
            }
            let art9 = try p.optionalString("art9_condition")
            if let c = art9 {
                guard c.utf8.count == 1, let b = c.utf8.first, b >= 97, b <= 106 else {
                    throw p.error("art9_condition", "expected one Art 9(2) letter \"a\" to \"j\", got \"\(c)\"")
                }
                if c == "a", basis != .consent {
                    throw p.error("art9_condition", "explicit consent (Art 9(2)(a)) contradicts legal_basis \"\(raw)\": whether withdrawal stops the purpose would be ambiguous")
                }
                if c != "a", basis == .consent {
                    throw p.error("art9_condition", "legal_basis \"consent\" needs Art 9(2)(a) explicit consent for special-category data, got \"\(c)\"")
                }
            }
            if out[name] != nil { throw p.error(nil, "purpose name is canonically equivalent to an earlier one; use distinct names") }
            out[name] = Purpose(name: name, legalBasis: basis, art9Condition: art9)
        }
        return PurposesConfig(purposes: out)
    }
}
