import CustosJSON
import CustosServer
import CustosTestSupport
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

/// Shared with a running `pipelinedLoad`: how many replies have come back so far, and whether
/// clients should keep sending past their `perClient` requests (until this turns false).
final class LoadProgress: Sendable {
    let answered = Atomic<Int>(0)
    let extend = Atomic<Bool>(false)
}

/// `clients` connections, each sending at least `perClient` decide requests with up to `window`
/// in flight, alternating an allowed and a denied request; every reply is checked by id.
func pipelinedLoad(socket: String, clients: Int, perClient: Int, window: Int = 64,
                   progress: LoadProgress? = nil) throws -> [ClientTally] {
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
    let failureLock = Mutex<[String]>([])
    for _ in 0..<clients {
        group.enter()
        Thread.detachNewThread {
            defer { group.leave() }
            var tally = ClientTally()
            do {
                let c = try RPCClient(path: socket, timeout: .seconds(60))
                defer { c.close() }
                var sent = 0
                var burst: [UInt8] = []
                func more() -> Bool { sent < perClient || progress?.extend.load(ordering: .relaxed) == true }
                while true {
                    burst.removeAll(keepingCapacity: true)
                    while more() && sent - tally.answered < window {
                        burst += line(sent)
                        sent += 1
                    }
                    if !burst.isEmpty { try c.send(line: burst) }
                    if tally.answered == sent { break }  // nothing in flight, nothing more to send
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
                    progress?.answered.add(1, ordering: .relaxed)
                }
            } catch {
                failureLock.withLock { $0.append("\(error)") }
            }
            results.withLock { $0.append(tally) }
        }
    }
    group.wait()
    let failures = failureLock.withLock { $0 }
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
        let reloadCount = 5
        let reloads = Mutex<(ok: Int, failed: [String], revisions: Set<String>)>((0, [], []))
        let reloader = DispatchSemaphore(value: 0)
        let policies = d.policies
        let socket = d.socket
        // The clients keep sending until every reload is done, and the reloads start once
        // answers flow, so each reload lands in the middle of the load however fast it runs.
        let progress = LoadProgress()
        progress.extend.store(true, ordering: .relaxed)
        Thread.detachNewThread {
            defer {
                progress.extend.store(false, ordering: .relaxed)
                reloader.signal()
            }
            guard eventually({ progress.answered.load(ordering: .relaxed) > 0 }) else {
                reloads.withLock { $0.failed.append("the load never answered") }
                return
            }
            for n in 0..<reloadCount {
                // A comment changes the revision but no decision.
                try? "// reload \(n)\n".write(toFile: policies + "/95-reload-marker.cedar", atomically: true, encoding: .utf8)
                do {
                    let c = try RPCClient(path: socket, timeout: .seconds(60))
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
            }
        }
        let tallies = try pipelinedLoad(socket: d.socket, clients: 64, perClient: 1000, progress: progress)
        reloader.wait()
        let r = reloads.withLock { $0 }
        #expect(r.failed.isEmpty, "\(r.failed.prefix(3))")
        #expect(r.ok == reloadCount)
        #expect(r.revisions.count == reloadCount, "each reload installed a new revision")
        let wrong = tallies.flatMap(\.wrong)
        #expect(wrong.isEmpty, "\(wrong.prefix(5))")
        #expect(tallies.count == 64)
        #expect(tallies.allSatisfy { $0.answered >= 1000 })
        // Every revision a decision reported is one that a reload (or the start) installed.
        let seen = tallies.reduce(into: Set<String>()) { $0.formUnion($1.revisions) }
        let initial = seen.subtracting(r.revisions)
        #expect(initial.count <= 1, "decisions name only installed revisions: \(initial)")
    }
}
