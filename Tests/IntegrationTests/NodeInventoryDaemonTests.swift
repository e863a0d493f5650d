import CustosJSON
import CustosServer
import Foundation
import Glibc
import Testing

/// The node inventory through the real `custos serve`: `custos call nodes.sync -` from a file,
/// `place` by names, the audit entry, and the inventory being a cache that a restart empties.
@Suite(.serialized) struct NodeInventoryDaemonTests {
    static let sync = #"{"nodes":[{"name":"fra-1","region":"eu-central-1"},{"name":"ore-1","region":"us-west-2"},{"name":"zrh-1","region":"ch-zurich","labels":{"custos.io/study":"GEN-CH"}}]}"#
    static let place = #"{"job":{"id":"j1","principal":"User::\"carol\"","study":"ONC-301","purpose":"primary_research","datasets":["onc301-de-clinical"]},"nodes":["fra-1","ore-1","zrh-1","ghost-1"]}"#

    static func rejectedCodes(_ r: JSON, _ node: String) -> [String] {
        r.objectValue?["rejected"]?.objectValue?[node]?.arrayValue?.compactMap { $0.objectValue?["code"]?.stringValue } ?? []
    }

    @Test func namesResolveThroughTheInventoryUntilTheDaemonRestarts() throws {
        let d = try GuardrailDaemonTests.daemon()
        // The CLI path the docs show: params from stdin.
        let file = d.dir + "/sync.json"
        try Self.sync.write(toFile: file, atomically: true, encoding: .utf8)
        let out = try runCustosCommand(["call", "nodes.sync", "-", "--socket", d.socket], stdin: file)
        #expect(out.status == 0, "\(out.err)")
        let answer = try JSON.parse(out.out)
        #expect(answer.objectValue?["nodes"] == .int(3))
        let synced = try d.call("nodes.list").get()
        let revision = try #require(synced.objectValue?["revision"]?.stringValue)
        #expect(synced.objectValue?["nodes"]?.arrayValue?.count == 3)
        #expect(answer.objectValue?["revision"] == .string(revision))

        let r = try d.call("place", try JSON.parse(Self.place)).get()
        #expect(r.objectValue?["allowed"] == .array([.string("fra-1")]))
        #expect(Self.rejectedCodes(r, "ore-1") == ["residency.cross_border"])
        #expect(Self.rejectedCodes(r, "zrh-1") == ["isolation.study_mismatch"])
        #expect(Self.rejectedCodes(r, "ghost-1") == ["placement.unknown_node"])

        // The change is in the audit log, by method, with the revision and without the nodes.
        let audit = try d.call("audit.query", try JSON.parse(#"{"method":"nodes.sync"}"#)).get()
        let entries = try #require(audit.objectValue?["entries"]?.arrayValue)
        #expect(entries.count == 1)
        let text = entries.first?.serialized ?? ""
        #expect(text.contains(revision), "\(text)")
        #expect(!text.contains("eu-central-1"), "\(text)")

        // A cache, not durable state: a new daemon starts empty and says which nodes it lacks.
        GuardrailDaemonTests.killHard(d.process)
        let second = try GuardrailDaemonTests.restart(d)
        defer { GuardrailDaemonTests.killHard(second) }
        let after = try d.call("place", try JSON.parse(Self.place)).get()
        #expect(after.objectValue?["allowed"] == .array([]))
        for n in ["fra-1", "ore-1", "zrh-1", "ghost-1"] { #expect(Self.rejectedCodes(after, n) == ["placement.unknown_node"]) }
        let refilled = try d.call("nodes.sync", try JSON.parse(Self.sync)).get()
        #expect(refilled.objectValue?["revision"] == .string(revision), "the same nodes give the same revision in any daemon")
    }
}
