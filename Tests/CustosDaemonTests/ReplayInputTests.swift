import AuditLog
import Cedar
import CustosDaemon
import CustosJSON
import CustosServer
import Foundation
import Testing

/// What `audit.record_requests` keeps in a decision's entry (`request`): the inputs to decide
/// it again, bounded, or why it cannot be.
@Suite struct ReplayInputTests {
    static func recorder(recordRequests: Bool, allowList: [String] = ["purpose"]) throws -> (AuditRecorder, String) {
        let state = AuditRecorderTests.tempState()
        var options = AuditRecorderOptions(contextAllowList: allowList)
        options.recordRequests = recordRequests
        return (try AuditRecorder.open(stateDirectory: state, options: options), state)
    }

    static func decision(method: String = "decide", context: String = #"{"purpose":"care","note":"free text","region":"eu-central-1"}"#,
                         regionFromDaemon: Bool = true) throws -> DecisionRecord {
        let o = try #require(try JSON.parse(context).objectValue)
        var r = DecisionRecord(method: method, caller: AuditRecorderTests.caller,
                               request: Request(principal: EntityUID("User", "alice"), action: EntityUID("Action", "read"),
                                                resource: EntityUID("Dataset", "d1"), context: try CedarRecord(json: o)),
                               decision: .allow, policyRevision: "sha256:r",
                               decidedAt: WallTime(seconds: 1_780_315_200, nanoseconds: 250_000_000))
        r.regionFromDaemon = regionFromDaemon
        return r
    }

    @Test func withRecordRequestsOffAnEntryHoldsNoRequest() throws {
        let (r, state) = try Self.recorder(recordRequests: false)
        defer { try? r.close(); try? FileManager.default.removeItem(atPath: state) }
        let e = r.entry(for: try Self.decision())
        #expect(e.request == nil)
        #expect(!String(decoding: e.canonicalJSON(), as: UTF8.self).contains("\"request\""))
    }

    @Test func aDecideKeepsItsInputsWithTheAllowListedContextAndTheDaemonsRegion() throws {
        let (r, state) = try Self.recorder(recordRequests: true)
        defer { try? r.close(); try? FileManager.default.removeItem(atPath: state) }
        var d = try Self.decision()
        d.requestEntities = [Entity(uid: EntityUID("User", "bob"), attrs: CedarRecord([("team", .string("x"))]),
                                    parents: [EntityUID("Role", "lead")])]
        let e = r.entry(for: d)
        let q = try #require(e.request)
        #expect(q["format"] == .int(1))
        #expect(q["method"] == .string("decide"))
        #expect(q["at"] == .string("2026-06-01T12:00:00.250Z"), "the decision's own time, to the millisecond")
        #expect(q["principal"] == .object(JSONObject(["type": .string("User"), "id": .string("alice")])))
        #expect(q["resource"]?["id"] == .string("d1"))
        // `note` is not on the allow-list; the region the daemon settled is recorded and said to be its own.
        #expect(q["context"]?["purpose"] == .string("care"))
        #expect(q["context"]?["region"] == .string("eu-central-1"))
        #expect(q["context"]?["note"] == nil)
        #expect(q["context_unrecorded"] == .int(1))
        #expect(q["region_from"] == .string("daemon"))
        let entity = try #require(q["entities"]?.arrayValue?.first)
        #expect(try Entity(json: entity) == d.requestEntities[0], "request entities are kept whole, not by id only")

        // Inside the leaf: the canonical bytes hold it, and reading them back gives it again.
        let bytes = e.canonicalJSON()
        let back = try AuditEntry(canonicalJSON: bytes)
        #expect(back.request?["context"]?["purpose"] == .string("care"))
        #expect(back.canonicalJSON() == bytes)
    }

    @Test func eachRequestOfABatchIsReplayableLikeADecide() throws {
        let (r, state) = try Self.recorder(recordRequests: true)
        defer { try? r.close(); try? FileManager.default.removeItem(atPath: state) }
        let q = try #require(r.entry(for: try Self.decision(method: "decide.batch")).request)
        #expect(q["method"] == .string("decide.batch"))
        #expect(q["not_replayable"] == nil)
        #expect(q["principal"]?["id"] == .string("alice"))
    }

