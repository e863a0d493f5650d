import Cedar
import CustosJSON
import Guardrails
import Testing

private func snapshot(grant: String, withdraw: String?, subject: ConsentSubject = .cohort("onc301-de"),
                      purpose: String = "secondary_research") throws -> ConsentSnapshot {
    let dir = tempDirectory()
    let store = try ConsentStore(directory: dir)
    try store.grant(subject, purpose: purpose, evidence: "ICF v3 signed", actor: "User::\"dpo\"",
                    now: Fixtures.date(grant))
    if let w = withdraw {
        try store.withdraw(subject, purpose: purpose, actor: "User::\"dpo\"", now: Fixtures.date(w))
    }
    return store.snapshot
}

/// (purpose, decision time, expected code): consent granted 2025-01-01, withdrawn 2026-03-01.
let consentCases: [(String?, String, DenialCode?)] = [
    ("secondary_research", "2024-12-31T23:59:59Z", .consentMissing),  // before the grant
    ("secondary_research", "2025-01-01", nil),                        // granted_at <= t
    ("secondary_research", "2026-02-28T23:59:59Z", nil),              // before the withdrawal
    ("secondary_research", "2026-03-01", .consentWithdrawn),          // t < withdrawn_at fails
    ("secondary_research", "2026-11-24", .consentWithdrawn),
    ("ml_model_training", "2025-06-01", .consentMissing),             // consent is per purpose
    ("safety_reporting", "2026-11-24", nil),                          // legal obligation goes on
    ("primary_research", "2026-11-24", nil),                          // public task goes on
    ("archiving", "2026-11-24", nil),
    (nil, "2026-11-24", .purposeMissing),
    ("marketing", "2026-11-24", .purposeUnknown),
]

@Test(arguments: consentCases.indices)
func consentIsValidFromGrantUntilWithdrawalOnlyForConsentPurposes(_ i: Int) throws {
    let (purpose, at, code) = consentCases[i]
    let snap = try snapshot(grant: "2025-01-01", withdraw: "2026-03-01")
    let r = ConsentCheck.check(Fixtures.oncDE, purpose: purpose, config: Fixtures.config, consent: snap, now: Fixtures.date(at))
    switch r {
    case .success(let o):
        #expect(code == nil)
        guard case .legalBasis(let p, let basis)? = o else { Issue.record("no legal basis obligation"); return }
        #expect(p == purpose)
        #expect(basis == Fixtures.config.purposes!.purposes[purpose!]!.legalBasis.rawValue)
    case .failure(let d):
        #expect(d.code == code, "\(d)")
    }
}

@Test func withdrawalAtDatasetLevelStopsEvenWhenTheCohortGrants() throws {
    let dir = tempDirectory()
    let store = try ConsentStore(directory: dir)
    try store.grant(.cohort("onc301-de"), purpose: "secondary_research", evidence: "ICF", actor: "a", now: Fixtures.date("2025-01-01"))
    try store.grant(.dataset("onc301-de-imaging"), purpose: "secondary_research", evidence: "ICF", actor: "a", now: Fixtures.date("2025-01-01"))
    try store.withdraw(.dataset("onc301-de-imaging"), purpose: "secondary_research", actor: "a", now: Fixtures.date("2026-01-01"))
    let r = ConsentCheck.check(Fixtures.oncDE, purpose: "secondary_research", config: Fixtures.config,
                               consent: store.snapshot, now: Fixtures.date("2026-06-01"))
    guard case .failure(let d) = r else { Issue.record("allowed"); return }
    #expect(d.code == .consentWithdrawn)
}

@Test func anonymisedDataNeedsNoPurposeOrConsent() {
    let d = DatasetAttributes(id: "agg", residency: "DE", state: .anonymised, anonymisationAssessment: "ANON-1")
    let r = ConsentCheck.check(d, purpose: nil, config: Fixtures.config, consent: .empty, now: Fixtures.now)
    guard case .success(nil) = r else { Issue.record("\(r)"); return }
    let p = DatasetAttributes(id: "pseudo", residency: "DE", state: .pseudonymised)
    guard case .failure(let den) = ConsentCheck.check(p, purpose: nil, config: Fixtures.config, consent: .empty, now: Fixtures.now) else {
        Issue.record("pseudonymised data passed without a purpose"); return
    }
    #expect(den.code == .purposeMissing)
}

