import CustosJSON
import CustosServer
import Foundation
import Glibc
import Synchronization
import Testing

/// Outcome of one pipelined client: how many replies were wrong and which revisions it saw.
struct ClientTally: Sendable {
    var answered = 0
    var wrong: [String] = []
    var revisions: Set<String> = []
}

/// `clients` connections, each sending `perClient` decide requests with up to `window` in
/// flight, alternating an allowed and a denied request; every reply is checked by id.
func pipelinedLoad(socket: String, clients: Int, perClient: Int, window: Int = 64) throws -> [ClientTally] {
    let allow = requestLine("decide", try exampleRequest("allow-scientist-reads-own-study.json"), id: .int(0))
    let deny = requestLine("decide", try exampleRequest("deny-lead-exports-identified.json"), id: .int(0))
    // Same request bodies with the id swapped in, so each client builds its lines cheaply.
    @Sendable func line(_ i: Int) -> [UInt8] {
        let base = i % 2 == 0 ? allow : deny
        let idSuffix = Array(",\"id\":0}\n".utf8)
        return Array(base.dropLast(idSuffix.count)) + Array(",\"id\":\(i)}\n".utf8)
    }
    let results = Mutex<[ClientTally]>([])
    let group = DispatchGroup()
    var failures: [String] = []
    let failureLock = Mutex<[String]>([])
    for _ in 0..<clients {
        group.enter()
        Thread.detachNewThread {
            defer { group.leave() }
            var tally = ClientTally()
            do {
                let c = try RPCClient(path: socket, timeout: .seconds(30))
                defer { c.close() }
                var sent = 0
                var burst: [UInt8] = []
                while tally.answered < perClient {
                    burst.removeAll(keepingCapacity: true)
                    while sent < perClient && sent - tally.answered < window {
                        burst += line(sent)
                        sent += 1
                    }
                    if !burst.isEmpty { try c.send(line: burst) }
                    guard let l = try c.readLine() else { tally.wrong.append("connection closed"); break }
                    let (id, outcome) = try RPCResponse.decode(try JSON.parse(l))
                    let expected = tally.answered % 2 == 0 ? "allow" : "deny"
                    if id != .int(Int64(tally.answered)) {
                        tally.wrong.append("reply \(tally.answered) has id \(id)")
                    } else if case .success(let r) = outcome, r.objectValue?["decision"]?.stringValue == expected {
                        if let rev = r.objectValue?["policy_revision"]?.stringValue { tally.revisions.insert(rev) }
                    } else {
                        tally.wrong.append("reply \(tally.answered): \(outcome)")
                    }
                    tally.answered += 1
                }
            } catch {
                failureLock.withLock { $0.append("\(error)") }
            }
            results.withLock { $0.append(tally) }
        }
    }
    group.wait()
    failures = failureLock.withLock { $0 }
    if !failures.isEmpty { throw DaemonFailure(message: "client failures: \(failures.prefix(3))") }
    return results.withLock { $0 }
}

extension DaemonIntegrationTests {
    @Test func sixtyFourClientsPipeliningAThousandRequestsEachGetOnlyCorrectAnswers() throws {
        let d = try TestDaemon().start()
        let tallies = try pipelinedLoad(socket: d.socket, clients: 64, perClient: 1000)
        #expect(tallies.count == 64)
        #expect(tallies.reduce(0) { $0 + $1.answered } == 64_000)
        let wrong = tallies.flatMap(\.wrong)
        #expect(wrong.isEmpty, "\(wrong.prefix(5))")
    }

    @Test func reloadingWhileUnderThatLoadFailsNoRequestAndNeverMixesRevisions() throws {
        let d = try TestDaemon(config: #"{"access":{"methods":{"policy.reload":"anyone"}}}"#).start()
        let stop = Atomic<Bool>(false)
        let reloads = Mutex<(ok: Int, failed: [String], revisions: Set<String>)>((0, [], []))
        let reloader = DispatchSemaphore(value: 0)
        let policies = d.policies
        let socket = d.socket
        Thread.detachNewThread {
            var n = 0
            while !stop.load(ordering: .relaxed) {
                // A comment changes the revision but no decision.
                try? "// reload \(n)\n".write(toFile: policies + "/95-reload-marker.cedar", atomically: true, encoding: .utf8)
                n += 1
                do {
                    let c = try RPCClient(path: socket, timeout: .seconds(30))
                    let r = try c.call("policy.reload")
                    c.close()
                    reloads.withLock { s in
                        switch r {
                        case .success(let j):
                            s.ok += 1
                            if let rev = j.objectValue?["revision"]?.stringValue { s.revisions.insert(rev) }
                        case .failure(let e): s.failed.append(e.message)
                        }
                    }
                } catch {
                    reloads.withLock { $0.failed.append("\(error)") }
                }
                usleep(20_000)
            }
            reloader.signal()
        }
        let tallies = try pipelinedLoad(socket: d.socket, clients: 64, perClient: 1000)
        stop.store(true, ordering: .relaxed)
        reloader.wait()
        let r = reloads.withLock { $0 }
        #expect(r.failed.isEmpty, "\(r.failed.prefix(3))")
        #expect(r.ok >= 2, "the load lasted long enough for several reloads")
        let wrong = tallies.flatMap(\.wrong)
        #expect(wrong.isEmpty, "\(wrong.prefix(5))")
        #expect(tallies.reduce(0) { $0 + $1.answered } == 64_000)
        // Every revision a decision reported is one that a reload (or the start) installed.
        let seen = tallies.reduce(into: Set<String>()) { $0.formUnion($1.revisions) }
        let initial = seen.subtracting(r.revisions)
        #expect(initial.count <= 1, "decisions name only installed revisions: \(initial)")
    }
}
