import CustosDaemon
import CustosJSON
import CustosServer
import Foundation
import Testing

/// Naming the data's study in the request is not membership of it (issue 10 §1).
@Suite struct StudyMembershipTests {

    /// An auditor in CARD-201 only; the auditor permit reads no study, so only isolation stands
    /// between her and ONC-301 data.
    static let ursula = #"{"uid":{"type":"User","id":"ursula"},"attrs":{"studies":[{"__entity":{"type":"Study","id":"CARD-201"}}]},"parents":[{"type":"Role","id":"auditor"}]}"#

    @Test(arguments: [
        (#"{"purpose":"primary_research","region":"eu-central-1","study":"ONC-301"}"#, "onc301-de-clinical", ["isolation.not_member"]),
        (#"{"purpose":"primary_research","region":"eu-central-1","study":{"__entity":{"type":"Study","id":"ONC-301"}}}"#, "onc301-de-clinical", ["isolation.not_member"]),
        (#"{"purpose":"primary_research","region":"eu-central-1"}"#, "onc301-de-clinical", ["isolation.study_mismatch"]),
        (#"{"purpose":"primary_research","region":"eu-central-1","study":"CARD-201"}"#, "onc301-de-clinical", ["isolation.study_mismatch", "isolation.not_member"]),
        (#"{"purpose":"primary_research","region":"us-east-1","study":"CARD-201"}"#, "card201-us-ehr", []),
    ])
    func namingTheDatasStudyDoesNotMakeThePrincipalAMember(_ context: String, _ dataset: String, _ expected: [String]) throws {
        let f = try GuardrailFixture(edit: Trust.addEntities(Self.ursula))
        let r = try f.object("decide", Trust.request(#"{"type":"User","id":"ursula"}"#, "read_metadata",
                                                    #"{"type":"Dataset","id":"\#(dataset)"}"#, context: context))
        #expect(codes(r["guardrail_reasons"]) == expected)
        #expect(r["decision"]?.stringValue == (expected.isEmpty ? "allow" : "deny"))
    }

    @Test func placeNeedsAMemberOfTheJobsStudyToo() throws {
        let f = try GuardrailFixture(edit: Trust.addEntities(Self.ursula))
        // Cedar's place permits need membership as well; the guardrail holds without them.
        let r = try f.object("place", #"{"job":{"id":"j","principal":"User::\"ursula\"","study":"ONC-301","purpose":"primary_research","datasets":["onc301-de-clinical"]},"nodes":[{"name":"fra-1","region":"eu-central-1"}]}"#)
        let reasons = codes(r["rejected"]?["fra-1"])
        #expect(reasons.contains("isolation.not_member"), "\(reasons)")
    }
}