// Retention: EU trial record, end of trial 2000-03-15 -> 25 years -> expiry 2025-03-15
// (the ICH rule, 2 years after last approval 2001-01-10, ends earlier; the maximum wins).
private func trialRecord(triggers: [String: String], hold: Bool = false, residency: String = "DE") -> DatasetAttributes {
    DatasetAttributes(id: "onc-tmf", residency: residency, state: .identified, dataClass: "clinical", study: "ONC-301",
                      retentionClass: "clinical_trial_record",
                      retentionTriggers: triggers.mapValues { Fixtures.date($0) }, legalHold: hold)
}

struct RetentionCase: Sendable, CustomStringConvertible {
    var name: String
    var triggers: [String: String]
    var hold: Bool
    var storeHold: Bool
    var at: String
    var operation: RetentionCheck.Operation
    var codes: [DenialCode]
    var dispose: Bool
    var description: String { name }
}

let bothTriggers = ["end_of_trial": "2000-03-15", "last_marketing_approval": "2001-01-10"]
let retentionCases: [RetentionCase] = [
    .init(name: "delete before expiry", triggers: bothTriggers, hold: false, storeHold: false, at: "2025-03-14T23:59:59Z",
          operation: .delete, codes: [.retentionActive], dispose: false),
    .init(name: "delete at expiry", triggers: bothTriggers, hold: false, storeHold: false, at: "2025-03-15",
          operation: .delete, codes: [], dispose: true),
    .init(name: "delete after expiry under entity hold", triggers: bothTriggers, hold: true, storeHold: false, at: "2026-01-01",
          operation: .delete, codes: [.retentionLegalHold], dispose: false),
    .init(name: "delete after expiry under store hold", triggers: bothTriggers, hold: false, storeHold: true, at: "2026-01-01",
          operation: .delete, codes: [.retentionLegalHold], dispose: false),
    .init(name: "delete before expiry under hold", triggers: bothTriggers, hold: true, storeHold: false, at: "2020-01-01",
          operation: .delete, codes: [.retentionLegalHold, .retentionActive], dispose: false),
    .init(name: "delete with an unrecorded trigger retains", triggers: ["end_of_trial": "2000-03-15"], hold: false, storeHold: false,
          at: "2060-01-01", operation: .delete, codes: [.retentionActive], dispose: false),
    .init(name: "use before expiry", triggers: bothTriggers, hold: false, storeHold: false, at: "2025-03-14",
          operation: .use, codes: [], dispose: false),
    .init(name: "use after expiry", triggers: bothTriggers, hold: false, storeHold: false, at: "2025-03-15",
          operation: .use, codes: [.retentionExpired], dispose: false),
    .init(name: "use after expiry under hold", triggers: bothTriggers, hold: true, storeHold: false, at: "2025-03-15",
          operation: .use, codes: [.retentionExpired], dispose: false),
    .init(name: "use with unrecorded trigger", triggers: [:], hold: false, storeHold: false, at: "2090-01-01",
          operation: .use, codes: [], dispose: false),
]

@Test(arguments: retentionCases)
func retentionExpiryIsTheMaximumAndHoldsSuspendDisposal(_ c: RetentionCase) {
    let d = trialRecord(triggers: c.triggers, hold: c.hold)
    let out = RetentionCheck.check(d, operation: c.operation, config: Fixtures.config,
                                   holds: c.storeHold ? ["LIT-2026-004"] : [], now: Fixtures.date(c.at))
    #expect(out.denials.map(\.code) == c.codes, "\(out.denials)")
    #expect(out.obligations == (c.dispose ? [.dispose(dataset: "onc-tmf", expiredAt: "2025-03-15")] : []))
}

