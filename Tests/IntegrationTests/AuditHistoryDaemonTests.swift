import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

/// Through the real binary: acknowledged audit history cannot be removed or replaced without
/// `audit verify --pubkey` failing and `custos serve` refusing the log, except through the
/// explicit recovery, which the log itself then shows. And what a caller sends cannot make an
/// entry too large to write.
@Suite struct AuditHistoryDaemonTests {
    static func serveArguments(_ state: String, _ socket: String) -> [String] {
        ["serve", "--policies", daemonExamplePolicies, "--state", state, "--socket", socket]
    }

    /// `custos serve` on a log it must refuse: its exit status and stderr. A daemon that starts
    /// instead is killed and reported as status nil.
    static func serveRefusal(state: String, socket: String) throws -> (status: Int32?, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: daemonCustosBinary)
        p.arguments = serveArguments(state, socket)
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        var refused = false
        _ = eventually {
            refused = !p.isRunning
            return refused || answersHealth(socket)
        }
        if !refused {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            return (nil, "custos serve started")
        }
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    static func stop(_ p: Process) throws {
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "custos serve stopped with \(p.terminationStatus)")
    }

    /// (byte range, payload text) of each framed record of a segment.
    static func records(_ bytes: [UInt8]) -> [(range: Range<Int>, text: String)] {
        AuditCommandTests.records(bytes).map { r in (r, String(decoding: bytes[(r.lowerBound + 12)..<r.upperBound], as: UTF8.self)) }
    }

    /// CRC-32C (Castagnoli), as the frames use: what an attacker recomputes after an edit.
    static func crc32c(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        }
        return ~c
    }

    static func frame(_ payload: [UInt8]) -> [UInt8] {
        func le(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }
        let header = le(UInt32(payload.count)) + le(crc32c(payload))
        return header + le(crc32c(header)) + payload
    }

    @Test func editedEntriesWithDeletedCheckpointsAreRefusedUntilAnAuditedRecovery() throws {
        try requireBinary()
        let dir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let state = dir + "/state", socket = dir + "/custos.sock"
        let daemon = try AuditDaemonCrashTests.start(state: state, socket: socket)
        let c = try RPCClient(path: socket, timeout: .seconds(60))
        for _ in 0..<20 { _ = try c.call("decide", params: AuditDaemonTests.decideParams).get() }
        c.close()
        try Self.stop(daemon)
        #expect(try AuditDaemonTests.verify(state).status == 0)

        // Turn one deny into an allow, with valid frame checksums, and delete the checkpoints.
        let segment = try #require(try AuditCommandTests.segments(state).last)
        var bytes = try AuditCommandTests.read(segment)
        let target = try #require(Self.records(bytes).last { $0.text.contains("\"method\":\"decide\"") && $0.text.contains("\"decision\":\"deny\"") })
        let edited = target.text.replacingOccurrences(of: "\"decision\":\"deny\"", with: "\"decision\":\"allow\"")
        bytes.replaceSubrange(target.range, with: Self.frame(Array(edited.utf8)))
        try AuditCommandTests.write(segment, bytes)
        try FileManager.default.removeItem(atPath: state + "/audit/checkpoints.log")
        let headOnly = try AuditDaemonTests.verify(state)
        #expect(headOnly.status == 3 && headOnly.out.hasPrefix("FAIL: corrupt"), "checkpoint.head still vouches for the original: \(headOnly.out)")
        try FileManager.default.removeItem(atPath: state + "/audit/checkpoint.head")

        let verified = try AuditDaemonTests.verify(state)
        #expect(verified.status == 9, "\(verified.out)\(verified.err)")
        #expect(verified.out.hasPrefix("FAIL: uncovered at entry 0: checkpoints.log is missing"), "\(verified.out)")
        let refused = try Self.serveRefusal(state: state, socket: socket)
        #expect(refused.status != nil && refused.status != 0, "custos serve must not sign over the edited history")
        #expect(refused.err.contains("checkpoints.log is missing") && refused.err.contains("custos audit recover --state \(state)"), "\(refused.err)")
        for file in ["checkpoints.log", "checkpoint.head"] {
            #expect(!FileManager.default.fileExists(atPath: state + "/audit/" + file), "refusing writes nothing")
        }

        let noReason = try runCustosCommand(["audit", "recover", "--state", state])
        #expect(noReason.status == 2)
        let recovered = try runCustosCommand(["audit", "recover", "--state", state, "--reason", "CHG-1234: checkpoints.log lost"])
        #expect(recovered.status == 0, "\(recovered.out)\(recovered.err)")
        #expect(recovered.out.hasPrefix("recovered: accepted entries 0..<"), "\(recovered.out)")
        let after = try AuditDaemonTests.verify(state)
        #expect(after.status == 0, "\(after.out)\(after.err)")
        #expect(after.out.contains("recovery: entry ") && after.out.contains("reason: CHG-1234: checkpoints.log lost"), "\(after.out)")
        let again = try runCustosCommand(["audit", "recover", "--state", state, "--reason", "again"])
        #expect(again.status == 1, "nothing left to recover: \(again.out)\(again.err)")

        let restarted = try AuditDaemonCrashTests.start(state: state, socket: socket)
        #expect(try runCustosCommand(["audit", "recover", "--state", state, "--reason", "x"]).status == 2, "not while the daemon runs")
        try Self.stop(restarted)
        let logged = try AuditDaemonTests.query(state, ["--method", "audit.recover"])
        #expect(logged.count == 1)
        #expect(logged.first?["reasons"]?.arrayValue?.first?.stringValue == "reason: CHG-1234: checkpoints.log lost")
    }

    @Test func cuttingAcknowledgedEntriesAfterKillNineFailsVerifyAndStopsTheDaemon() throws {
        try requireBinary()
        let dir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let state = dir + "/state", socket = dir + "/custos.sock"
        let daemon = try AuditDaemonCrashTests.start(state: state, socket: socket)
        let received = Mutex<Set<String>>([])
        let answered = Atomic<Int>(0)
        let group = DispatchGroup()
        for _ in 0..<8 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                guard let c = try? RPCClient(path: socket, timeout: .seconds(60)) else { return }
                defer { c.close() }
                while case .success(let answer)? = try? c.call("decide", params: AuditDaemonTests.decideParams),
                      let id = answer.objectValue?["decision_id"]?.stringValue {
                    received.withLock { _ = $0.insert(id) }
                    answered.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(eventually { answered.load(ordering: .relaxed) >= 400 })
        kill(daemon.processIdentifier, SIGKILL)
        daemon.waitUntilExit()
        group.wait()
        let acknowledged = received.withLock { $0 }

        // Cut the tail of the newest segment so that ten acknowledged decisions go with it.
        let segment = try #require(try AuditCommandTests.segments(state).last)
        let bytes = try AuditCommandTests.read(segment)
        let recs = Self.records(bytes)
        let ids = recs.map { (try? JSON.parse($0.text)["decision_id"]?.stringValue) ?? "" }
        var cutAt = ids.count, cutAcknowledged = 0
        while cutAt > 0 && cutAcknowledged < 10 {
            cutAt -= 1
            if acknowledged.contains(ids[cutAt]) { cutAcknowledged += 1 }
        }
        try #require(cutAcknowledged == 10, "the newest segment holds ten acknowledged decisions")
        try AuditCommandTests.write(segment, Array(bytes[..<recs[cutAt].range.lowerBound]))

        let verified = try AuditDaemonTests.verify(state)
        #expect(verified.status == 6, "\(verified.out)\(verified.err)")
        #expect(verified.out.hasPrefix("FAIL: truncated at entry "), "\(verified.out)")
        let refused = try Self.serveRefusal(state: state, socket: socket)
        #expect(refused.status != nil && refused.status != 0)
        #expect(refused.err.contains("a signed checkpoint covers"), "\(refused.err)")
    }

    @Test func verifyOnTheFolderOfADaemonUnderLoadPasses() throws {
        try requireBinary()
        let dir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let state = dir + "/state", socket = dir + "/custos.sock"
        let daemon = try AuditDaemonCrashTests.start(state: state, socket: socket)
        let stop = Atomic<Bool>(false)
        let answered = Atomic<Int>(0)
        let group = DispatchGroup()
        for _ in 0..<8 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                guard let c = try? RPCClient(path: socket, timeout: .seconds(60)) else { return }
                defer { c.close() }
                while !stop.load(ordering: .relaxed), case .success? = try? c.call("decide", params: AuditDaemonTests.decideParams) {
                    answered.add(1, ordering: .relaxed)
                }
            }
        }
        // The head is rewritten after every batch while verify reads: it must read on to the
        // entries the newest checkpoint covers, not report them cut.
        var results: [(Int32, String)] = []
        for round in 1...5 {
            #expect(eventually { answered.load(ordering: .relaxed) >= 200 * round })
            let v = try AuditDaemonTests.verify(state)
            results.append((v.status, v.out))
        }
        stop.store(true, ordering: .relaxed)
        group.wait()
        try Self.stop(daemon)
        for (status, out) in results { #expect(status == 0, "\(out)") }
    }

    @Test func decisionIDsAndTimesIncreaseInLogOrderUnderConcurrentClients() throws {
        try requireBinary()
        let dir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let state = dir + "/state", socket = dir + "/custos.sock"
        let daemon = try AuditDaemonCrashTests.start(state: state, socket: socket)
        let received = Mutex<[String]>([])
        let group = DispatchGroup()
        for _ in 0..<16 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                guard let c = try? RPCClient(path: socket, timeout: .seconds(60)) else { return }
                defer { c.close() }
                var mine: [String] = []
                for i in 0..<100 {
                    let reply = i % 10 == 0
                        ? try? c.call("decide.batch", params: .object(JSONObject(["requests": .array([AuditDaemonTests.decideParams, AuditDaemonTests.decideParams])])))
                        : try? c.call("decide", params: AuditDaemonTests.decideParams)
                    guard case .success(let answer)? = reply else { continue }
                    if let results = answer.objectValue?["results"]?.arrayValue {
                        mine += results.compactMap { $0.objectValue?["decision_id"]?.stringValue }
                    } else if let id = answer.objectValue?["decision_id"]?.stringValue {
                        mine.append(id)
                    }
                }
                received.withLock { $0 += mine }
            }
        }
        group.wait()
        try Self.stop(daemon)
        let entries = try AuditDaemonTests.query(state, [])
        let ids = entries.compactMap { $0["decision_id"]?.stringValue }
        let times = entries.compactMap { $0["time"]?.stringValue }
        #expect(ids.count == entries.count && times.count == entries.count)
        let idInversions = zip(ids, ids.dropFirst()).filter { !$0.utf8.lexicographicallyPrecedes($1.utf8) }.count
        let timeInversions = zip(times, times.dropFirst()).filter { $1.utf8.lexicographicallyPrecedes($0.utf8) }.count
        #expect(idInversions == 0, "decision_id goes backwards \(idInversions) times in \(ids.count) entries")
        #expect(timeInversions == 0, "time goes backwards \(timeInversions) times in \(times.count) entries")
        let answeredIDs = received.withLock { $0 }
        #expect(answeredIDs.count == 16 * 110)
        #expect(Set(answeredIDs).isSubset(of: Set(ids)), "every id a caller got is the one logged")
    }

    @Test func aMebibytePrincipalIsDecidedAndLoggedBoundedWhileTheDaemonStaysReady() throws {
        let d = try TestDaemon()
        try d.start()
        // 500,000 characters that each take two bytes on the wire (just under the 1 MiB line
        // limit) and four in the entry: twice the record limit before bounding.
        let id = String(repeating: "\"\\", count: 250_000)
        var params = AuditDaemonTests.decideParams
        if case .object(var o) = params {
            o.members = o.members.map { $0.key == "principal" ? .init(key: "principal", value: .object(JSONObject(["type": .string("User"), "id": .string(id)]))) : $0 }
            params = .object(o)
        }
        let answer = try d.call("decide", params).get()
        let decisionID = try #require(answer.objectValue?["decision_id"]?.stringValue)
        #expect(answer.objectValue?["decision"]?.stringValue == "deny")
        let health = try d.call("health").get()
        #expect(health.objectValue?["ready"] == .bool(true))
        d.signal(SIGTERM)
        #expect(d.waitForExit() == 0)

        let logged = try AuditDaemonTests.query(d.dir, ["--decision-id", decisionID])
        let principal = try #require(logged.first?["principal"]?.stringValue)
        let description = "User::\"" + String(repeating: "\\\"\\\\", count: 250_000) + "\""
        let digest = try runCustosSHA256(description)
        #expect(principal.hasPrefix("User::\"\\\"\\\\\\\""), "\(principal.prefix(40))")
        #expect(principal.hasSuffix("\u{2026}[\(description.utf8.count) bytes, sha256:\(digest)]"), "\(principal.suffix(120))")
        #expect(principal.utf8.count <= 1024)
        let line = try runCustosCommand(["audit", "query", "--state", d.dir, "--decision-id", decisionID]).out
        #expect(line.utf8.count < 8 * 1024, "the whole entry: \(line.utf8.count) bytes")
        #expect(try AuditDaemonTests.verify(d.dir).status == 0)
    }

    /// SHA-256 as lowercase hex, by the system's sha256sum (the test target links no hashing).
    static func sha256(_ text: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        try p.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(String(decoding: out, as: UTF8.self).prefix(64))
    }
}

private func runCustosSHA256(_ text: String) throws -> String { try AuditHistoryDaemonTests.sha256(text) }
