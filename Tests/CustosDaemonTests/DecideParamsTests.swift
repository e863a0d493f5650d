import Cedar
import CustosDaemon
import CustosJSON
import CustosServer
import Foundation
import Testing

private func parse(_ text: String) throws -> JSON { try JSON.parse(text) }

/// The RPCError `body` throws, or nil when it returns.
func rpcError(_ body: () throws(RPCError) -> Void) -> RPCError? {
    do { try body(); return nil } catch { return error }
}

@Suite struct DecideParamsTests {
    @Test func aCompleteRequestParsesWithContextAndRequestEntities() throws {
        let p = try DecideParams.parse(parse(#"""
        {"principal":{"type":"User","id":"alice"},"action":{"type":"Action","id":"read"},
         "resource":{"type":"Dataset","id":"d1"},"context":{"purpose":"qa"},
         "entities":[{"uid":{"type":"Dataset","id":"d1"},"attrs":{},"parents":[]}]}
        """#))
        #expect(p.request.principal == EntityUID("User", "alice"))
        #expect(p.request.resource == EntityUID("Dataset", "d1"))
        #expect(p.request.context.count == 1)
        #expect(p.entities.count == 1)
    }

    @Test(arguments: [
        (#"{"action":{"type":"A","id":"r"},"resource":{"type":"R","id":"x"}}"#, "params.principal"),
        (#"{"principal":{"type":"U"},"action":{"type":"A","id":"r"},"resource":{"type":"R","id":"x"}}"#, "params.principal"),
        (#"{"principal":{"type":"U","id":"a"},"action":"read","resource":{"type":"R","id":"x"}}"#, "params.action"),
        (#"{"principal":{"type":"U","id":"a"},"action":{"type":"A","id":"r"},"resource":{"type":"R","id":"x"},"context":[1]}"#, "params.context"),
        (#"{"principal":{"type":"U","id":"a"},"action":{"type":"A","id":"r"},"resource":{"type":"R","id":"x"},"context":{"n":1.5}}"#, "params.context.n"),
        (#"{"principal":{"type":"U","id":"a"},"action":{"type":"A","id":"r"},"resource":{"type":"R","id":"x"},"contxt":{}}"#, "params.contxt"),
        (#"{"principal":{"type":"U","id":"a"},"action":{"type":"A","id":"r"},"resource":{"type":"R","id":"x"},"entities":[{"uid":{"type":"R","id":"x"},"attrs":{}}]}"#, "params.entities[0]"),
        (#"[1,2]"#, "params"),
    ])
    func invalidParamsNameTheOffendingField(text: String, field: String) throws {
        let json = try parse(text)
        let error = try #require(rpcError { () throws(RPCError) in _ = try DecideParams.parse(json) })
        #expect(error.code == RPCError.invalidParamsCode)
        #expect(error.message.hasPrefix("invalid params: \(field)"), "\(error.message)")
    }

    @Test func missingParamsAreInvalidParams() {
        #expect(throws: RPCError.self) { try DecideParams.parse(nil) }
    }
}

@Suite struct DecisionMethodTests {
    func services(_ files: [String: String], batchLimit: Int = 3,
                  access: AccessPolicy = AccessPolicy()) throws -> (DaemonServices, Dispatcher, String) {
        let dir = try makeFolder(files)
        let store = PolicyStore(directory: dir)
        store.reload()
        var limits = DaemonLimits()
        limits.batchLimit = batchLimit
        let s = DaemonServices(store: store, limits: limits)
        var table = MethodTable()
        for r in Daemon.methodFamilies { r(&table, s) }
        return (s, try Dispatcher(methods: table, access: access), dir)
    }

    let caller = CallContext(uid: 1000, gid: 1000, pid: 1, connectionID: 1)
    let aliceReads = #"{"principal":{"type":"User","id":"alice"},"action":{"type":"Action","id":"read"},"resource":{"type":"R","id":"x"}}"#
    let bobReads = #"{"principal":{"type":"User","id":"bob"},"action":{"type":"Action","id":"read"},"resource":{"type":"R","id":"x"}}"#

    @Test func allowAndDenyAreResultsWithReasonsIDAndRevision() throws {
        let (s, d, dir) = try services(["p.cedar": permitAll + forbidBob])
        defer { try? FileManager.default.removeItem(atPath: "\(dir)") }
        let allow = try d.call("decide", params: Params(try JSON.parse(aliceReads)), context: caller).objectValue!
        let deny = try d.call("decide", params: Params(try JSON.parse(bobReads)), context: caller).objectValue!
        #expect(allow["decision"] == .string("allow"))
        #expect(allow["reasons"] == .array([.string("everyone")]))
        #expect(deny["decision"] == .string("deny"))
        #expect(deny["reasons"] == .array([.string("policy1")]))
        #expect(allow["policy_revision"] == .string(s.store.snapshot!.revision))
        let id1 = allow["decision_id"]!.stringValue!, id2 = deny["decision_id"]!.stringValue!
        #expect(id1 < id2)
        #expect(id1.count == 36)
    }

    @Test func evaluationErrorsNameThePolicyAndItsMessage() throws {
        let (_, d, dir) = try services(["p.cedar": "@id(\"needs-level\") permit(principal, action, resource) when { principal.level > 2 };"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try d.call("decide", params: Params(try JSON.parse(aliceReads)), context: caller).objectValue!
        #expect(r["decision"] == .string("deny"))
        let e = r["errors"]?.arrayValue?.first?.objectValue
        #expect(e?["policy"] == .string("needs-level"))
        #expect(e?["message"]?.stringValue?.isEmpty == false)
    }

    @Test func batchAnswersInOrderAndRefusesOverTheLimitAsOverloaded() throws {
        let (_, d, dir) = try services(["p.cedar": permitAll + forbidBob], batchLimit: 3)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ok = try d.call("decide.batch", params: Params(try JSON.parse("{\"requests\":[\(aliceReads),\(bobReads),\(aliceReads)]}")), context: caller)
        let decisions = ok.objectValue?["results"]?.arrayValue?.map { $0.objectValue?["decision"]?.stringValue ?? "?" }
        #expect(decisions == ["allow", "deny", "allow"])
        let four = Params(try JSON.parse("{\"requests\":[\(aliceReads),\(aliceReads),\(aliceReads),\(aliceReads)]}"))
        #expect(rpcError { () throws(RPCError) in _ = try d.call("decide.batch", params: four, context: caller) }?.code == RPCError.overloadedCode)
        let bad = Params(try JSON.parse("{\"requests\":[\(aliceReads),{\"principal\":1}]}"))
        let e = try #require(rpcError { () throws(RPCError) in _ = try d.call("decide.batch", params: bad, context: caller) })
        #expect(e.code == RPCError.invalidParamsCode)
        #expect(e.message.contains("params.requests[1].principal"), "\(e.message)")
    }

    @Test func requestEntitiesAreMergedAndDuplicatesOfTheFolderAreInvalidParams() throws {
        // User is left out of the authoritative types so the duplicate, not the type, is refused.
        let (_, d, dir) = try services(["p.cedar": "permit(principal, action, resource) when { resource.open };", "entities.json": oneUser,
                                        "custos.json": #"{"authoritative_types":["Role"]}"#],
                                       access: AccessPolicy(entries: [.init(method: "entities", rule: .anyone)]))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let withEntity = #"{"principal":{"type":"User","id":"alice"},"action":{"type":"Action","id":"read"},"resource":{"type":"R","id":"x"},"entities":[{"uid":{"type":"R","id":"x"},"attrs":{"open":true},"parents":[]}]}"#
        #expect(try d.call("decide", params: Params(try JSON.parse(withEntity)), context: caller).objectValue?["decision"] == .string("allow"))
        let dup = #"{"principal":{"type":"User","id":"alice"},"action":{"type":"Action","id":"read"},"resource":{"type":"R","id":"x"},"entities":[{"uid":{"type":"User","id":"alice"},"attrs":{},"parents":[]}]}"#
        let dupParams = Params(try JSON.parse(dup))
        let e = rpcError { () throws(RPCError) in _ = try d.call("decide", params: dupParams, context: caller) }
        #expect(e?.code == RPCError.invalidParamsCode)
        #expect(e?.message.contains("is defined more than once") == true, "\(e?.message ?? "")")
        #expect(e?.message.contains("must not repeat each other or the folder's entities.json") == true, "\(e?.message ?? "")")
    }

    @Test func decideIsNotReadyUntilPoliciesLoadAndHealthSaysWhy() throws {
        let (_, d, dir) = try services(["p.cedar": "permit("])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = Params(try JSON.parse(aliceReads))
        #expect(rpcError { () throws(RPCError) in _ = try d.call("decide", params: p, context: caller) }?.code == RPCError.notReadyCode)
        let h = try d.call("health", params: Params(nil), context: caller).objectValue!
        #expect(h["ready"] == .bool(false))
        #expect(h["reasons"]?.arrayValue?.first?.stringValue?.contains("p.cedar") == true)
    }
}

@Suite struct ClockAndIDTests {
    @Test(arguments: [
        (Int64(0), Int32(0), "1970-01-01T00:00:00.000Z"),
        (Int64(951_782_400), Int32(5_000_000), "2000-02-29T00:00:00.005Z"),
        (Int64(1_795_503_987), Int32(999_999_999), "2026-11-24T07:06:27.999Z"),
        (Int64(-1), Int32(0), "1969-12-31T23:59:59.000Z"),
    ])
    func rfc3339IsUTCWithMilliseconds(seconds: Int64, nanos: Int32, text: String) {
        #expect(WallTime(seconds: seconds, nanoseconds: nanos).rfc3339 == text)
    }

    @Test func decisionIDsAreVersion7AndStrictlyIncreasingWithinOneMillisecond() {
        let t = WallTime.now()
        var last = ""
        for _ in 0..<5000 {
            let id = DecisionID.nextString(now: t)
            #expect(id > last)
            last = id
        }
        let chars = Array(last)
        #expect(chars[14] == "7")
        #expect("89ab".contains(chars[19]))
    }
}