/// Data without a retention class has no schedule, so a delete is not held back by one; a
/// legal hold on it (recorded, or on the entity) still suspends disposal, and a hold that
/// cannot be read (a stale shared store) denies the delete rather than passing it.
@Test(arguments: [
    (false, [String](), nil as String?, [DenialCode]()),
    (true, [], nil, [.retentionLegalHold]),
    (false, ["LIT-42"], nil, [.retentionLegalHold]),
    (false, [], "the shared store's view is 40 s old", [.stateStale]),
])
func aLegalHoldSuspendsTheDeleteOfDataWithoutARetentionClass(entityHold: Bool, storeHolds: [String], unavailable: String?, codes: [DenialCode]) {
    let d = DatasetAttributes(id: "trial-raw", residency: "DE", state: .pseudonymised, legalHold: entityHold)
    let delete = RetentionCheck.check(d, operation: .delete, config: Fixtures.config, holds: storeHolds,
                                      holdsUnavailable: unavailable, now: Fixtures.date("2026-01-01"))
    #expect(delete.denials.map(\.code) == codes, "\(delete.denials)")
    #expect(delete.obligations.isEmpty, "no schedule, so no disposal duty")
    let use = RetentionCheck.check(d, operation: .use, config: Fixtures.config, holds: storeHolds,
                                   holdsUnavailable: unavailable, now: Fixtures.date("2026-01-01"))
    #expect(use.denials.isEmpty, "a hold does not stop use")
}

@Test func retentionStatusListsRulesExpiryAndHolds() {
    let d = trialRecord(triggers: bothTriggers)
    let st = RetentionCheck.status(d, config: Fixtures.config, holds: ["LIT-1"], now: Fixtures.date("2026-01-01"))
    #expect(st.rules.map(\.schedule.id) == ["eu-ctr-tmf", "ich-e6-essential"])
    #expect(st.expiry == Fixtures.date("2025-03-15"))
    #expect(st.expired)
    #expect(!st.disposalDue)
    #expect(st.holds == ["LIT-1"])
    // US records: 21 CFR 312.62 applies instead of EU CTR; the ICH rule applies everywhere.
    let us = trialRecord(triggers: ["last_marketing_approval": "2020-02-29", "marketing_approval": "2019-05-01"], residency: "US")
    let ust = RetentionCheck.status(us, config: Fixtures.config, holds: [], now: Fixtures.now)
    #expect(ust.rules.map(\.schedule.id) == ["ich-e6-essential", "cfr-312-62"])
    #expect(ust.expiry == Fixtures.date("2022-02-28")) // 29 Feb + 2 years clamps to 28 Feb
}

@Test func batchRecordsKeepTheLongerOfExpiryPlusOneAndCertificationPlusFive() {
    let d = DatasetAttributes(id: "batch-17", residency: "IE", retentionClass: "batch_record",
                              retentionTriggers: ["batch_expiry": Fixtures.date("2027-06-01"), "certification": Fixtures.date("2024-01-15")])
    #expect(RetentionCheck.status(d, config: Fixtures.config, holds: [], now: Fixtures.now).expiry == Fixtures.date("2029-01-15"))
}

@Test func dueForDisposalListsOnlyExpiredUnheldData() {
    let expired = trialRecord(triggers: bothTriggers)
    var held = trialRecord(triggers: bothTriggers); held.id = "held"
    var open = trialRecord(triggers: ["end_of_trial": "2020-01-01"]); open.id = "open"
    let due = RetentionCheck.dueForDisposal([expired, held, open], config: Fixtures.config,
                                            holds: { $0 == "held" ? ["LIT-9"] : [] }, asOf: Fixtures.now)
    #expect(due.map(\.dataset) == ["onc-tmf"])
}

@Test func deleteOfUnscheduledRetentionClassIsRefused() {
    let d = DatasetAttributes(id: "x", residency: "DE", retentionClass: "lab_notebook")
    let out = RetentionCheck.check(d, operation: .delete, config: Fixtures.config, holds: [], now: Fixtures.now)
    #expect(out.denials.map(\.code) == [.retentionUnknownClass])
    #expect(RetentionCheck.check(d, operation: .use, config: Fixtures.config, holds: [], now: Fixtures.now).allowed)
}

