import CustosDaemon
import CustosJSON
import CustosServer
import Foundation
import Testing

/// The guardrail configuration as part of the policy snapshot.
@Suite struct GuardrailConfigLoadTests {
    static let badTransfers = #"{"last_reviewed":"2026-06-30","adequacy":[{"destination":"FR","scope":"whole_territory","decision":"x"}],"bases":[]}"#

    @Test func theExampleFolderLoadsWithActiveGuardrailsWhoseFilesCountInTheRevision() throws {
        let f = try GuardrailFixture()
        let s = try #require(f.store.snapshot)
        #expect(s.guardrails.status.isActive)
        #expect(s.files.contains("guardrails/regions.json"))
        let status = StatusMethods.status(f.store).objectValue
        #expect(status?["guardrails"]?.stringValue?.hasPrefix("active (guardrails/regions.json") == true)
        let regions = try String(contentsOfFile: f.policies + "/guardrails/regions.json", encoding: .utf8)
        try (regions + "\n").write(toFile: f.policies + "/guardrails/regions.json", atomically: true, encoding: .utf8)
        guard case .success(let changed) = f.store.reload() else { Issue.record("the edited regions.json did not load"); return }
        #expect(changed.revision != s.revision, "a byte more in a guardrail file is a new revision")
    }

    @Test(arguments: [
        ("transfers.json", badTransfers, "guardrails/transfers.json: $.adequacy[0].destination"),
        ("regions.json", #"{"last_reviewed":"2026-06-30","regions":{"x":{"jurisdiction":"XX"}}}"#, "guardrails/regions.json: $.regions"),
        ("purposes.json", #"{"purposes":{"p":{"legal_basis":"consent","art9_condition":"j"}},"colour":1}"#, "guardrails/purposes.json"),
        ("retention.jsn", "{}", "guardrails/retention.jsn"),
    ])
    func aBadConfigurationFailsTheLoadNamingFileAndField(file: String, text: String, expected: String) throws {
        let f = try GuardrailFixture()
        try text.write(toFile: f.policies + "/guardrails/" + file, atomically: true, encoding: .utf8)
        #expect(throws: PolicyStoreError.self) { try PolicyStore.load(directory: f.policies) }
        do { _ = try PolicyStore.load(directory: f.policies) } catch {
            #expect(error.message.contains(expected), "\(error.message)")
        }
    }

    @Test func aFailedReloadKeepsThePreviousPoliciesAndGuardrailConfiguration() throws {
        let f = try GuardrailFixture()
        let before = try #require(f.store.snapshot)
        try Self.badTransfers.write(toFile: f.policies + "/guardrails/transfers.json", atomically: true, encoding: .utf8)
        guard case .failure(let e) = f.store.reload() else { Issue.record("a bad transfers.json loaded"); return }
        #expect(e.message.contains("transfers.json"))
        let kept = try #require(f.store.snapshot)
        #expect(kept === before)
        #expect(kept.guardrails.status == before.guardrails.status)
        // The kept configuration still decides: the Singapore SCC (only in the good file) applies.
        let r = try f.object("transfer", #"{"principal":"User::\"pat\"","dataset":"onc301-de-clinical","from":"eu-central-1","to":"sg-cro","kind":"backup"}"#)
        #expect(r["decision"]?.stringValue == "allow")
        #expect(r["policy_revision"]?.stringValue == before.revision)
    }

    @Test func withoutAGuardrailsFolderOnlyCedarDecidesAndTheStatusSaysInactive() throws {
        let f = try GuardrailFixture { policies in
            try FileManager.default.removeItem(atPath: policies + "/guardrails")
        }
        #expect(StatusMethods.status(f.store).objectValue?["guardrails"]?.stringValue == "inactive (no configuration)")
        let r = try f.object("decide", GuardrailFixture.decide("alice", "read", "onc301-de-clinical", #"{"purpose":"primary_research","region":"in-hyderabad"}"#))
        #expect(r["decision"]?.stringValue == "allow")
        #expect(r["guardrail_reasons"] == .array([]))
    }
}
