import Cedar
import CustosDaemon
import CustosJSON
import CustosServer
import Foundation
import Testing

/// The daemon's side of the bounds (docs/security.md, "Limits"): request entities against the
/// `limits` configuration, a folder whose hierarchy is too deep, and the new configuration keys.
@Suite struct BoundsTests {
    let caller = CallContext(uid: 1000, gid: 1000, pid: 1, connectionID: 1)

    /// The cost limits, not the trust rules, are under test: the caller holds the `entities`
    /// privilege, and the folder's `custos.json` keeps no type for itself.
    func dispatcher(_ files: [String: String], limits: DaemonLimits = DaemonLimits()) throws -> (Dispatcher, String) {
        var files = files
        files["custos.json"] = #"{"authoritative_types":[],"data_types":[]}"#
        let dir = try makeFolder(files)
        let store = PolicyStore(directory: dir)
        store.reload()
        let s = DaemonServices(store: store, limits: limits)
        var table = MethodTable()
        for r in Daemon.methodFamilies { r(&table, s) }
        return (try Dispatcher(methods: table, access: AccessPolicy(entries: [.init(method: "entities", rule: .anyone)])), dir)
    }

    /// `User::"u0"` whose parent is `User::"u1"`, ..., the last one's parent is `Role::"reader"`.
    static func chain(_ n: Int) -> String {
        (0..<n).map { i in
            let parent = i + 1 < n ? #"{"type":"User","id":"u\#(i + 1)"}"# : #"{"type":"Role","id":"reader"}"#
            return #"{"uid":{"type":"User","id":"u\#(i)"},"attrs":{},"parents":[\#(parent)]}"#
        }.joined(separator: ",")
    }

    static func decide(entities: String) -> String {
        #"{"principal":{"type":"User","id":"u0"},"action":{"type":"Action","id":"read"},"resource":{"type":"R","id":"x"},"entities":[\#(entities)]}"#
    }

    static let readers = "@id(\"readers\") permit(principal in Role::\"reader\", action, resource);\n"
    static let folder = #"[{"uid":{"type":"Role","id":"reader"},"attrs":{},"parents":[]},{"uid":{"type":"User","id":"carol"},"attrs":{},"parents":[{"type":"Team","id":"ghost"}]}]"#

    @Test func aRequestChainWithinTheLimitsIsDecidedThroughTheFolderHierarchy() throws {
        let (d, dir) = try dispatcher(["p.cedar": Self.readers, "entities.json": Self.folder])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try d.call("decide", params: Params(try JSON.parse(Self.decide(entities: Self.chain(32)))), context: caller)
        #expect(r.objectValue?["decision"] == .string("allow"))
        #expect(r.objectValue?["reasons"] == .array([.string("readers")]))
    }

    /// Each limit is -32602 naming `params.entities` (or the batch element's), the limit and
    /// the configuration key that sets it.
    @Test(arguments: [
        (12_850, "params.entities", "limits.max_request_entities", "the limit is 1000"),
        (33, "params.entities", "limits.max_request_entity_depth", "the limit is 32"),
        (20, "params.entities", "limits.max_request_ancestors", "the limit is 100"),
    ])
    func aRequestOverAnEntityLimitIsInvalidParamsNamingTheLimit(length: Int, field: String, key: String, limit: String) throws {
        var limits = DaemonLimits()
        if key == "limits.max_request_ancestors" { limits.maxRequestAncestors = 100 }
        let (d, dir) = try dispatcher(["p.cedar": Self.readers, "entities.json": Self.folder], limits: limits)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let params = Params(try JSON.parse(Self.decide(entities: Self.chain(length))))
        let e = try #require(rpcError { () throws(RPCError) in _ = try d.call("decide", params: params, context: caller) })
        #expect(e.code == RPCError.invalidParamsCode)
        #expect(e.message.hasPrefix("invalid params: \(field): "), "\(e.message)")
        #expect(e.message.contains(key) && e.message.contains(limit), "\(e.message)")
    }

