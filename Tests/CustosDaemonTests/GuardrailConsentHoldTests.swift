import CustosDaemon
import CustosJSON
import CustosServer
import Foundation
import Testing

/// Consent, legal holds and retention through the daemon's methods.
@Suite struct GuardrailConsentHoldTests {
    static let train = GuardrailFixture.decide("erin", "train_model", "onc301-de-clinical",
                                               #"{"purpose":"ml_model_training","region":"eu-central-1"}"#)
    static let research = GuardrailFixture.decide("erin", "read", "onc301-de-clinical",
                                                  #"{"purpose":"ml_model_training","region":"eu-central-1"}"#)
    static let primary = GuardrailFixture.decide("alice", "read", "onc301-de-clinical",
                                                 #"{"purpose":"primary_research","region":"eu-central-1"}"#)
    static let dispose = GuardrailFixture.decide("olivia", "delete", "onc301-de-feasibility")

    @Test func consentGrantThenWithdrawChangesLaterDecisionsAndOtherBasesGoOn() throws {
        let f = try GuardrailFixture()
        #expect(codes(try f.object("decide", Self.train)["guardrail_reasons"]) == ["consent.missing"])
        let g = try f.object("consent.grant", #"{"cohort":"onc301-de","purpose":"ml_model_training","evidence":"ICF v3, signed"}"#)
        #expect(g["recorded"] == .bool(true))
        #expect(g["consent"]?.objectValue?["granted_by"]?.stringValue == "uid:4242", "the actor is the caller's uid")
        let allowed = try f.object("decide", Self.train)
        #expect(allowed["decision"]?.stringValue == "allow")
        #expect(allowed["obligations"]?.arrayValue?.first?.objectValue?["basis"]?.stringValue == "consent")
        let w = try f.object("consent.withdraw", #"{"cohort":"onc301-de","purpose":"ml_model_training"}"#)
        #expect(w["consent"]?.objectValue?["withdrawn_at"]?.stringValue != nil)
        let after = try f.object("decide", Self.train)
        #expect(after["decision"]?.stringValue == "deny")
        #expect(codes(after["guardrail_reasons"]) == ["consent.withdrawn"])
        // Purposes on another legal basis are not touched by the withdrawal.
        #expect(try f.object("decide", Self.primary)["decision"]?.stringValue == "allow")
        let got = try f.object("consent.get", #"{"cohort":"onc301-de"}"#)
        #expect(got["history"]?.arrayValue?.map { $0.objectValue?["op"]?.stringValue } == ["consent.grant", "consent.withdraw"])
        #expect(got["consents"]?.arrayValue?.count == 1)
    }

    @Test func aDatasetLevelWithdrawalStopsThePurposeEvenWhileTheCohortConsents() throws {
        let f = try GuardrailFixture()
        _ = try f.call("consent.grant", #"{"cohort":"onc301-de","purpose":"ml_model_training","evidence":"ICF v3"}"#)
        _ = try f.call("consent.grant", #"{"dataset":"onc301-de-clinical","purpose":"ml_model_training","evidence":"site DE-04 list"}"#)
        #expect(try f.object("decide", Self.research)["decision"]?.stringValue == "allow")
        _ = try f.call("consent.withdraw", #"{"dataset":"onc301-de-clinical","purpose":"ml_model_training"}"#)
        #expect(codes(try f.object("decide", Self.research)["guardrail_reasons"]) == ["consent.withdrawn"])
    }

    @Test(arguments: [
        ("consent.grant", #"{"cohort":"onc301-de","purpose":"primary_research","evidence":"x"}"#, "params.purpose", RPCError.invalidParamsCode),
        ("consent.grant", #"{"cohort":"onc301-de","purpose":"astrology","evidence":"x"}"#, "params.purpose", RPCError.invalidParamsCode),
        ("consent.grant", #"{"cohort":"a","dataset":"b","purpose":"ml_model_training","evidence":"x"}"#, "params.cohort", RPCError.invalidParamsCode),
        ("consent.grant", #"{"purpose":"ml_model_training","evidence":"x"}"#, "params.dataset", RPCError.invalidParamsCode),
        ("consent.grant", #"{"cohort":"a","purpose":"ml_model_training"}"#, "params.evidence", RPCError.invalidParamsCode),
        ("consent.grant", #"{"cohort":"a","purpose":"ml_model_training","evidence":"x","granted_at":"yesterday"}"#, "params.granted_at", RPCError.invalidParamsCode),
        ("consent.withdraw", #"{"cohort":"onc301-de","purpose":"ml_model_training"}"#, "no open consent", GuardrailMethods.conflictCode),
        ("hold.release", #"{"dataset":"onc301-de-feasibility","matter":"LIT-1","reason":"x"}"#, "no hold", GuardrailMethods.conflictCode),
        ("hold.set", #"{"dataset":"onc301-de-feasibility","matter":"LIT-1"}"#, "params.reason", RPCError.invalidParamsCode),
        ("hold.set", #"{"dataset":"onc301-de-feasability","matter":"LIT-1","reason":"x"}"#, "params.dataset", RPCError.invalidParamsCode),
        ("consent.grant", #"{"dataset":"onc301-de-clinicl","purpose":"ml_model_training","evidence":"x"}"#, "params.dataset", RPCError.invalidParamsCode),
    ])
    func badConsentAndHoldCallsSayWhatToFixAndChangeNothing(method: String, params: String, text: String, code: Int64) throws {
        let f = try GuardrailFixture()
        let e = try #require(rpcError { () throws(RPCError) in _ = try f.call(method, params) })
        #expect(e.code == code)
        #expect(e.message.contains(text), "\(e.message)")
        #expect(try f.object("consent.get", #"{"cohort":"onc301-de"}"#)["history"] == .array([]))
    }

    @Test func aHoldBlocksADeleteUntilReleasedAndRetentionReportsIt() throws {
        let f = try GuardrailFixture()
        #expect(obligationKinds(try f.object("decide", Self.dispose)["obligations"]) == ["dispose"])
        let set = try f.object("hold.set", #"{"dataset":"onc301-de-feasibility","matter":"LIT-2026-7","reason":"product liability claim"}"#)
        #expect(set["holds"]?.arrayValue?.count == 1)
        let held = try f.object("decide", Self.dispose)
        #expect(held["decision"]?.stringValue == "deny")
        #expect(codes(held["guardrail_reasons"]) == ["retention.legal_hold"])
        let st = try f.object("retention.status", #"{"dataset":"onc301-de-feasibility"}"#)
        #expect(st["expiry"]?.stringValue == "2025-03-15")
        #expect(st["holds"] == .array([.string("LIT-2026-7")]))
        #expect(st["disposal_due"] == .bool(false))
        _ = try f.call("hold.release", #"{"dataset":"onc301-de-feasibility","matter":"LIT-2026-7","reason":"claim settled"}"#)
        #expect(try f.object("decide", Self.dispose)["decision"]?.stringValue == "allow")
    }

    /// A dataset without a retention class has no schedule to keep it, but `hold.set` accepts
    /// a hold on it, and the hold must then stop its deletion until released.
    @Test(arguments: ["onc301-de-imaging-anon", "gench-ch-wgs"])
    func aHoldBlocksTheDeleteOfADatasetWithoutARetentionClass(dataset: String) throws {
        let f = try GuardrailFixture()
        let delete = GuardrailFixture.decide("olivia", "delete", dataset)
        let before = try f.object("decide", delete)
        #expect(!codes(before["guardrail_reasons"]).contains("retention.legal_hold"))
        _ = try f.call("hold.set", #"{"dataset":"\#(dataset)","matter":"LIT-42","reason":"claim"}"#)
        let held = try f.object("decide", delete)
        #expect(held["decision"]?.stringValue == "deny")
        #expect(codes(held["guardrail_reasons"]) == codes(before["guardrail_reasons"]) + ["retention.legal_hold"])
        _ = try f.call("hold.release", #"{"dataset":"\#(dataset)","matter":"LIT-42","reason":"settled"}"#)
        #expect(try f.object("decide", delete)["decision"] == before["decision"])
    }

    @Test func retentionDueListsExpiredUnheldDatasetsAsOfTheDateGiven() throws {
        let f = try GuardrailFixture()
        func due(_ asOf: String) throws -> [String?] {
            try f.object("retention.due", "{\"as_of\":\"\(asOf)\"}")["due"]?.arrayValue?.map { $0.objectValue?["dataset"]?.stringValue } ?? []
        }
        // onc301-de-feasibility expires 2025-03-15; card201-us-ae-reports expired in 2021 but is held.
        #expect(try due("2025-03-14") == [])
        #expect(try due("2025-03-15") == ["onc301-de-feasibility"])
        _ = try f.call("hold.set", #"{"dataset":"onc301-de-feasibility","matter":"AUDIT-9","reason":"inspection"}"#)
        #expect(try due("2026-01-01") == [])
        let e = try #require(rpcError { () throws(RPCError) in _ = try f.call("retention.due", #"{"as_of":"soon"}"#) })
        #expect(e.message.contains("params.as_of"))
    }

    @Test func retentionStatusOfAnUnknownDatasetIsInvalidParams() throws {
        let f = try GuardrailFixture()
        let e = try #require(rpcError { () throws(RPCError) in _ = try f.call("retention.status", #"{"dataset":"nope"}"#) })
        #expect(e.code == RPCError.invalidParamsCode)
        #expect(e.message.contains("params.dataset"))
    }
}
