import CustosDaemon
import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Testing

/// The `metrics` method (docs/operations.md, "Metrics"): the daemon's own dispatcher, in-process.
@Suite struct DaemonMetricsTests {
    static let admin = CallContext(uid: getuid(), gid: 1, pid: 1, connectionID: 1)
    static let stranger = CallContext(uid: 1234, gid: 1234, pid: 1, connectionID: 2)

    final class Fixture: @unchecked Sendable {
        let dir: String
        let daemon: Daemon

        init(policies: String = examplePolicies) throws {
            dir = Scratch.directory("custos-metrics")
            daemon = try Daemon(DaemonOptions(policiesDirectory: policies, socketPath: dir + "/unused.sock",
                                              stateDirectory: dir + "/state"))
        }

        deinit { try? FileManager.default.removeItem(atPath: dir) }

        func call(_ method: String, _ params: String? = nil, as caller: CallContext = DaemonMetricsTests.admin) -> Result<JSON, RPCError> {
            do throws(RPCError) {
                let json = params.map { try! JSON.parse($0) }
                return .success(try daemon.dispatcher.call(method, params: Params(json), context: caller))
            } catch {
                return .failure(error)
            }
        }

        /// The value of one sample of a counter or gauge family, by its labels.
        func value(_ family: String, _ labels: [String: String] = [:]) throws -> Int64? {
            let m = try call("metrics").get()
            let f = try #require(m.objectValue?["families"]?.arrayValue?.first { $0.objectValue?["name"] == .string(family) }, "no \(family)")
            for s in f.objectValue?["samples"]?.arrayValue ?? [] {
                let l = s.objectValue?["labels"]?.objectValue
                if labels.allSatisfy({ l?[$0.key] == .string($0.value) }) && (l?.count ?? 0) == labels.count {
                    return s.objectValue?["value"]?.intValue
                }
            }
            return nil
        }
    }

    @Test func decisionsAreCountedByMethodOutcomeAndGuardrailCode() throws {
        let f = try Fixture()
        let allow = GuardrailFixture.decide("alice", "read", "onc301-de-clinical", #"{"purpose":"primary_research","region":"eu-central-1"}"#)
        let deny = GuardrailFixture.decide("alice", "read", "onc301-de-clinical", #"{"region":"eu-central-1"}"#)
        for _ in 0..<3 { _ = try f.call("decide", allow).get() }
        #expect(try f.call("decide", deny).get().objectValue?["decision"] == .string("deny"))
        _ = try f.call("decide.batch", #"{"requests":[\#(allow),\#(deny)]}"#).get()
        // Not a decision: invalid params.
        #expect(throws: RPCError.self) { try f.call("decide", #"{"principal":{"type":"User","id":"alice"}}"#).get() }
        #expect(try f.value("custos_decisions_total", ["method": "decide", "outcome": "allow"]) == 3)
        #expect(try f.value("custos_decisions_total", ["method": "decide", "outcome": "deny"]) == 1)
        #expect(try f.value("custos_decisions_total", ["method": "decide", "outcome": "error"]) == 1)
        #expect(try f.value("custos_decisions_total", ["method": "decide.batch", "outcome": "allow"]) == 1)
        #expect(try f.value("custos_decisions_total", ["method": "decide.batch", "outcome": "deny"]) == 1)
        #expect(try f.value("custos_decision_denials_total", ["method": "decide", "code": "purpose.missing"]) == 1)
        #expect(try f.value("custos_decision_denials_total", ["method": "decide", "code": "consent.missing"]) == nil, "codes never seen are left out")
        #expect(try f.value("custos_policy_reloads_total", ["result": "ok"]) == 1)
        #expect(try f.value("custos_ready") == 1)
    }

    @Test func refusalsReloadsAndTheRevisionAreReported() throws {
        let f = try Fixture()
        #expect(throws: RPCError.self) { try f.call("policy.status", as: Self.stranger).get() }
        #expect(try f.value("custos_refused_calls_total") == 1)
        _ = try f.call("policy.reload").get()
        #expect(try f.value("custos_policy_reloads_total", ["result": "ok"]) == 2)
        let revision = try #require(f.daemon.store.snapshot?.revision)
        #expect(try f.value("custos_policy_revision_info", ["revision": revision]) == 1)
    }

    @Test func theMetricsMethodIsForAdminsAndRefusesUnknownFormats() throws {
        let f = try Fixture()
        guard case .failure(let e) = f.call("metrics", as: Self.stranger) else { Issue.record("metrics answered a non-admin"); return }
        #expect(e.code == RPCError.forbiddenCode)
        guard case .failure(let bad) = f.call("metrics", #"{"format":"xml"}"#) else { Issue.record("accepted xml"); return }
        #expect(bad.message.hasPrefix("invalid params: params.format: "))
        let text = try #require(try f.call("metrics", #"{"format":"prometheus"}"#).get().objectValue?["text"]?.stringValue)
        #expect(text.contains("# TYPE custos_decisions_total counter\n"))
        #expect(text.contains("custos_request_duration_seconds_bucket{method=\"decide\",le=\"+Inf\"} 0\n"))
    }

    @Test func aFolderThatFailsToLoadIsNotReadyAndCountsAFailedLoad() throws {
        let dir = Scratch.directory("custos-metrics-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "permit(principal, action, resource".write(toFile: dir + "/a.cedar", atomically: true, encoding: .utf8)
        let f = try Fixture(policies: dir)
        #expect(try f.value("custos_ready") == 0)
        #expect(try f.value("custos_policy_reloads_total", ["result": "failed"]) == 1)
        #expect(throws: RPCError.self) { try f.call("decide", GuardrailFixture.decide("alice", "read", "x")).get() }
        #expect(try f.value("custos_decisions_total", ["method": "decide", "outcome": "error"]) == 1)
    }
}

@Suite struct HTTPConfigInDaemonConfigTests {
    @Test func theHTTPMemberIsReadAndItsMistakesNameTheFileAndKey() throws {
        let c = try DaemonConfig.parse(text: #"{"http": {"listeners": [{"tcp": "127.0.0.1:8181", "uid": 64010, "gid": 64010}]}}"#, file: "custos.json")
        #expect(c.http?.listeners.count == 1)
        #expect(throws: ConfigError(file: "custos.json", key: "http.listeners[0].tcp",
                                    "0.0.0.0 is not a loopback address: TCP callers have no kernel identity, so only 127.0.0.0/8 and ::1 may be served (put a TLS-terminating proxy on the same machine in front for remote callers)")) {
            try DaemonConfig.parse(text: #"{"http": {"listeners": [{"tcp": "0.0.0.0:8181", "uid": 1, "gid": 1}]}}"#, file: "custos.json")
        }
        #expect(throws: ConfigError.self) { try DaemonConfig.parse(text: #"{"htpp": {}}"#, file: "custos.json") }
    }

    @Test func metricsCanBeGrantedLikeAnyMethod() throws {
        let c = try DaemonConfig.parse(text: #"{"access": {"methods": {"metrics": {"allow_uids": [64010]}}}}"#)
        #expect(c.access.rule(for: "metrics").permits(uid: 64010, gid: 1))
        #expect(!DaemonConfig.defaultAccess().rule(for: "metrics").permits(uid: 64010, gid: 1))
    }
}
