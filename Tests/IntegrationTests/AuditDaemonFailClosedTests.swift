import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Testing

/// Whether this process may mount a tmpfs (root, outside a restricted container): the only way
/// found to make the log's disk really fill up under root, whom permissions do not stop.
let canMountTmpfs: Bool = {
    guard getuid() == 0 else { return false }
    let probe = makeShortTempDir()
    defer { rmdir(probe) }
    guard mount("tmpfs", probe, "tmpfs", 0, "size=64k") == 0 else { return false }
    umount(probe)
    return true
}()

/// A full disk under the audit log: the daemon must stop answering decisions (fail closed) and
/// say why in `health`, and must not pretend a retry fixed it.
@Suite struct AuditDaemonFailClosedTests {
    @Test(.enabled(if: canMountTmpfs, "needs root and mount(2) to put the state folder on a tiny tmpfs"))
    func aFullDiskStopsDecisionsWithNotReadyAndHealthSaysWhy() throws {
        try requireBinary()
        let dir = makeShortTempDir()
        let state = dir + "/state"
        mkdir(state, 0o700)
        try #require(mount("tmpfs", state, "tmpfs", 0, "size=256k") == 0, "mount tmpfs: \(String(cString: strerror(errno)))")
        defer {
            umount2(state, Int32(MNT_DETACH))
            try? FileManager.default.removeItem(atPath: dir)
        }
        let socket = dir + "/custos.sock"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: daemonCustosBinary)
        p.arguments = ["serve", "--policies", daemonExamplePolicies, "--state", state, "--socket", socket]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
        let client: RPCClient? = eventually { try? RPCClient(path: socket, timeout: .seconds(60)) }
        let c = try #require(client, "custos serve did not come up on \(socket)")
        defer { c.close() }
        #expect(try c.call("health").get().objectValue?["ready"] == .bool(true))

        // Fill what is left of the tmpfs.
        let fd = open(state + "/filler", O_WRONLY | O_CREAT, 0o600)
        try #require(fd >= 0)
        let block = [UInt8](repeating: 0, count: 4096)
        while block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        close(fd)

        // Pipelined, as a busy gateway sends: the answers of each burst wait for one shared
        // sync. The segment's last page may still hold a few entries; the first failure must
        // come soon after, be the not-ready error, and no answer may follow it.
        var params = JSONWriter()
        params.value(AuditDaemonTests.decideParams)
        var firstFailure: (index: Int, code: Int64)? = nil
        var answeredAfterFailure = 0
        var outOfOrder = 0
        for burst in 0..<20 {
            var lines: [String] = []
            for i in 0..<100 {
                lines.append(#"{"jsonrpc":"2.0","method":"decide","params":"# + params.text + #","id":\#(burst * 100 + i)}"#)
            }
            try c.send(line: lines.joined(separator: "\n"))
            for i in 0..<100 {
                let answer = try JSON.parse(try #require(try c.readLine()))
                if answer["id"] != .int(Int64(burst * 100 + i)) { outOfOrder += 1 }
                if let code = answer["error"]?["code"]?.intValue {
                    if firstFailure == nil { firstFailure = (burst * 100 + i, code) }
                } else if firstFailure != nil {
                    answeredAfterFailure += 1
                }
            }
        }
        #expect(firstFailure?.code == RPCError.notReadyCode)
        #expect(answeredAfterFailure == 0)
        #expect(outOfOrder == 0)

        // Freeing space does not bring it back: a failed write or fsync is never retried.
        unlink(state + "/filler")
        for _ in 0..<3 {
            #expect(errorCodeOf(try c.call("decide", params: AuditDaemonTests.decideParams)) == RPCError.notReadyCode)
        }
        let health = try c.call("health").get()
        #expect(health.objectValue?["ready"] == .bool(false))
        let reasons = (health.objectValue?["reasons"]?.arrayValue ?? []).compactMap(\.stringValue)
        #expect(reasons.contains { $0.hasPrefix("audit log unavailable") })

        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(p.terminationStatus == 1)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(stderr.contains("the audit log failed"))
        // Logged when it happened too, not only at exit: a JSON line an alert can match.
        #expect(stderr.split(separator: "\n").contains { $0.contains(#""event":"audit.failed""#) && $0.contains("the audit log stopped") })
    }
}
