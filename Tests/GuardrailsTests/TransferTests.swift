import Cedar
import CustosJSON
import Guardrails
import Testing

private let onc = DatasetAttributes(id: "onc-de", residency: "DE", state: .pseudonymised, dataClass: "clinical", study: "ONC-301")

/// Every kind over the EEA / adequacy / safeguards / non-adequate boundary.
let transferCases: [(String, String, String?, DenialCode?, String?)] = [
    ("eu-central-1", "eu-west-3", nil, nil, nil),                         // DE -> FR: not a transfer
    ("eu-central-1", "gr-athens", nil, nil, nil),                         // DE -> EL(GR)
    ("eu-central-1", "ch-zurich", nil, nil, "adequacy:CH"),               // DE -> CH adequacy
    ("eu-central-1", "us-east-1", nil, nil, "adequacy:US"),               // DE -> US with DPF
    ("eu-central-1", "us-west-2", nil, .residencyCrossBorder, nil),       // DE -> US without DPF
    ("eu-central-1", "in-hyderabad", nil, .residencyCrossBorder, nil),    // DE -> IN
    ("eu-central-1", "sg-cro", nil, nil, "scc:scc-sg-cro-2025"),          // DE -> SG under SCC
    ("eu-central-1", "sg-cro", "scc-sg-cro-2025", nil, "scc:scc-sg-cro-2025"),
    ("eu-central-1", "sg-cro", "bcr-helix", .residencyCrossBorder, nil),  // named basis must apply
    ("eu-central-1", "us-boston-helix", "bcr-helix", nil, "bcr:bcr-helix"),
    ("eu-central-1", "us-east-1", "adequacy", nil, "adequacy:US"),
    ("ch-zurich", "in-hyderabad", nil, .residencyCrossBorder, nil),       // onward hop needs its own basis
    ("us-east-1", "eu-west-1", nil, nil, nil),                            // back into the EEA
    ("eu-central-1", "moon-base", nil, .residencyUnknownLocation, nil),
    ("moon-base", "eu-west-1", nil, .residencyUnknownLocation, nil),
]

@Test(arguments: TransferKind.allCases, transferCases.indices)
func everyTransferKindIsCheckedAgainstTheDestination(_ kind: TransferKind, _ i: Int) {
    let (from, to, basis, code, used) = transferCases[i]
    let req = TransferRequest(principal: "User::\"ops\"", dataset: onc.id, from: from, to: to, kind: kind, basis: basis)
    let out = TransferCheck.decide(req, data: onc, config: Fixtures.config, now: Fixtures.now)
    #expect(out.denials.map(\.code) == (code.map { [$0] } ?? []), "\(out.denials)")
    if let used {
        guard case .transferBasis(_, let dest, let b)? = out.obligations.first else { Issue.record("no basis"); return }
        #expect(dest == to)
        #expect(b.hasPrefix(used), "\(b)")
    } else {
        #expect(out.obligations.isEmpty)
    }
    if let d = out.denials.first, d.code == .residencyCrossBorder { #expect(d.message.hasPrefix(kind.rawValue)) }
}

@Test func anonymisedAndNonEEADataMoveFreely() {
    let anon = DatasetAttributes(id: "a", residency: "DE", state: .anonymised, anonymisationAssessment: "ANON-1")
    let us = DatasetAttributes(id: "u", residency: "US", state: .identified, dataClass: "clinical")
    for d in [anon, us] {
        let out = TransferCheck.decide(TransferRequest(principal: "p", dataset: d.id, from: "us-east-1", to: "in-hyderabad", kind: .export),
                                       data: d, config: Fixtures.config, now: Fixtures.now)
        #expect(out.allowed)
    }
}

@Test func transferParamsAreReadWithTheirKind() throws {
    let r = try TransferRequest(json: JSON.parse("{\"principal\":\"p\",\"dataset\":\"d\",\"from\":\"a\",\"to\":\"b\",\"kind\":\"failover\"}"))
    #expect(r.kind == .failover)
    #expect(r.basis == nil)
    #expect(throws: GuardrailParamError.self) {
        try TransferRequest(json: JSON.parse("{\"principal\":\"p\",\"dataset\":\"d\",\"from\":\"a\",\"to\":\"b\",\"kind\":\"teleport\"}"))
    }
}

/// A transfer makes a copy: past the disposal date, with nothing holding the data, it is refused
/// wherever it goes; under a hold (on the entity or in the store), or before expiry, only
/// residency decides. The record expires 2025-03-15 (25 years after the end of trial).
struct TransferRetentionCase: Sendable, CustomStringConvertible {
    var name: String
    var at: String
    var to: String
    var triggers: [String: String] = ["end_of_trial": "2000-03-15", "last_marketing_approval": "2001-01-10"]
    var entityHold = false
    var storeHolds: [String] = []
    var codes: [DenialCode]
    var description: String { name }
}

let transferRetentionCases: [TransferRetentionCase] = [
    .init(name: "backup the day before expiry", at: "2025-03-14T23:59:59Z", to: "eu-west-3", codes: []),
    .init(name: "backup at expiry", at: "2025-03-15", to: "eu-west-3", codes: [.retentionExpired]),
    .init(name: "replicate after expiry to a non-adequate destination: both reasons", at: "2026-01-01", to: "us-west-2",
          codes: [.retentionExpired, .residencyCrossBorder]),
    .init(name: "backup after expiry under the entity's hold", at: "2026-01-01", to: "eu-west-3", entityHold: true, codes: []),
    .init(name: "backup after expiry under a store hold", at: "2026-01-01", to: "eu-west-3", storeHolds: ["LIT-2026-7"], codes: []),
    .init(name: "copy with an unrecorded trigger (retained)", at: "2090-01-01", to: "eu-west-3",
          triggers: ["end_of_trial": "2000-03-15"], codes: []),
]

@Test(arguments: transferRetentionCases, TransferKind.allCases)
func aTransferPastTheDisposalDateIsRefusedUnlessAHoldKeepsTheData(_ c: TransferRetentionCase, _ kind: TransferKind) {
    let data = DatasetAttributes(id: "onc-tmf", residency: "DE", state: .pseudonymised, dataClass: "clinical", study: "ONC-301",
                                 retentionClass: "clinical_trial_record",
                                 retentionTriggers: c.triggers.mapValues { Fixtures.date($0) }, legalHold: c.entityHold)
    let req = TransferRequest(principal: "User::\"ops\"", dataset: data.id, from: "eu-central-1", to: c.to, kind: kind)
    let out = TransferCheck.decide(req, data: data, config: Fixtures.config, holds: c.storeHolds, now: Fixtures.date(c.at))
    #expect(out.denials.map(\.code) == c.codes, "\(out.denials)")
    if let d = out.denials.first, d.code == .retentionExpired {
        #expect(d.message.hasPrefix("\(kind.rawValue) of dataset onc-tmf"), "\(d.message)")
        #expect(d.message.contains("2025-03-15"), "\(d.message)")
    }
}
