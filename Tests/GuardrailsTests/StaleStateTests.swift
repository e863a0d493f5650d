import Cedar
import CustosJSON
import Guardrails
import Testing

// What "depends on consent or holds" means (docs/guardrails.md, "state.stale"): a check that
// reads the consent records or the holds to decide denies `state.stale` when the view it was
// given is marked unavailable; every other check decides as before.

private let why = "the daemon's copy of the shared state store is 6.0 s old"

private func staleSnapshot() throws -> ConsentSnapshot {
    let store = try ConsentStore(directory: tempDirectory())
    try store.grant(.cohort("onc301-de"), purpose: "secondary_research", evidence: "ICF", actor: "a", now: Fixtures.date("2025-01-01"))
    var s = store.snapshot
    s.unavailable = why
    return s
}

private let trialTMF = DatasetAttributes(id: "onc-tmf", residency: "DE", state: .identified, dataClass: "clinical", study: "ONC-301",
                                         retentionClass: "clinical_trial_record",
                                         retentionTriggers: ["end_of_trial": Fixtures.date("2000-03-15"),
                                                             "last_marketing_approval": Fixtures.date("2001-01-10")])

/// (purpose, expected code): only a consent-based purpose reads the consent records.
@Test(arguments: [
    ("secondary_research", DenialCode.stateStale),    // consent-based: granted, but the view may miss a withdrawal
    ("ml_model_training", .stateStale),               // consent-based, no consent on record: still stale, not missing
    ("primary_research", nil),                        // public task: consent is never read
    ("safety_reporting", nil),                        // legal obligation
] as [(String, DenialCode?)])
func aStaleViewDeniesExactlyThePurposesThatRestOnConsent(_ purpose: String, _ code: DenialCode?) throws {
    let r = ConsentCheck.check(Fixtures.oncDE, purpose: purpose, config: Fixtures.config, consent: try staleSnapshot(), now: Fixtures.now)
    switch r {
    case .success: #expect(code == nil)
    case .failure(let d):
        #expect(d.code == code)
        #expect(d.guardrail == .state)
        #expect(d.message.contains(why))
    }
}

@Test func aStaleViewDoesNotHoldUpPurposeErrorsOrDataThatIsNotPersonal() throws {
    let stale = try staleSnapshot()
    guard case .failure(let d) = ConsentCheck.check(Fixtures.oncDE, purpose: nil, config: Fixtures.config, consent: stale, now: Fixtures.now) else {
        Issue.record("no purpose passed"); return
    }
    #expect(d.code == .purposeMissing)
    let anon = DatasetAttributes(id: "agg", residency: "DE", state: .anonymised, anonymisationAssessment: "ANON-1")
    guard case .success = ConsentCheck.check(anon, purpose: "secondary_research", config: Fixtures.config, consent: stale, now: Fixtures.now) else {
        Issue.record("anonymised data denied"); return
    }
}

/// (operation, time, codes): a delete of scheduled data reads the holds; a use is decided by
/// the expiry alone.
@Test(arguments: [
    (RetentionCheck.Operation.delete, "2026-01-01", [DenialCode.stateStale]),          // expired: only a hold could keep it
    (.delete, "2020-01-01", [.stateStale, .retentionActive]),                           // before expiry: both reasons
    (.use, "2026-01-01", [.retentionExpired]),                                          // holds never make data usable
    (.use, "2020-01-01", []),
    (.metadata, "2026-01-01", []),
] as [(RetentionCheck.Operation, String, [DenialCode])])
func aStaleViewDeniesDeletesThatDependOnHoldsOnly(_ op: RetentionCheck.Operation, _ at: String, _ codes: [DenialCode]) {
    let out = RetentionCheck.check(trialTMF, operation: op, config: Fixtures.config, holds: [], holdsUnavailable: why, now: Fixtures.date(at))
    #expect(out.denials.map(\.code) == codes, "\(out.denials)")
    #expect(out.obligations.isEmpty)
}

/// A legal hold suspends the disposal of any dataset, scheduled or not (`hold.set` accepts
/// one on data without a retention class), so a delete of unscheduled data depends on the
/// holds too and a stale view denies it. (It used to read no holds: a hold on such data
/// protected nothing.)
@Test func aDeleteOfDataWithoutAScheduleStillReadsTheHolds() {
    let d = DatasetAttributes(id: "notes", residency: "DE", state: .pseudonymised)
    let stale = RetentionCheck.check(d, operation: .delete, config: Fixtures.config, holds: [], holdsUnavailable: why, now: Fixtures.now)
    #expect(stale.denials.map(\.code) == [.stateStale])
    #expect(RetentionCheck.check(d, operation: .delete, config: Fixtures.config, holds: [], now: Fixtures.now).allowed)
}

@Test(arguments: [("2026-01-01", [DenialCode.stateStale]), ("2020-01-01", [])] as [(String, [DenialCode])])
func aStaleViewDeniesTransfersOfExpiredDataOnly(_ at: String, _ codes: [DenialCode]) {
    let t = TransferRequest(principal: "User::\"ops\"", dataset: "onc-tmf", from: "eu-central-1", to: "eu-west-1", kind: .backup)
    let out = TransferCheck.decide(t, data: trialTMF, config: Fixtures.config, holds: [], holdsUnavailable: why, now: Fixtures.date(at))
    #expect(out.denials.map(\.code) == codes, "\(out.denials)")
}

@Test func evaluateMarksOnlyTheChecksThatReadTheState() throws {
    let stale = try staleSnapshot()
    let research = Guardrails.evaluate([Fixtures.oncDE], request: GuardrailRequest(region: "eu-central-1", purpose: "primary_research",
                                       study: "ONC-301", principalStudies: ["ONC-301"], now: Fixtures.now), config: Fixtures.config, consent: stale)
    #expect(research.allowed)
    let consent = Guardrails.evaluate([Fixtures.oncDE], request: GuardrailRequest(region: "eu-central-1", purpose: "secondary_research",
                                      study: "ONC-301", principalStudies: ["ONC-301"], now: Fixtures.now), config: Fixtures.config, consent: stale)
    #expect(consent.denials.map(\.code) == [.stateStale])
    #expect(consent.obligations.isEmpty)
    let delete = Guardrails.evaluate([trialTMF], request: GuardrailRequest(operation: .delete, study: "ONC-301", principalStudies: ["ONC-301"],
                                     now: Fixtures.now), config: Fixtures.config, consent: stale)
    #expect(delete.denials.map(\.code) == [.stateStale])
    // The same view, fresh: the grant and the missing hold decide.
    var fresh = stale
    fresh.unavailable = nil
    #expect(Guardrails.evaluate([Fixtures.oncDE], request: GuardrailRequest(region: "eu-central-1", purpose: "secondary_research",
                                study: "ONC-301", principalStudies: ["ONC-301"], now: Fixtures.now), config: Fixtures.config, consent: fresh).allowed)
}

@Test func stateStaleIsAStableCodeOfItsOwnGuardrail() {
    #expect(DenialCode(rawValue: "state.stale") == .stateStale)
    #expect(DenialCode.stateStale.guardrail == .state)
}
