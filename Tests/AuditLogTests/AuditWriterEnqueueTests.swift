import AuditLog
import Foundation
import Testing

/// The split append the daemon's pipelined path uses: queue many entries, wait once.
@Suite struct AuditWriterEnqueueTests {
    @Test func entriesQueuedTogetherAreDurableAfterOneWaitAndInOrder() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let s = try Fixture.signer()
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: .always, signer: s)
        var last: UInt64 = 0
        for i in 0..<500 { last = try w.enqueue(Fixture.entry(i)) }
        #expect(last == 499)
        try w.waitDurable(through: last)
        // Already durable: returns at once.
        try w.waitDurable(through: 10)
        try w.close()
        let all = try AuditQuery().run(stateDirectory: dir.path)
        #expect(all.map(\.seq) == Array(0..<500))
        #expect(AuditVerifier.verify(stateDirectory: dir.path, publicKey: s.verifierKey).isValid)
    }

    @Test func waitingAfterTheWriterFailedThrowsSoNothingIsAcknowledged() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let s = try Fixture.signer()
        let w = try AuditWriter.open(stateDirectory: dir.path, mode: .always, signer: s, segmentBytes: 4096)
        // Occupy every name the next segment could take, so rotating to it fails.
        for i in 1..<400 {
            _ = FileManager.default.createFile(atPath: dir.path + "/" + String(format: "segment-%020d.log", i), contents: nil)
        }
        var failed = false
        for round in 0..<100 {
            var last: UInt64 = 0
            do {
                for i in 0..<8 { last = try w.enqueue(Fixture.entry(round * 8 + i)) }
                try w.waitDurable(through: last)
            } catch {
                failed = true
                break
            }
        }
        #expect(failed)
        #expect(!w.isHealthy)
        #expect(throws: AuditError.self) { try w.waitDurable(through: 1_000_000) }
    }
}
