import CustosJSON
import Foundation
import Testing

/// `custos audit query` and `verify` over several state folders at once (a fleet, one folder
/// per daemon; docs/fleet.md), through the real binary.
@Suite struct FleetAuditCommandTests {
    typealias T = AuditCommandTests

    /// Two logs of five entries, the second starting 2 ms after the first (entry i at start + i ms).
    static func twoLogs(_ scratch: T.Scratch) throws -> (a: String, b: String, aPub: String, bPub: String) {
        var out: [String] = []
        for (name, start) in [("a", "2026-03-01T09:00:00.000Z"), ("b", "2026-03-01T09:00:00.002Z")] {
            let state = scratch.path + "/" + name
            let gen = try T.custos(["audit", "generate", "--state", state, "--entries", "5", "--start", start, "--key-name", "custos.test/" + name])
            try #require(gen.status == 0, "generate failed: \(gen.stderr)")
            let pub = try T.custos(["audit", "pubkey", "--state", state])
            try #require(pub.status == 0)
            try Data(pub.stdout.utf8).write(to: URL(fileURLWithPath: state + ".pub"))
            out.append(state)
        }
        return (out[0], out[1], out[0] + ".pub", out[1] + ".pub")
    }

    @Test func aQueryOverSeveralFoldersMergesTheirEntriesByTimeAndNamesEachLog() throws {
        let scratch = try T.Scratch()
        defer { scratch.cleanup() }
        let (a, b, _, _) = try Self.twoLogs(scratch)
        let r = try T.custos(["audit", "query", "--state", a, "--state", b])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = try r.stdout.split(separator: "\n").map { try JSON.parse(String($0)) }
        let got = lines.map { "\($0["log"]?.stringValue == a ? "a" : $0["log"]?.stringValue == b ? "b" : "?")\($0["entry"]?["seq"]?.intValue ?? -1)" }
        // Equal times keep the order the folders were given.
        #expect(got == ["a0", "a1", "a2", "b0", "a3", "b1", "a4", "b2", "b3", "b4"])
        // Each entry is the canonical entry of its own log, byte for byte.
        let alone = try T.custos(["audit", "query", "--state", b, "--decision-id", "d-1"]).stdout
        let merged = r.stdout.split(separator: "\n").first { $0.contains("\"log\":\"\(b)\"") && $0.contains("\"decision_id\":\"d-1\"") }
        #expect(merged.map(String.init) == "{\"log\":\"\(b)\",\"entry\":" + alone.dropLast() + "}")

        // Filters and --limit apply to the merged list.
        let limited = try T.custos(["audit", "query", "--state", b, "--state", a, "--limit", "3"])
        // a0 (.000), a1 (.001), then the tie at .002: b was given first this time.
        let first3 = try limited.stdout.split(separator: "\n").map { try JSON.parse(String($0))["log"]?.stringValue }
        #expect(first3 == [a, a, b])
        let tied = try T.custos(["audit", "query", "--state", b, "--state", a, "--since", "2026-03-01T09:00:00.002Z", "--limit", "2"])
        #expect(try tied.stdout.split(separator: "\n").map { try JSON.parse(String($0))["log"]?.stringValue } == [b, a])
        let table = try T.custos(["audit", "query", "--state", a, "--state", b, "--format", "table", "--decision-id", "d-4"])
        let rows = table.stdout.split(separator: "\n")
        #expect(rows.count == 3)
        #expect(rows[0].hasPrefix("log "))
        #expect(rows[1].hasPrefix(a) && rows[2].hasPrefix(b))
    }

    @Test func aQueryOverAFolderWithoutALogIsAUsageError() throws {
        let scratch = try T.Scratch()
        defer { scratch.cleanup() }
        let (a, _, _, _) = try Self.twoLogs(scratch)
        let r = try T.custos(["audit", "query", "--state", a, "--state", scratch.path + "/none"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("no audit log at \(scratch.path)/none/audit"))
        #expect(r.stdout.isEmpty)
    }

    @Test func verifyOverSeveralFoldersChecksEachWithItsOwnKeyAndFailsOnTheFirstBadOne() throws {
        let scratch = try T.Scratch()
        defer { scratch.cleanup() }
        let (a, b, aPub, bPub) = try Self.twoLogs(scratch)
        let ok = try T.custos(["audit", "verify", "--state", a, "--state", b, "--pubkey", aPub, "--pubkey", bPub])
        #expect(ok.status == 0, "\(ok)")
        #expect(ok.stdout.contains("== \(a)\nOK: 5 entries") && ok.stdout.contains("== \(b)\nOK: 5 entries"), "\(ok.stdout)")
        // Keys swapped: each log is checked against the key given in its position.
        let swapped = try T.custos(["audit", "verify", "--state", a, "--state", b, "--pubkey", bPub, "--pubkey", aPub])
        #expect(swapped.status == 7, "\(swapped)")
        // Damage in the second log: the first still passes, the status is the second's.
        let seg = try T.segments(b)[0]
        var bytes = try T.read(seg)
        let rec = T.records(bytes)[2]
        bytes[rec.lowerBound + 20] ^= 0x01
        try T.write(seg, bytes)
        let bad = try T.custos(["audit", "verify", "--state", a, "--state", b, "--pubkey", aPub, "--pubkey", bPub])
        #expect(bad.status == 3, "\(bad)")
        #expect(bad.stdout.contains("== \(a)\nOK:"))
        #expect(bad.stdout.contains("== \(b)\nFAIL: corrupt"))
    }

    @Test(arguments: [
        (["--pubkey", "ONE"], "one --pubkey per --state"),
        (["--anchor", "X"], "--anchor applies to one log"),
    ])
    func verifyOverSeveralFoldersRefusesOptionsThatBelongToOneLog(_ extra: [String], _ message: String) throws {
        let scratch = try T.Scratch()
        defer { scratch.cleanup() }
        let (a, b, aPub, _) = try Self.twoLogs(scratch)
        let r = try T.custos(["audit", "verify", "--state", a, "--state", b] + extra.map { $0 == "ONE" ? aPub : $0 })
        #expect(r.status == 2, "\(r)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }
}
