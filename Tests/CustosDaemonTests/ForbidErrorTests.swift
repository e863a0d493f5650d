import AuditLog
import CustosDaemon
import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Testing

/// A forbid whose evaluation errors denies in the daemon (`policy.forbid_error`), unless the
/// folder's custos.json says `"forbid_errors": "skip"`: the misspelt attribute of the issue.
@Suite struct ForbidErrorTests {
    /// `resource.data_stat` (for `data_state`): every request it meets errors.
    static let typo = #"@id("typo-forbid") forbid(principal, action, resource) when { resource.data_stat == "identified" };"# + "\n"
    static let erroringPermit = #"@id("typo-permit") permit(principal, action, resource) when { principal.levl > 2 };"# + "\n"

    static func fixture(skip: Bool = false, permit: Bool = false) throws -> GuardrailFixture {
        try GuardrailFixture { dir in
            try typo.write(toFile: dir + "/95-typo.cedar", atomically: true, encoding: .utf8)
            if permit { try erroringPermit.write(toFile: dir + "/96-typo.cedar", atomically: true, encoding: .utf8) }
            if skip { try #"{"forbid_errors": "skip"}"#.write(toFile: dir + "/custos.json", atomically: true, encoding: .utf8) }
        }
    }

    /// An allowed request of the example deployment for each method Cedar decides in, and
    /// where its answer keeps `errors`.
    static let calls: [(method: String, params: String)] = [
        ("decide", GuardrailFixture.decide("alice", "read", "onc301-de-clinical", #"{"purpose":"primary_research","region":"eu-central-1"}"#)),
        ("decide.batch", #"{"requests":[\#(GuardrailFixture.decide("alice", "read", "onc301-de-clinical", #"{"purpose":"primary_research","region":"eu-central-1"}"#))]}"#),
        ("transfer", #"{"principal":"User::\"pat\"","dataset":"onc301-de-clinical","from":"eu-central-1","to":"eu-west-3","kind":"replicate"}"#),
        ("place", #"{"job":{"id":"j","principal":"User::\"carol\"","study":"ONC-301","purpose":"primary_research","datasets":["onc301-de-clinical"]},"nodes":[{"name":"fra-1","region":"eu-central-1"}]}"#),
    ]

    /// The decision, reasons and errors of an answer, whatever the method.
    static func outcome(_ method: String, _ r: JSON) -> (decision: String?, reasons: [String], errors: [JSONObject]) {
        var a = r
        if method == "decide.batch" { a = r["results"]?.arrayValue?.first ?? .null }
        let decision = method == "place"
            ? ((a["allowed"]?.arrayValue?.isEmpty ?? true) ? "deny" : "allow")
            : a["decision"]?.stringValue
        return (decision, (a["reasons"]?.arrayValue ?? []).compactMap(\.stringValue),
                (a["errors"]?.arrayValue ?? []).compactMap(\.objectValue))
    }

    @Test("the example requests are allowed without the typo", arguments: ForbidErrorTests.calls.indices)
    func baseline(i: Int) throws {
        let (method, params) = Self.calls[i]
        let r = try GuardrailFixture().call(method, params)
        #expect(Self.outcome(method, r).decision == "allow")
    }

    @Test("a forbid that errors denies, named in reasons and errors with policy.forbid_error", arguments: ForbidErrorTests.calls.indices)
    func aForbidThatErrorsDenies(i: Int) throws {
        let (method, params) = Self.calls[i]
        let r = try Self.fixture().call(method, params)
        let o = Self.outcome(method, r)
        #expect(o.decision == "deny", "\(method): \(r.serialized)")
        if method != "place" { #expect(o.reasons == ["typo-forbid"], "\(method): \(r.serialized)") }
        #expect(o.errors.count == 1)
        #expect(o.errors.first?["policy"] == .string("typo-forbid"))
        #expect(o.errors.first?["code"] == .string("policy.forbid_error"))
        #expect(o.errors.first?["message"]?.stringValue?.contains("data_stat") == true)
        if method == "place" {
            let reasons = codes(r["rejected"]?.objectValue?["fra-1"])
            #expect(reasons.contains("placement.not_authorized"))
        }
    }

    @Test("with forbid_errors: skip the forbid is skipped, as in Cedar", arguments: ForbidErrorTests.calls.indices)
    func skipKeepsCedarsBehaviour(i: Int) throws {
        let (method, params) = Self.calls[i]
        let r = try Self.fixture(skip: true).call(method, params)
        let o = Self.outcome(method, r)
        #expect(o.decision == "allow", "\(method): \(r.serialized)")
        #expect(!o.reasons.contains("typo-forbid"))
        #expect(o.errors.map { $0["policy"] } == [.string("typo-forbid")])
        #expect(o.errors.first?["code"] == nil)
    }

    @Test func anErroringPermitIsStillOnlySkipped() throws {
        let f = try GuardrailFixture { dir in
            try Self.erroringPermit.write(toFile: dir + "/96-typo.cedar", atomically: true, encoding: .utf8)
        }
        let r = try f.call("decide", Self.calls[0].params)
        #expect(r["decision"] == .string("allow"))
        #expect(r["errors"]?.arrayValue?.compactMap { $0["code"] }.isEmpty == true)
    }

    @Test func aSatisfiedForbidAndAFailedOneAreBothReasons() throws {
        let f = try Self.fixture()
        // The example's own forbid on exporting identified data fires too.
        let r = try f.call("decide", GuardrailFixture.decide("frank", "export", "card201-us-ehr", #"{"purpose":"primary_research","region":"us-east-1"}"#))
        #expect(r["decision"] == .string("deny"))
        #expect(r["reasons"] == .array([.string("no-export-of-identified-data"), .string("typo-forbid")]))
    }

    @Test func theAuditEntryNamesTheFailedForbid() throws {
        let f = try Self.fixture()
        let store = f.store
        let snapshot = try #require(store.snapshot)
        let p = try DecideParams.parse(JSON.parse(Self.calls[0].params))
        let answer = try DecisionMethods.decision(p, snapshot: snapshot, services: DaemonServices(store: store), caller: f.caller,
                                                  method: "decide")
        #expect(answer.record.forbidErrors == ["typo-forbid"])
        let state = Scratch.directory("custos-forbid-audit")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let recorder = try AuditRecorder.open(stateDirectory: state)
        defer { try? recorder.close() }
        let entry = recorder.entry(for: answer.record)
        #expect(entry.decision == .deny)
        #expect(entry.reasons.contains("typo-forbid"))
        #expect(entry.reasons.contains("policy.forbid_error: typo-forbid"))
    }
}
