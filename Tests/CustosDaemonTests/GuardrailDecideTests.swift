import CustosDaemon
import CustosJSON
import CustosServer
import Foundation
import Synchronization
import Testing

/// `decide` over the example deployment: Cedar first, then the guardrails on the resource.
@Suite struct GuardrailDecideTests {
    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var request: String
        var decision: String
        /// Guardrail codes expected in `guardrail_reasons`, in order.
        var codes: [String]
        /// Obligation kinds expected on an allow.
        var obligations: [String] = []
        var description: String { name }
    }

    static let eu = #"{"purpose":"primary_research","region":"eu-central-1"}"#

    static let cases: [Case] = [
        Case(name: "own study, EEA region, public-task purpose: allow with the legal basis",
             request: GuardrailFixture.decide("alice", "read", "onc301-de-clinical", eu),
             decision: "allow", codes: [], obligations: ["legal_basis"]),
        Case(name: "pseudonymised DE data in a US region without DPF: residency.cross_border",
             request: GuardrailFixture.decide("alice", "read", "onc301-de-clinical", #"{"purpose":"primary_research","region":"us-west-2"}"#),
             decision: "deny", codes: ["residency.cross_border"]),
        Case(name: "resident personal data and no region: residency.location_missing, never a guess",
             request: GuardrailFixture.decide("alice", "read", "onc301-de-clinical", #"{"purpose":"primary_research"}"#),
             decision: "deny", codes: ["residency.location_missing"]),
        Case(name: "a region regions.json does not define: residency.unknown_location",
             request: GuardrailFixture.decide("alice", "read", "onc301-de-clinical", #"{"purpose":"primary_research","region":"mars-1"}"#),
             decision: "deny", codes: ["residency.unknown_location"]),
        Case(name: "DE data processed in London: allowed on the GB adequacy decision, basis recorded",
             request: GuardrailFixture.decide("alice", "read", "onc301-de-clinical", #"{"purpose":"primary_research","region":"uk-london"}"#),
             decision: "allow", codes: [], obligations: ["transfer_basis", "legal_basis"]),
        Case(name: "anonymised data (with an assessment) is outside residency even in a non-adequate country",
             request: GuardrailFixture.decide("alice", "read", "onc301-de-imaging-anon", #"{"purpose":"primary_research","region":"in-hyderabad"}"#),
             decision: "allow", codes: []),
        Case(name: "German donors of the Swiss cohort processed in Zurich: adequacy CH",
             request: GuardrailFixture.decide("grace", "read", "gench-eu-donors", #"{"purpose":"primary_research","region":"ch-zurich"}"#),
             decision: "allow", codes: [], obligations: ["transfer_basis", "legal_basis"]),
        Case(name: "US-resident data is not governed by EEA residency",
             request: GuardrailFixture.decide("bob", "read", "card201-us-ehr", #"{"purpose":"primary_research","region":"us-west-2"}"#),
             decision: "allow", codes: [], obligations: ["legal_basis"]),
        Case(name: "consent-based purpose without any consent: consent.missing",
             request: GuardrailFixture.decide("erin", "train_model", "onc301-de-clinical", #"{"purpose":"ml_model_training","region":"eu-central-1"}"#),
             decision: "deny", codes: ["consent.missing"]),
        Case(name: "no purpose: Cedar denies and the guardrails say purpose.missing",
             request: GuardrailFixture.decide("alice", "read", "onc301-de-clinical", #"{"region":"eu-central-1"}"#),
             decision: "deny", codes: ["purpose.missing"]),
        Case(name: "a request running in another study's environment: isolation.study_mismatch",
             request: GuardrailFixture.decide("alice", "read", "onc301-de-clinical", #"{"purpose":"primary_research","region":"eu-central-1","study":"CARD-201"}"#),
             decision: "deny", codes: ["isolation.study_mismatch"]),
        Case(name: "Cedar denies another study's data and isolation says why",
             request: GuardrailFixture.decide("alice", "read", "card201-us-ehr", #"{"purpose":"primary_research","region":"us-east-1"}"#),
             decision: "deny", codes: ["isolation.study_mismatch"]),
        Case(name: "use after the retention expiry: retention.expired",
             request: GuardrailFixture.decide("carol", "read", "onc301-de-feasibility", eu),
             decision: "deny", codes: ["retention.expired"]),
        Case(name: "delete while the trial runs (no trigger recorded): retention.active",
             request: GuardrailFixture.decide("olivia", "delete", "onc301-de-clinical"),
             decision: "deny", codes: ["retention.active"]),
        Case(name: "delete of expired data under the entity's legal hold: retention.legal_hold",
             request: GuardrailFixture.decide("olivia", "delete", "card201-us-ae-reports"),
             decision: "deny", codes: ["retention.legal_hold"]),
        Case(name: "delete after expiry and without a hold: allowed with the dispose obligation",
             request: GuardrailFixture.decide("olivia", "delete", "onc301-de-feasibility"),
             decision: "allow", codes: [], obligations: ["dispose"]),
    ]

    @Test(arguments: cases)
    func decideRunsTheGuardrailsAfterCedar(_ c: Case) throws {
        let f = try GuardrailFixture()
        let r = try f.object("decide", c.request)
        #expect(r["decision"]?.stringValue == c.decision)
        #expect(codes(r["guardrail_reasons"]) == c.codes)
        #expect(obligationKinds(r["obligations"]) == c.obligations)
        for reason in r["guardrail_reasons"]?.arrayValue ?? [] {
            let o = try #require(reason.objectValue)
            #expect(o["guardrail"]?.stringValue.map { o["code"]?.stringValue?.hasPrefix($0 + ".") ?? false } == true)
            #expect((o["message"]?.stringValue?.count ?? 0) > 0)
        }
    }

    @Test func theTransferBasisObligationNamesTheDecisionUsed() throws {
        let f = try GuardrailFixture()
        let r = try f.object("decide", GuardrailFixture.decide("alice", "read", "onc301-de-clinical",
                                                               #"{"purpose":"primary_research","region":"uk-london"}"#))
        let o = try #require(r["obligations"]?.arrayValue?.first?.objectValue)
        #expect(o["dataset"]?.stringValue == "onc301-de-clinical")
        #expect(o["destination"]?.stringValue == "uk-london")
        #expect(o["basis"]?.stringValue?.hasPrefix("adequacy:GB") == true)
    }

    @Test func aGuardrailDenialKeepsCedarsReasonsBesideIt() throws {
        let f = try GuardrailFixture()
        let r = try f.object("decide", GuardrailFixture.decide("alice", "read", "onc301-de-clinical",
                                                               #"{"purpose":"primary_research","region":"in-hyderabad"}"#))
        #expect(r["decision"]?.stringValue == "deny")
        #expect(r["reasons"] == .array([.string("scientist-analyses-own-study")]))
        #expect(codes(r["guardrail_reasons"]) == ["residency.cross_border"])
        #expect(r["obligations"] == .array([]))
    }

    @Test(arguments: [("region", "5"), ("purpose", "true"), ("study", "[1]")])
    func aMistypedGuardrailContextFieldIsInvalidParams(key: String, value: String) throws {
        let f = try GuardrailFixture()
        let req = GuardrailFixture.decide("alice", "read", "onc301-de-clinical", "{\"\(key)\":\(value)}")
        let e = try #require(rpcError { () throws(RPCError) in _ = try f.call("decide", req) })
        #expect(e.code == RPCError.invalidParamsCode)
        #expect(e.message.contains("params.context.\(key)"), "\(e.message)")
    }

    @Test func decideBatchRunsTheGuardrailsOnEveryRequest() throws {
        let f = try GuardrailFixture()
        let ok = GuardrailFixture.decide("alice", "read", "onc301-de-clinical", Self.eu)
        let bad = GuardrailFixture.decide("alice", "read", "onc301-de-clinical", #"{"purpose":"primary_research","region":"us-west-2"}"#)
        let r = try #require(try f.call("decide.batch", "{\"requests\":[\(ok),\(bad)]}").objectValue?["results"]?.arrayValue)
        #expect(r.map { $0.objectValue?["decision"]?.stringValue } == ["allow", "deny"])
        #expect(codes(r[1].objectValue?["guardrail_reasons"]) == ["residency.cross_border"])
    }

    @Test func withoutAStateDirectoryConsentPurposesAreRefusedAndConsentMethodsAreNotReady() throws {
        let f = try GuardrailFixture(stateful: false)
        let r = try f.object("decide", GuardrailFixture.decide("erin", "train_model", "onc301-de-clinical",
                                                               #"{"purpose":"ml_model_training","region":"eu-central-1"}"#))
        #expect(codes(r["guardrail_reasons"]) == ["consent.missing"])
        let e = try #require(rpcError { () throws(RPCError) in
            _ = try f.call("consent.grant", #"{"cohort":"onc301-de","purpose":"ml_model_training","evidence":"ICF v3"}"#)
        })
        #expect(e.code == RPCError.notReadyCode)
        #expect(e.message.contains("--state"))
    }

    @Test func theDecisionTimeIsTheDaemonClockAndNothingInTheRequestMovesIt() throws {
        // onc301-de-feasibility must be kept until 2025-03-15 (EU CTR: 25 years after 2000-03-15).
        let before = try GuardrailFixture(clock: WallTime(seconds: 1_741_900_000, nanoseconds: 0))  // 2025-03-13T21:06:40Z
        let after = try GuardrailFixture(clock: WallTime(seconds: 1_742_100_000, nanoseconds: 0))   // 2025-03-16T04:40:00Z
        let claimsLater = GuardrailFixture.decide("olivia", "delete", "onc301-de-feasibility",
                                                  #"{"now":"2030-01-01T00:00:00Z","time":"2030-01-01"}"#)
        #expect(codes(try before.object("decide", claimsLater)["guardrail_reasons"]) == ["retention.active"])
        #expect(try after.object("decide", claimsLater)["decision"]?.stringValue == "allow")
    }

    /// Data of a type the folder does not hold (so neither authoritative nor a data type),
    /// brought by a caller granted request entities, is still guarded by its own attributes.
    @Test func aDataEntityOfAnotherTypeTheRequestBringsIsGuardedLikeTheFoldersOwn() throws {
        let f = try GuardrailFixture(access: AccessPolicy(entries: [.init(method: "entities", rule: .anyone)])) { dir in
            try #"@id("uploads") permit(principal, action == Action::"read", resource is Upload);"#
                .write(toFile: dir + "/60-uploads.cedar", atomically: true, encoding: .utf8)
        }
        let entity = #"{"uid":{"type":"Upload","id":"onc301-de-adhoc"},"parents":[],"attrs":{"study":{"__entity":{"type":"Study","id":"ONC-301"}},"residency":"DE","data_state":"pseudonymised","data_class":"clinical"}}"#
        func ask(_ region: String) throws -> JSONObject {
            try f.object("decide", #"{"principal":{"type":"User","id":"alice"},"action":{"type":"Action","id":"read"},"resource":{"type":"Upload","id":"onc301-de-adhoc"},"context":{"purpose":"primary_research","region":"\#(region)"},"entities":[\#(entity)]}"#)
        }
        #expect(try ask("eu-west-3")["decision"]?.stringValue == "allow")
        #expect(codes(try ask("us-west-2")["guardrail_reasons"]) == ["residency.cross_border"])
        let bad = #"{"principal":{"type":"User","id":"alice"},"action":{"type":"Action","id":"read"},"resource":{"type":"Upload","id":"x"},"context":{"purpose":"primary_research","region":"eu-west-3"},"entities":[{"uid":{"type":"Upload","id":"x"},"parents":[],"attrs":{"residency":"Germany"}}]}"#
        #expect(codes(try f.object("decide", bad)["guardrail_reasons"]) == ["data.invalid_attribute"])
    }

    /// guardrails/actions.json makes read_metadata a metadata read: no region or purpose needed,
    /// still Cedar-decided. Without the file every action but the deletes is a use, as before.
    @Test func aMetadataReadNeedsNoRegionOrPurposeOnlyWhenActionsJSONDeclaresIt() throws {
        let request = GuardrailFixture.decide("dave", "read_metadata", "onc301-de-clinical")
        let kept = Mutex<[DecisionRecord]>([])
        let recorder = DecisionRecorder(record: { records throws(RecorderError) in kept.withLock { $0 += records } })
        let declared = try GuardrailFixture(recorder: recorder).object("decide", request)
        #expect(declared["decision"]?.stringValue == "allow")
        #expect(declared["reasons"] == .array([.string("auditor-reads-metadata")]))
        // Audited like any decision.
        #expect(kept.withLock { $0.map { "\($0.method) \($0.decision) \($0.reasons)" } } == [#"decide allow ["auditor-reads-metadata"]"#])
        let undeclared = try GuardrailFixture { dir in try FileManager.default.removeItem(atPath: dir + "/guardrails/actions.json") }
            .object("decide", request)
        #expect(undeclared["decision"]?.stringValue == "deny")
        #expect(codes(undeclared["guardrail_reasons"]) == ["residency.location_missing", "purpose.missing"])
    }
}
