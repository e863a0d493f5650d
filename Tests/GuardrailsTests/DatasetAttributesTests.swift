import Cedar
import CustosJSON
import Guardrails
import Testing

private func entity(_ attrs: String) throws -> Entity {
    try Entity(json: JSON.parse("{\"uid\":{\"type\":\"Dataset\",\"id\":\"onc-tmf\"},\"attrs\":\(attrs),\"parents\":[]}"))
}

@Test func attributesAreReadFromACedarEntity() throws {
    let e = try entity("""
    {"residency":"EL","data_state":"pseudonymised","data_class":"clinical","study":"ONC-301","cohort":"onc301-gr",
     "retention_class":"clinical_trial_record",
     "retention_triggers":{"end_of_trial":{"__extn":{"fn":"datetime","arg":"2024-03-01"}},"last_marketing_approval":"2025-01-10"},
     "legal_hold":true}
    """)
    let d = try #require(try DatasetAttributes(entity: e))
    #expect(d.id == "onc-tmf")
    #expect(d.residency == "GR")
    #expect(d.state == .pseudonymised)
    #expect(d.isPersonal)
    #expect(d.retentionTriggers["end_of_trial"] == Fixtures.date("2024-03-01"))
    #expect(d.retentionTriggers["last_marketing_approval"] == Fixtures.date("2025-01-10"))
    #expect(d.legalHold)
}

@Test func entitiesWithoutGuardrailAttributesAreNotData() throws {
    #expect(try DatasetAttributes(entity: entity("{\"name\":\"Alice\"}")) == nil)
}

@Test(arguments: [
    ("{\"data_state\":\"encrypted\"}", "data_state"),
    ("{\"residency\":7}", "residency"),
    ("{\"residency\":\"Germany\"}", "residency"),
    ("{\"residency\":\"XX\"}", "residency"),
    ("{\"legal_hold\":\"yes\"}", "legal_hold"),
    ("{\"retention_triggers\":{\"end_of_trial\":\"soon\"}}", "end_of_trial"),
    ("{\"retention_triggers\":[]}", "retention_triggers"),
    // An empty assessment would make anonymised data non-personal on nothing.
    ("{\"data_state\":\"anonymised\",\"anonymisation_assessment\":\"\"}", "anonymisation_assessment"),
    ("{\"data_state\":\"anonymised\",\"anonymisation_assessment\":\" \"}", "anonymisation_assessment"),
])
func malformedAttributesAreDeniedNamingTheAttribute(_ attrs: String, _ name: String) throws {
    let e = try entity(attrs)
    do {
        _ = try DatasetAttributes(entity: e)
        Issue.record("accepted")
    } catch {
        #expect(error.code == .dataInvalidAttribute)
        #expect(error.message.contains(name))
    }
}

@Test func everyDenialCodeNamesItsGuardrail() {
    for c in DenialCode.allCases {
        #expect(c.rawValue.hasPrefix(c.guardrail.rawValue + "."))
    }
}

@Test func studiesMayBeEntityReferencesAsInTheCedarModel() throws {
    let d = try #require(try DatasetAttributes(entity: entity("{\"study\":{\"__entity\":{\"type\":\"Study\",\"id\":\"ONC-301\"}}}")))
    #expect(d.study == "ONC-301")
    let user = try Entity(json: JSON.parse("""
    {"uid":{"type":"User","id":"alice"},"parents":[],"attrs":{"studies":[{"__entity":{"type":"Study","id":"ONC-301"}},"GEN-CH"]}}
    """))
    #expect(DatasetAttributes.principalStudies(user) == ["ONC-301", "GEN-CH"])
    #expect(IsolationCheck.check(d, requestStudy: nil, principalStudies: DatasetAttributes.principalStudies(user)).isEmpty)
}
