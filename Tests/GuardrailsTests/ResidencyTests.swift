import Cedar
import Guardrails
import Testing

/// (data residency, data state, data class, processing region, expected code or nil, basis prefix)
struct ResidencyCase: Sendable, CustomStringConvertible {
    var residency: String?
    var state: DataState
    var dataClass: String
    var region: String?
    var code: DenialCode?
    var basis: String?
    var description: String { "\(residency ?? "-")/\(state)/\(dataClass) -> \(region ?? "nil")" }
}

let residencyCases: [ResidencyCase] = [
    // Inside the EEA there is no transfer (facts.md §1 step 2).
    .init(residency: "DE", state: .pseudonymised, dataClass: "clinical", region: "eu-west-3", code: nil, basis: nil),
    .init(residency: "DE", state: .identified, dataClass: "clinical", region: "eu-central-1", code: nil, basis: nil),
    .init(residency: "EL", state: .identified, dataClass: "clinical", region: "eu-west-1", code: nil, basis: nil),
    .init(residency: "FR", state: .identified, dataClass: "clinical", region: "gr-athens", code: nil, basis: nil),
    // Adequacy, whole territory and scoped (step 3).
    .init(residency: "DE", state: .pseudonymised, dataClass: "clinical", region: "ch-zurich", code: nil, basis: "adequacy:CH"),
    .init(residency: "DE", state: .pseudonymised, dataClass: "clinical", region: "uk-london", code: nil, basis: "adequacy:GB"),
    .init(residency: "DE", state: .pseudonymised, dataClass: "clinical", region: "us-east-1", code: nil, basis: "adequacy:US"),
    .init(residency: "DE", state: .pseudonymised, dataClass: "operational", region: "us-west-2", code: .residencyCrossBorder, basis: nil),
    // Safeguards (step 4): SCC for one recipient and class, BCR for group members.
    .init(residency: "DE", state: .pseudonymised, dataClass: "clinical", region: "sg-cro", code: nil, basis: "scc:scc-sg-cro-2025"),
    .init(residency: "DE", state: .pseudonymised, dataClass: "genomic", region: "sg-cro", code: .residencyCrossBorder, basis: nil),
    .init(residency: "FR", state: .identified, dataClass: "genomic", region: "us-boston-helix", code: nil, basis: "bcr:bcr-helix"),
    .init(residency: "FR", state: .identified, dataClass: "operational", region: "us-boston-helix", code: .residencyCrossBorder, basis: nil),
    // Not adequate, no basis (step 6).
    .init(residency: "DE", state: .pseudonymised, dataClass: "clinical", region: "in-hyderabad", code: .residencyCrossBorder, basis: nil),
    .init(residency: "IE", state: .identified, dataClass: "clinical", region: "in-hyderabad", code: .residencyCrossBorder, basis: nil),
    // Anonymised data with an assessment is outside the rule (step 1); pseudonymised is not.
    .init(residency: "DE", state: .anonymised, dataClass: "clinical", region: "in-hyderabad", code: nil, basis: nil),
    // Data resident outside the EEA is not governed by GDPR Chapter V.
    .init(residency: "US", state: .identified, dataClass: "clinical", region: "in-hyderabad", code: nil, basis: nil),
    .init(residency: "CH", state: .identified, dataClass: "genomic", region: "us-west-2", code: nil, basis: nil),
    // Personal data that does not declare residency is treated as EEA-resident.
    .init(residency: nil, state: .identified, dataClass: "clinical", region: "us-west-2", code: .residencyCrossBorder, basis: nil),
    // The request must say where; an unknown region is not guessed.
    .init(residency: "DE", state: .pseudonymised, dataClass: "clinical", region: nil, code: .residencyLocationMissing, basis: nil),
    .init(residency: "DE", state: .pseudonymised, dataClass: "clinical", region: "mars-1", code: .residencyUnknownLocation, basis: nil),
    .init(residency: "UK", state: .identified, dataClass: "clinical", region: nil, code: nil, basis: nil),
]

@Test(arguments: residencyCases)
func residencyFollowsTheEEAAdequacyAndSafeguardOrder(_ c: ResidencyCase) {
    let d = DatasetAttributes(id: "ds", residency: c.residency, state: c.state,
                              anonymisationAssessment: c.state == .anonymised ? "ANON-2026-01" : nil, dataClass: c.dataClass)
    let v = ResidencyCheck.check(d, region: c.region, config: Fixtures.config, now: Fixtures.now)
    switch v {
    case .denied(let den):
        #expect(den.code == c.code, "\(den)")
        #expect(den.guardrail == .residency)
    case .allowed(let o):
        #expect(c.code == nil)
        if let prefix = c.basis {
            guard case .transferBasis(_, _, let b)? = o else { Issue.record("no basis recorded"); return }
            #expect(b.hasPrefix(prefix), "\(b)")
        } else {
            #expect(o == nil)
        }
    case .unrestricted:
        #expect(c.code == nil)
        #expect(c.basis == nil)
    }
}

