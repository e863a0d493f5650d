import CustosJSON
import Foundation
import Testing

/// Without `state.store` nothing of fleet mode is in play (docs/fleet.md): the embedded journal,
/// said so by `health`, and the consent methods work as they always did.
@Suite struct EmbeddedStateTests {
    @Test func healthNamesTheEmbeddedStoreAndConsentChangesWorkWithoutAnyDatabase() throws {
        let d = try TestDaemon().start()
        let h = try d.call("health").get()
        #expect(h["state"] == .object(JSONObject(["store": .string("embedded")])))
        #expect(h["ready"] == .bool(true))
        let grant: JSON = .object(JSONObject(["cohort": .string("onc301-de"), "purpose": .string("ml_model_training"),
                                              "evidence": .string("ICF v3 section 9")]))
        #expect(try d.call("consent.grant", grant).get()["recorded"] == .bool(true))
        #expect(FileManager.default.fileExists(atPath: d.dir + "/guardrails/consent.journal"))
    }
}
