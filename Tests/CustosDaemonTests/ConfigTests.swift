import CustosDaemon
import CustosServer
import Glibc
import Testing

@Suite struct ConfigTests {
    @Test func byDefaultTheDecisionsAndHealthAreOpenAndEverythingElseIsForTheDaemonUID() {
        let access = DaemonConfig.defaultAccess(adminUID: 500)
        for method in ["decide", "decide.batch", "place", "transfer", "health"] {
            #expect(access.rule(for: method).permits(uid: 1234, gid: 1234), "\(method)")
        }
        for method in ["policy.reload", "policy.status", "consent.get", "nodes.list", "retention.due", "any.future.method"] {
            #expect(access.rule(for: method).permits(uid: 500, gid: 1), "\(method)")
            #expect(!access.rule(for: method).permits(uid: 501, gid: 1), "\(method)")
        }
    }

    @Test func aFullConfigurationIsRead() throws {
        let c = try DaemonConfig.parse(text: #"""
        {"socket":{"mode":"0600","group":42,"spin_microseconds":0},
         "limits":{"max_connections":8,"max_line_bytes":4096,"batch_limit":10,"idle_timeout_seconds":5,
                   "write_timeout_seconds":2,"drain_timeout_seconds":3},
         "access":{"admin_uids":[7],"admin_gids":[42],"methods":{"policy.reload":"nobody","health":"anyone"}}}
        """#)
        #expect(c.socketMode == 0o600)
        #expect(c.socketGroup == 42)
        #expect(c.socketSpinMicroseconds == 0)
        #expect(DaemonConfig().socketSpinMicroseconds == 50, "polling 50 µs before sleeping unless configured")
        #expect(c.limits.maxConnections == 8)
        #expect(c.limits.maxLineBytes == 4096)
        #expect(c.limits.batchLimit == 10)
        #expect(c.limits.idleTimeoutSeconds == 5)
        #expect(c.access.defaultRule.permits(uid: 1, gid: 42))
        #expect(c.access.defaultRule.permits(uid: 7, gid: 43))
        #expect(c.access.defaultRule.permits(uid: getuid(), gid: 43), "the daemon's own uid stays an admin")
        #expect(!c.access.defaultRule.permits(uid: 1, gid: 43))
        #expect(c.access.rule(for: "consent.get") == c.access.defaultRule)
        #expect(c.access.rule(for: "decide") == .anyone)
        #expect(c.access.entries.first { $0.method == "policy.reload" }?.rule == .nobody)
        #expect(c.access.entries.first { $0.method == "health" }?.rule == .anyone)
    }

    @Test(arguments: [
        (#"{"limits":{"max_conections":8}}"#, "limits.max_conections"),
        (#"{"sockets":{}}"#, "sockets"),
        (#"{"socket":{"mode":"0999"}}"#, "socket.mode"),
        (#"{"socket":{"mode":660}}"#, "socket.mode"),
        (#"{"socket":{"spin_microseconds":1001}}"#, "socket.spin_microseconds"),
        (#"{"socket":{"spin_microseconds":-1}}"#, "socket.spin_microseconds"),
        (#"{"socket":{"spin_microseconds":"50"}}"#, "socket.spin_microseconds"),
        (#"{"socket":{"spin_microseconds":2.5}}"#, "socket.spin_microseconds"),
        (#"{"limits":{"batch_limit":0}}"#, "limits.batch_limit"),
        (#"{"limits":{"max_connections":"8"}}"#, "limits.max_connections"),
        (#"{"access":{"methods":{"decide":{"allow_user":[1]}}}}"#, "access.methods.decide.allow_user"),
        (#"{"access":{"methods":{"decide":{"allow_uids":[-1]}}}}"#, "access.methods.decide.allow_uids[0]"),
        (#"{"access":{"admin_gids":"990"}}"#, "access.admin_gids"),
        (#"{"access":{"admin_uids":[1.5]}}"#, "access.admin_uids[0]"),
        (#"{"access":{"admins":[0]}}"#, "access.admins"),
        // Once the rule of every method without its own; it would now open the admin methods.
        (#"{"access":{"default":"anyone"}}"#, "access.default"),
        (#"{"region":5}"#, "region"),
        (#"{"region":""}"#, "region"),
        (#"{"state":{"store":"mysql://db/custos"}}"#, "state.store"),
        (#"{"state":{"store":5}}"#, "state.store"),
        (#"{"state":{"store":"postgresql://custos:secret@db/custos"}}"#, "state.store"),
        (#"{"state":{"store":"postgresql:///custos?password=secret"}}"#, "state.store"),
        (#"{"state":{"max_staleness_ms":1000}}"#, "state.max_staleness_ms"),
        (#"{"state":{"store":"embedded","witness_interval_ms":100}}"#, "state.witness_interval_ms"),
        (#"{"state":{"store":"postgresql:///custos","max_staleness_ms":0}}"#, "state.max_staleness_ms"),
        (#"{"state":{"stor":"embedded"}}"#, "state.stor"),
        (#"{"audit":{"record_requests":"yes"}}"#, "audit.record_requests"),
        (#"{"audit":{"record_request":true}}"#, "audit.record_request"),
        (#"{"audit":true}"#, "audit"),
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

    @Test func recordingRequestsForReplayIsOffUnlessTheConfigurationTurnsItOn() throws {
        #expect(DaemonConfig().recordRequests == false)
        #expect(try DaemonConfig.parse(text: #"{"audit":{}}"#).recordRequests == false)
        #expect(try DaemonConfig.parse(text: #"{"audit":{"record_requests":false}}"#).recordRequests == false)
        #expect(try DaemonConfig.parse(text: #"{"audit":{"record_requests":true}}"#).recordRequests == true)
    }

    @Test func theRegionIsReadAndRequestEntitiesAreGrantedToNobodyUnlessNamed() throws {
        #expect(DaemonConfig().region == nil)
        #expect(try DaemonConfig.parse(text: #"{"region":"eu-central-1"}"#).region == "eu-central-1")
        let byDefault = DaemonConfig.defaultAccess(adminUID: 500).entries.first { $0.method == "entities" }?.rule
        #expect(byDefault == .nobody, "not even the daemon's own uid")
        let open = try DaemonConfig.parse(text: #"{"access":{"admin_gids":[42],"methods":{"entities":{"allow_gids":[42]}}}}"#)
        let rule = open.access.entries.first { $0.method == "entities" }?.rule
        #expect(rule?.permits(uid: 1, gid: 42) == true)
        #expect(rule?.permits(uid: 1, gid: 43) == false)
    }

    /// The embedded journal stays the default; a shared store is a libpq URI without a password
    /// (docs/fleet.md), with the staleness and witness bounds defaulted.
    @Test func theStateStoreIsEmbeddedUnlessAPostgresURIIsGiven() throws {
        #expect(DaemonConfig().state.store == nil)
        #expect(try DaemonConfig.parse(text: #"{"state":{"store":"embedded"}}"#).state.store == nil)
        let shared = try DaemonConfig.parse(text: #"{"state":{"store":"postgresql:///custos?host=/run/postgresql"}}"#).state
        #expect(shared.store == "postgresql:///custos?host=/run/postgresql")
        #expect(shared.maxStalenessMs == 5000)
        #expect(shared.witnessIntervalMs == 1000)
        let tuned = try DaemonConfig.parse(text: #"{"state":{"store":"postgres:///c","max_staleness_ms":250,"witness_interval_ms":50}}"#).state
        #expect(tuned.maxStalenessMs == 250 && tuned.witnessIntervalMs == 50)
    }

    @Test func aPasswordInTheStoreURIIsRefusedWithWhereItBelongs() {
        do {
            _ = try DaemonConfig.parse(text: #"{"state":{"store":"postgresql://custos:secret@db/custos"}}"#, file: "custos.json")
            Issue.record("accepted a password")
        } catch {
            #expect(error.message.contains("PGPASSFILE"), "\(error)")
            #expect(!error.description.contains("secret"), "the password is not repeated: \(error)")
        }
    }

    @Test func accessRulesForUnknownMethodsAreRefusedWhenTheDaemonStarts() throws {
        let c = try DaemonConfig.parse(text: #"{"access":{"methods":{"policy.relaod":"nobody"}}}"#)
        #expect(throws: DaemonError.self) {
            _ = try Daemon(DaemonOptions(policiesDirectory: "/nonexistent", socketPath: "/tmp/unused.sock", config: c))
        }
    }
}