@Test func ukAndElResidencyAreNormalisedToISO() {
    #expect(DatasetAttributes(id: "a", residency: "UK").residency == "GB")
    #expect(DatasetAttributes(id: "a", residency: "EL").residency == "GR")
    #expect(Jurisdictions.normalise("DE") == "DE")
}

@Test func anonymisedWithoutAssessmentIsStillPersonal() {
    let d = DatasetAttributes(id: "ds", residency: "DE", state: .anonymised, dataClass: "clinical")
    #expect(d.isPersonal)
    guard case .denied(let den) = ResidencyCheck.check(d, region: "in-hyderabad", config: Fixtures.config, now: Fixtures.now) else {
        Issue.record("anonymised without an assessment reference left the EEA"); return
    }
    #expect(den.code == .residencyCrossBorder)
}

@Test func adequacyPastItsValidUntilNoLongerApplies() {
    let d = DatasetAttributes(id: "ds", residency: "DE", state: .identified, dataClass: "clinical")
    let before = ResidencyCheck.check(d, region: "uk-london", config: Fixtures.config, now: Fixtures.date("2031-12-26"))
    let after = ResidencyCheck.check(d, region: "uk-london", config: Fixtures.config, now: Fixtures.date("2031-12-27"))
    guard case .allowed(.some) = before else { Issue.record("GB adequacy should apply before 27 Dec 2031"); return }
    guard case .denied(let den) = after else { Issue.record("GB adequacy should lapse on 27 Dec 2031"); return }
    #expect(den.message.contains("expired"))
}

@Test func adequacyExcludedDataClassIsDenied() throws {
    var files = Fixtures.exampleFiles()
    let regions = String(decoding: files["regions.json"]!, as: UTF8.self)
        .replacingOccurrences("\"regions\": {", with: "\"regions\": {\"kr-seoul\": {\"jurisdiction\": \"KR\"},")
    files["regions.json"] = Array(regions.utf8)
    let c = try GuardrailConfig.parse(files: files)
    let credit = DatasetAttributes(id: "ds", residency: "DE", dataClass: "financial_credit")
    let clinical = DatasetAttributes(id: "ds", residency: "DE", dataClass: "clinical")
    guard case .denied = ResidencyCheck.check(credit, region: "kr-seoul", config: c, now: Fixtures.now) else {
        Issue.record("excluded class passed"); return
    }
    guard case .allowed(.some) = ResidencyCheck.check(clinical, region: "kr-seoul", config: c, now: Fixtures.now) else {
        Issue.record("KR adequacy did not apply"); return
    }
    // Without a data_class the data cannot be shown outside the excluded classes.
    let unclassed = DatasetAttributes(id: "ds", residency: "DE", dataClass: nil)
    guard case .denied(let den) = ResidencyCheck.check(unclassed, region: "kr-seoul", config: c, now: Fixtures.now) else {
        Issue.record("data without a class passed an adequacy decision that excludes classes"); return
    }
    #expect(den.message.contains("excludes data classes (financial_credit) and dataset ds has no data_class"), "\(den.message)")
}

@Test func regionNamesCompareByUnicodeScalars() throws {
    // U+212A KELVIN SIGN is canonically equivalent to "K" but a different region name.
    var files = Fixtures.exampleFiles()
    let regions = String(decoding: files["regions.json"]!, as: UTF8.self)
        .replacingOccurrences("\"regions\": {", with: "\"regions\": {\"SK-bratislava\": {\"jurisdiction\": \"SK\"},")
    files["regions.json"] = Array(regions.utf8)
    let c = try GuardrailConfig.parse(files: files)
    let d = DatasetAttributes(id: "ds", residency: "DE", dataClass: "clinical")
    #expect(ResidencyCheck.check(d, region: "SK-bratislava", config: c, now: Fixtures.now) == .allowed(nil))
    guard case .denied(let den) = ResidencyCheck.check(d, region: "S\u{212A}-bratislava", config: c, now: Fixtures.now) else {
        Issue.record("a canonically equivalent region name was accepted"); return
    }
    #expect(den.code == .residencyUnknownLocation)
}
