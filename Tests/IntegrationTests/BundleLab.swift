import AuditLog
import CustosJSON
import Foundation
import PolicyBundle
import Testing

/// A scratch folder with four key holders made by `custos bundle keygen` (Alice the author,
/// Quinn from QA, Lee a study lead, Dana whose key is revoked), an approvers.json over them,
/// and helpers that build bundles with the real binary and tamper with them in-process.
final class BundleLab: @unchecked Sendable {
    let dir: String
    let bundles: String
    let keys: [String: String]         // holder -> private key file
    let publicKeys: [String: String]   // holder -> base64 public key
    let trust: String

    static let holders: [(id: String, name: String, roles: [String])] = [
        ("alice", "Alice Author", ["author"]),
        ("quinn", "Quinn QA", ["QA"]),
        ("lee", "Lee Lead", ["approver"]),
        ("dana", "Dana Departed", ["approver", "QA"]),
    ]

    init(threshold: Int = 2) throws {
        dir = makeShortTempDir()
        bundles = dir + "/bundles"
        try FileManager.default.createDirectory(atPath: bundles, withIntermediateDirectories: true)
        var keys: [String: String] = [:], pubs: [String: String] = [:]
        for h in Self.holders {
            let path = dir + "/\(h.id).key"
            let r = try runCustosCommand(["bundle", "keygen", "--out", path, "--name", h.name] + h.roles.flatMap { ["--role", $0] })
            try #require(r.status == 0, "keygen: \(r.err)")
            let entry = try JSON.parse(String(r.out.split(separator: "\n")[0]))
            keys[h.id] = path
            pubs[h.id] = try #require(entry["public_key"]?.stringValue)
        }
        self.keys = keys
        publicKeys = pubs
        trust = dir + "/approvers.json"
        try writeTrust(threshold: threshold)
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    /// approvers.json: every holder, Dana revoked.
    func writeTrust(threshold: Int = 2, requiredRoles: [String] = ["QA"], revoked: [String] = ["dana"]) throws {
        let entries = Self.holders.map { h in
            let rev = revoked.contains(h.id) ? #", "revoked": "2026-05-02: left the company (HR-118)""# : ""
            return #"{"name": "\#(h.name)", "roles": [\#(h.roles.map { "\"\($0)\"" }.joined(separator: ", "))], "public_key": "\#(publicKeys[h.id]!)"\#(rev)}"#
        }
        let roles = requiredRoles.map { "\"\($0)\"" }.joined(separator: ", ")
        try #"{"threshold": \#(threshold), "required_roles": [\#(roles)], "keys": [\#(entries.joined(separator: ",\n"))]}"#
            .write(toFile: trust, atomically: true, encoding: .utf8)
    }

    /// A copy of the example policies, plus `extra` files (a comment-only policy changes the
    /// revision and no decision).
    func policies(_ name: String, extra: [String: String] = [:]) throws -> String {
        let p = dir + "/" + name
        let fm = FileManager.default
        try fm.createDirectory(atPath: p, withIntermediateDirectories: true)
        for entry in try fm.contentsOfDirectory(atPath: daemonExamplePolicies) {
            try fm.copyItem(atPath: daemonExamplePolicies + "/" + entry, toPath: p + "/" + entry)
        }
        for (n, text) in extra { try text.write(toFile: p + "/" + n, atomically: true, encoding: .utf8) }
        return p
    }

    /// Builds with `custos bundle build` (signed by `author`), then signs with each of `approvers`.
    @discardableResult
    func build(_ policies: String, sequence: Int, out: String, author: String = "alice",
               approvers: [String] = ["quinn", "lee"], rollbackOf: Int? = nil) throws -> String {
        var args = ["bundle", "build", policies, "-o", out, "--sequence", "\(sequence)", "--author-key", keys[author]!,
                    "--author", author, "--reason", "change \(sequence)", "--ticket", "CC-\(sequence)",
                    "--created", "2026-06-01T12:00:00Z"]
        if let r = rollbackOf { args += ["--rollback-of", "\(r)"] }
        let r = try runCustosCommand(args)
        try #require(r.status == 0, "build: \(r.err)")
        for a in approvers {
            let s = try runCustosCommand(["bundle", "sign", out, "--key", keys[a]!])
            try #require(s.status == 0, "sign: \(s.err)")
        }
        return out
    }

    func key(_ holder: String) throws -> Ed25519PrivateKey { try Ed25519PrivateKey.load(from: keys[holder]!) }

    /// The archive's members.
    static func members(_ path: String) throws -> [(name: String, contents: [UInt8])] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        return try Tar.read(bytes, maxMembers: 10_000).map { ($0.name, $0.contents) }
    }