    @Test func theLimitsAreConfigurableAndApplyToEachRequestOfABatch() throws {
        var limits = DaemonLimits()
        limits.maxRequestEntities = 5
        let (d, dir) = try dispatcher(["p.cedar": Self.readers, "entities.json": Self.folder], limits: limits)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let batch = Params(try JSON.parse(#"{"requests":[\#(Self.decide(entities: Self.chain(5))),\#(Self.decide(entities: Self.chain(6)))]}"#))
        let e = try #require(rpcError { () throws(RPCError) in _ = try d.call("decide.batch", params: batch, context: caller) })
        #expect(e.message.hasPrefix("invalid params: params.requests[1].entities: the request brings 6 entities; the limit is 5"), "\(e.message)")
    }

    /// The folder's `User::"carol"` names `Team::"ghost"` as a parent; a request defining it would
    /// change carol's ancestors, which are computed once per load.
    @Test func aRequestEntityThatAFolderEntityNamesAsParentIsInvalidParams() throws {
        let (d, dir) = try dispatcher(["p.cedar": Self.readers, "entities.json": Self.folder])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ghost = #"{"uid":{"type":"Team","id":"ghost"},"attrs":{},"parents":[{"type":"Role","id":"reader"}]}"#
        let params = Params(try JSON.parse(#"{"principal":{"type":"User","id":"carol"},"action":{"type":"Action","id":"read"},"resource":{"type":"R","id":"x"},"entities":[\#(ghost)]}"#))
        let e = try #require(rpcError { () throws(RPCError) in _ = try d.call("decide", params: params, context: caller) })
        #expect(e.code == RPCError.invalidParamsCode)
        #expect(e.message.contains(#"Team::\"ghost\""#) || e.message.contains(#"Team::"ghost""#), "\(e.message)")
    }

    @Test func aFolderWhoseHierarchyIsTooDeepFailsTheLoadAndKeepsThePreviousSet() throws {
        let dir = try makeFolder(["p.cedar": Self.readers, "entities.json": Self.folder])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = PolicyStore(directory: dir)
        let first = try store.reload().get()
        let deep = "[" + (0..<16_000).map { i in
            let parents = i + 1 < 16_000 ? #"[{"type":"G","id":"\#(i + 1)"}]"# : "[]"
            return #"{"uid":{"type":"G","id":"\#(i)"},"attrs":{},"parents":\#(parents)}"#
        }.joined(separator: ",") + "]"
        try deep.write(toFile: dir + "/entities.json", atomically: true, encoding: .utf8)
        guard case .failure(let e) = store.reload() else { Issue.record("a 16,000-deep hierarchy loaded"); return }
        #expect(e.message.hasPrefix(dir + "/entities.json: "), "\(e.message)")
        #expect(e.message.contains("the limit is 1000"), "\(e.message)")
        #expect(store.snapshot?.revision == first.revision)
    }

    @Test func theBoundsKeysAreReadFromTheConfiguration() throws {
        let c = try DaemonConfig.parse(text: #"""
        {"limits":{"line_timeout_seconds":3,"max_connections_per_uid":7,"reserved_admin_connections":2,
                   "max_request_entities":50,"max_request_entity_depth":4,"max_request_ancestors":99}}
        """#)
        #expect(c.limits.lineTimeoutSeconds == 3)
        #expect(c.limits.maxConnectionsPerUID == 7)
        #expect(c.limits.reservedAdminConnections == 2)
        #expect(c.limits.maxRequestEntities == 50)
        #expect(c.limits.maxRequestEntityDepth == 4)
        #expect(c.limits.maxRequestAncestors == 99)
        let d = DaemonLimits()
        let defaults: [Int] = [d.lineTimeoutSeconds, d.maxConnectionsPerUID, d.reservedAdminConnections,
                               d.maxRequestEntities, d.maxRequestEntityDepth, d.maxRequestAncestors]
        #expect(defaults == [10, 128, 16, 1_000, 32, 100_000])
    }

    /// Left unset, the reserve is at most an eighth of the slots, so a small max_connections
    /// still leaves most of them to everyone.
    @Test(arguments: [(8, 1), (64, 8), (1_024, 16), (4_096, 16)])
    func theDefaultAdminReserveIsAtMostAnEighthOfTheSlots(maxConnections: Int, reserved: Int) throws {
        let c = try DaemonConfig.parse(text: #"{"limits":{"max_connections":\#(maxConnections)}}"#)
        #expect(c.limits.reservedAdminConnections == reserved)
    }

    @Test(arguments: [
        (#"{"limits":{"reserved_admin_connections":8,"max_connections":8}}"#, "limits.reserved_admin_connections"),
        (#"{"limits":{"reserved_admin_connections":-1}}"#, "limits.reserved_admin_connections"),
        (#"{"limits":{"line_timeout_seconds":0}}"#, "limits.line_timeout_seconds"),
        (#"{"limits":{"max_connections_per_uid":0}}"#, "limits.max_connections_per_uid"),
        (#"{"limits":{"max_request_entities":0}}"#, "limits.max_request_entities"),
        (#"{"limits":{"max_request_entity_depth":"32"}}"#, "limits.max_request_entity_depth"),
        (#"{"limits":{"max_request_ancestors":1.5}}"#, "limits.max_request_ancestors"),
    ])
    func badBoundsKeysNameTheKey(text: String, key: String) {
        do {
            _ = try DaemonConfig.parse(text: text, file: "custos.json")
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.key == key, "\(error)")
        }
    }
}