    @Test func aRegionTheCallerAssertedIsRecordedOnlyWhenAllowListedAndSaidToBeTheCallers() throws {
        let (r, state) = try Self.recorder(recordRequests: true)
        defer { try? r.close(); try? FileManager.default.removeItem(atPath: state) }
        let q = try #require(r.entry(for: try Self.decision(regionFromDaemon: false)).request)
        #expect(q["context"]?["region"] == nil)
        #expect(q["context_unrecorded"] == .int(2))
        #expect(q["region_from"] == .string("caller"))
    }

    @Test(arguments: [
        ("place", "place is not replayable: it rests on the node inventory"),
        ("nodes.check", "nodes.check is not replayable"),
    ])
    func methodsThatCannotBeReplayedAreRecordedAsSuch(method: String, why: String) throws {
        let (r, state) = try Self.recorder(recordRequests: true)
        defer { try? r.close(); try? FileManager.default.removeItem(atPath: state) }
        let q = try #require(r.entry(for: try Self.decision(method: method)).request)
        #expect(q["method"] == .string(method))
        #expect(q["not_replayable"]?.stringValue?.hasPrefix(why) == true, "\(q)")
        #expect(q["principal"] == nil)
    }

    @Test func aTransferKeepsTheParamsTheCallerSent() throws {
        let (r, state) = try Self.recorder(recordRequests: true)
        defer { try? r.close(); try? FileManager.default.removeItem(atPath: state) }
        let d = DecisionRecord(method: "transfer", caller: AuditRecorderTests.caller,
                               request: Request(principal: EntityUID("User", #"p"at"#), action: EntityUID("Action", "transfer"),
                                                resource: EntityUID("Dataset", "onc301-de-clinical"),
                                                context: CedarRecord([("kind", .string("replicate")), ("from", .string("eu-central-1")),
                                                                      ("to", .string("eu-west-3"))])),
                               decision: .allow, policyRevision: "sha256:r", decidedAt: WallTime(seconds: 1_780_315_200, nanoseconds: 0))
        let q = try #require(r.entry(for: d).request)
        #expect(q["method"] == .string("transfer"))
        #expect(q["params"] == .object(JSONObject([
            "principal": .string(#"User::"p\"at""#), "dataset": .string("onc301-de-clinical"),
            "from": .string("eu-central-1"), "to": .string("eu-west-3"), "kind": .string("replicate")])))
    }

    @Test func aRequestNamingAnInventoryNodeIsNotReplayable() throws {
        let (r, state) = try Self.recorder(recordRequests: true)
        defer { try? r.close(); try? FileManager.default.removeItem(atPath: state) }
        var d = try Self.decision(context: #"{"purpose":"care","node":"gpu-1","region":"eu-central-1"}"#)
        d.namedNode = true
        let q = try #require(r.entry(for: d).request)
        #expect(q["not_replayable"]?.stringValue?.contains("context.node") == true)
    }

    @Test func aRequestOverTheBoundIsRecordedAsNotReplayableNeverCut() throws {
        let (r, state) = try Self.recorder(recordRequests: true, allowList: ["purpose", "note"])
        defer { try? r.close(); try? FileManager.default.removeItem(atPath: state) }
        let big = String(repeating: "x", count: ReplayInput.maxBytes)
        let e = r.entry(for: try Self.decision(context: #"{"purpose":"care","note":"\#(big)"}"#))
        let q = try #require(e.request)
        #expect(q["not_replayable"] == .string("the request is over the \(ReplayInput.maxBytes)-byte bound of a recorded request"))
        #expect((q["bytes"]?.intValue ?? 0) > Int64(ReplayInput.maxBytes))
        #expect(q["context"] == nil)
        #expect(e.canonicalJSON().count < 8 << 10, "the entry stays small: the note is in its context bounded, and nowhere else")

        // Just under the bound it is kept whole.
        let fits = String(repeating: "x", count: ReplayInput.maxBytes - 400)
        let kept = try #require(r.entry(for: try Self.decision(context: #"{"purpose":"care","note":"\#(fits)"}"#)).request)
        #expect(kept["context"]?["note"] == .string(fits))
    }
}