    static func write(_ members: [(name: String, contents: [UInt8])], to path: String) throws {
        try Data(Tar.write(members.map { Tar.Member(name: $0.name, contents: $0.contents) })).write(to: URL(fileURLWithPath: path))
    }

    /// Publishes `file` in the bundles folder as `name` the way an operator should: a rename,
    /// so the daemon never sees half a file.
    func publish(_ file: String, as name: String) throws {
        let tmp = bundles + "/.incoming-" + name
        try? FileManager.default.removeItem(atPath: tmp)
        try FileManager.default.copyItem(atPath: file, toPath: tmp)
        guard rename(tmp, bundles + "/" + name) == 0 else { throw DaemonFailure(message: "rename failed: \(errno)") }
    }

    /// The ways a bundle can be wrong that the issue lists, each made from a valid bundle
    /// (`good`, sequence `sequence`) into `out`; the text is what the refusal must say.
    func tampered(_ kind: String, good: String, sequence: Int, out: String) throws -> String {
        var ms = try Self.members(good)
        switch kind {
        case "file changed after signing":
            let i = try #require(ms.firstIndex { $0.name == "policies/20-study-leads.cedar" })
            var text = String(decoding: ms[i].contents, as: UTF8.self)
            text = text.replacingOccurrences(of: "permit", with: "forbid")
            ms[i].contents = Array(text.utf8)
            try Self.write(ms, to: out)
            return "20-study-leads.cedar does not match the manifest"
        case "signature over a different manifest":
            // Quinn's signature of this change at another sequence, carried over.
            let other = try build(try policies("other-\(sequence)"), sequence: sequence + 100, out: dir + "/other-\(sequence).bundle")
            let stolen = try #require(try PolicyBundle.read(path: other).signatures.first { $0.key == ApproverKey.id(of: try key("quinn").publicKey) })
            var sigs = try JSON.parse(ms.last!.contents)
            guard case .array(var items)? = sigs["signatures"] else { throw DaemonFailure(message: "no signatures") }
            items = items.map { item in
                guard item["key"]?.stringValue == stolen.key else { return item }
                return .object(JSONObject([.init(key: "key", value: .string(stolen.key)),
                                           .init(key: "signature", value: .string(Data(stolen.signature).base64EncodedString()))]))
            }
            sigs = .object(JSONObject([.init(key: "signatures", value: .array(items))]))
            var w = JSONWriter()
            w.value(sigs)
            ms[ms.count - 1].contents = w.bytes
            try Self.write(ms, to: out)
            return "the signature by Quinn QA"
        case "one signature of two required":
            try build(try policies("one-of-two-\(sequence)"), sequence: sequence, out: out, approvers: ["quinn"])
            return "1 of 2 required approvals"
        case "the author's own signature counted":
            // Quinn (QA) wrote it and signed it; with Lee that looks like two approvals.
            try build(try policies("own-\(sequence)"), sequence: sequence, out: out, author: "quinn", approvers: ["lee"])
            return "the author (separation of duties"
        case "a revoked key":
            try build(try policies("revoked-\(sequence)"), sequence: sequence, out: out, approvers: ["quinn", "dana"])
            return "Dana Departed (sha256:"
        case "a missing file":
            ms.removeAll { $0.name == "policies/guardrails/retention.json" }
            try Self.write(ms, to: out)
            return "missing file guardrails/retention.json"
        case "an extra file":
            ms.insert(("policies/99-extra.cedar", Array("permit(principal, action, resource);\n".utf8)), at: ms.count - 1)
            try Self.write(ms, to: out)
            return "extra file 99-extra.cedar"
        case "a duplicated manifest key":
            var text = String(decoding: ms[0].contents, as: UTF8.self)
            text = text.replacingOccurrences(of: "\"sequence\":\(sequence)}", with: "\"sequence\":\(sequence),\"sequence\":\(sequence + 1)}")
            ms[0].contents = Array(text.utf8)
            try Self.write(ms, to: out)
            return "duplicate"
        case "an unknown manifest key":
            var text = String(decoding: ms[0].contents, as: UTF8.self)
            text = text.replacingOccurrences(of: "\"sequence\":\(sequence)}", with: "\"sequence\":\(sequence),\"signed_by_qa\":true}")
            ms[0].contents = Array(text.utf8)
            try Self.write(ms, to: out)
            return "$.signed_by_qa: unknown key"
        default:
            throw DaemonFailure(message: "unknown kind \(kind)")
        }
    }

    static let refusals = ["file changed after signing", "signature over a different manifest", "one signature of two required",
                           "the author's own signature counted", "a revoked key", "a missing file", "an extra file",
                           "a duplicated manifest key", "an unknown manifest key"]
}