/// (request study, principal's studies, codes) for ONC-301 data. Naming the data's study in
/// the request is not membership: the principal must be in the study either way.
@Test(arguments: [
    ("ONC-301", ["ONC-301"], []),
    ("ONC-301", ["CARD-201", "ONC-301"], []),
    ("ONC-301", nil, [.isolationNotMember]),
    ("ONC-301", ["CARD-201"], [.isolationNotMember]),
    ("ONC-301", [], [.isolationNotMember]),
    ("CARD-201", ["ONC-301", "CARD-201"], [.isolationStudyMismatch]),
    ("CARD-201", ["CARD-201"], [.isolationStudyMismatch, .isolationNotMember]),
    ("CARD-201", nil, [.isolationStudyMismatch, .isolationNotMember]),
    (nil, ["ONC-301", "GEN-CH"], []),
    (nil, ["CARD-201"], [.isolationStudyMismatch]),
    (nil, nil, [.isolationStudyMissing]),
] as [(String?, Set<String>?, [DenialCode])])
func studyIsolationNeedsTheRequestsStudyAndMembershipOfIt(_ study: String?, _ member: Set<String>?, _ codes: [DenialCode]) {
    #expect(IsolationCheck.check(Fixtures.oncDE, requestStudy: study, principalStudies: member).map(\.code) == codes)
}

@Test func evaluateCollectsEveryDenialAndDropsObligationsOnDeny() throws {
    let snap = try snapshot(grant: "2025-01-01", withdraw: "2026-03-01")
    let ok = Guardrails.evaluate([Fixtures.oncDE], request: GuardrailRequest(region: "ch-zurich", purpose: "primary_research",
                                 study: "ONC-301", principalStudies: ["ONC-301"], now: Fixtures.now), config: Fixtures.config, consent: snap)
    #expect(ok.allowed)
    #expect(ok.obligations.map(\.kind) == ["transfer_basis", "legal_basis"])
    let bad = Guardrails.evaluate([Fixtures.oncDE], request: GuardrailRequest(region: "in-hyderabad", purpose: "secondary_research",
                                  study: "CARD-201", principalStudies: ["ONC-301"], now: Fixtures.now), config: Fixtures.config, consent: snap)
    #expect(bad.denials.map(\.code) == [.residencyCrossBorder, .consentWithdrawn, .isolationStudyMismatch])
    #expect(bad.obligations.isEmpty)
    let del = Guardrails.evaluate([trialRecord(triggers: bothTriggers)], request: GuardrailRequest(operation: .delete,
                                  study: "ONC-301", principalStudies: ["ONC-301"], now: Fixtures.now), config: Fixtures.config, consent: .empty)
    #expect(del.allowed)
    #expect(del.obligations == [.dispose(dataset: "onc-tmf", expiredAt: "2025-03-15")])
    #expect(GuardrailRequest.operation(forAction: "delete") == .delete)
    #expect(GuardrailRequest.operation(forAction: "read") == .use)
}

@Test func retentionStatusAndConsentRecordsWriteAsJSON() throws {
    let st = RetentionCheck.status(trialRecord(triggers: ["end_of_trial": "2000-03-15"]), config: Fixtures.config,
                                   holds: ["LIT-1"], now: Fixtures.now)
    var w = JSONWriter()
    w.retentionStatus(st)
    let j = try JSON.parse(w.text)
    #expect(j["expiry"] == .null)
    #expect(j["disposal_due"] == .bool(false))
    #expect(j["holds"] == .array([.string("LIT-1")]))
    #expect(j["rules"]?.arrayValue?.map { $0["expiry"] } == [.string("2025-03-15"), .null])
    let snap = try snapshot(grant: "2025-01-01", withdraw: "2026-03-01")
    var c = JSONWriter()
    c.consentRecord(snap.records(.cohort("onc301-de"), purpose: "secondary_research")[0])
    let r = try JSON.parse(c.text)
    #expect(r["subject"]?["cohort"] == .string("onc301-de"))
    #expect(r["withdrawn_at"] == .string("2026-03-01"))
}
