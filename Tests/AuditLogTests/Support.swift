import AuditLog
import CustosJSON
import CustosTestSupport
import Foundation

/// A fresh private folder under the system temp directory, removed by `cleanup()`.
struct TempDir {
    let path: String

    init(_ label: String = "audit") {
        path = Scratch.directory("custos-\(label)")
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: path) }

    var segments: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasPrefix("segment-") }.sorted()
    }
}

enum Fixture {
    static func signer(_ name: String = "custos.example/audit") throws -> NoteSigner {
        try NoteSigner(name: name, privateKey: Ed25519PrivateKey.generate())
    }

    static func entry(_ i: Int, time: AuditTimestamp = AuditTimestamp(millisecondsSinceEpoch: 1_780_000_000_000)) -> AuditEntry {
        AuditEntry(
            time: AuditTimestamp(millisecondsSinceEpoch: time.millisecondsSinceEpoch + Int64(i)),
            decisionID: "d-\(i)",
            caller: AuditCaller(uid: 1000, gid: 1000, pid: 4242, user: "ehr-gateway"),
            method: i % 10 == 0 ? "policy.update" : "authorize",
            principal: "Clinician::\"c\(i % 7)\"",
            action: i % 3 == 0 ? "Action::\"write\"" : "Action::\"read\"",
            resource: "Record::\"r\(i % 50)\"",
            purpose: "treatment", basis: "GDPR-9-2-h",
            decision: i % 4 == 0 ? .deny : .allow,
            reasons: ["policy\(i % 5)"],
            policyRevision: "rev-1",
            requestSHA256: String(repeating: "ab", count: 32))
    }

    /// Reads a whole file.
    static func read(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path) ?? Data()) }

    static func write(_ path: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Byte ranges (header included) of each record in a framed file.
    static func records(_ bytes: [UInt8]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var p = 0
        while p + 12 <= bytes.count {
            let len = Int(bytes[p]) | Int(bytes[p + 1]) << 8 | Int(bytes[p + 2]) << 16 | Int(bytes[p + 3]) << 24
            guard p + 12 + len <= bytes.count else { break }
            out.append(p..<(p + 12 + len))
            p += 12 + len
        }
        return out
    }
}
