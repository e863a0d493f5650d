import CustosDaemon
import CustosServer
import Testing

@Suite struct ConfigTests {
    @Test func defaultsOpenEverythingButReloadWhichOnlyTheDaemonUIDMayCall() {
        let access = DaemonConfig.defaultAccess(adminUID: 500)
        #expect(access.defaultRule.permits(uid: 1234, gid: 1234))
        let reload = access.entries.first { $0.method == "policy.reload" }?.rule
        #expect(reload?.permits(uid: 500, gid: 1) == true)
        #expect(reload?.permits(uid: 501, gid: 1) == false)
    }

    @Test func aFullConfigurationIsRead() throws {
        let c = try DaemonConfig.parse(text: #"""
        {"socket":{"mode":"0600","group":42},
         "limits":{"max_connections":8,"max_line_bytes":4096,"batch_limit":10,"idle_timeout_seconds":5,
                   "write_timeout_seconds":2,"drain_timeout_seconds":3},
         "access":{"default":{"allow_gids":[42]},"methods":{"policy.reload":"nobody","health":"anyone"}}}
        """#)
        #expect(c.socketMode == 0o600)
        #expect(c.socketGroup == 42)
        #expect(c.limits.maxConnections == 8)
        #expect(c.limits.maxLineBytes == 4096)
        #expect(c.limits.batchLimit == 10)
        #expect(c.limits.idleTimeoutSeconds == 5)
        #expect(c.access.defaultRule.permits(uid: 1, gid: 42))
        #expect(!c.access.defaultRule.permits(uid: 1, gid: 43))
        #expect(c.access.entries.first { $0.method == "policy.reload" }?.rule == .nobody)
        #expect(c.access.entries.first { $0.method == "health" }?.rule == .anyone)
    }

    @Test(arguments: [
        (#"{"limits":{"max_conections":8}}"#, "limits.max_conections"),
        (#"{"sockets":{}}"#, "sockets"),
        (#"{"socket":{"mode":"0999"}}"#, "socket.mode"),
        (#"{"socket":{"mode":660}}"#, "socket.mode"),
        (#"{"limits":{"batch_limit":0}}"#, "limits.batch_limit"),
        (#"{"limits":{"max_connections":"8"}}"#, "limits.max_connections"),
        (#"{"access":{"methods":{"decide":{"allow_user":[1]}}}}"#, "access.methods.decide.allow_user"),
        (#"{"access":{"methods":{"decide":{"allow_uids":[-1]}}}}"#, "access.methods.decide.allow_uids[0]"),
        (#"{"region":5}"#, "region"),
        (#"{"region":""}"#, "region"),
    ])
    func mistakesNameTheFileAndKey(text: String, key: String) {
        do {
            _ = try DaemonConfig.parse(text: text, file: "custos.json")
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.key == key)
            #expect(error.description.hasPrefix("custos.json: \(key): "))
        }
    }

    @Test func theRegionIsReadAndRequestEntitiesAreGrantedToNobodyUnlessNamed() throws {
        #expect(DaemonConfig().region == nil)
        #expect(try DaemonConfig.parse(text: #"{"region":"eu-central-1"}"#).region == "eu-central-1")
        let byDefault = DaemonConfig.defaultAccess(adminUID: 500).entries.first { $0.method == "entities" }?.rule
        #expect(byDefault == .nobody, "not even the daemon's own uid")
        let open = try DaemonConfig.parse(text: #"{"access":{"default":"anyone","methods":{"entities":{"allow_gids":[42]}}}}"#)
        let rule = open.access.entries.first { $0.method == "entities" }?.rule
        #expect(rule?.permits(uid: 1, gid: 42) == true)
        #expect(rule?.permits(uid: 1, gid: 43) == false)
    }

    @Test func accessRulesForUnknownMethodsAreRefusedWhenTheDaemonStarts() throws {
        let c = try DaemonConfig.parse(text: #"{"access":{"methods":{"policy.relaod":"nobody"}}}"#)
        #expect(throws: DaemonError.self) {
            _ = try Daemon(DaemonOptions(policiesDirectory: "/nonexistent", socketPath: "/tmp/unused.sock", config: c))
        }
    }
}
