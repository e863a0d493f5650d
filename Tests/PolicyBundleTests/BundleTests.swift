import AuditLog
import CustosJSON
import CustosTestSupport
import Foundation
import PolicyBundle
import Testing

/// Four people: an author, a QA reviewer, a study lead, and one whose key was revoked.
struct People {
    let alice = try! Ed25519PrivateKey.generate()   // author
    let quinn = try! Ed25519PrivateKey.generate()   // QA
    let lee = try! Ed25519PrivateKey.generate()     // approver
    let dana = try! Ed25519PrivateKey.generate()    // revoked approver
    let eve = try! Ed25519PrivateKey.generate()     // not listed

    func approversJSON(threshold: Int = 2, requiredRoles: [String] = ["QA"]) -> String {
        func b64(_ k: Ed25519PrivateKey) -> String { Data(k.publicKey.rawRepresentation).base64EncodedString() }
        let roles = requiredRoles.map { "\"\($0)\"" }.joined(separator: ",")
        return """
        {"threshold": \(threshold), "required_roles": [\(roles)], "keys": [
          {"name": "Alice Author", "roles": ["author"], "public_key": "\(b64(alice))"},
          {"name": "Quinn QA", "roles": ["QA"], "public_key": "\(b64(quinn))"},
          {"name": "Lee Lead", "roles": ["approver"], "public_key": "\(b64(lee))"},
          {"name": "Dana Departed", "roles": ["approver", "QA"], "public_key": "\(b64(dana))", "revoked": "2026-05-02: left the company (HR-118)"}
        ]}
        """
    }

    func trust(threshold: Int = 2, requiredRoles: [String] = ["QA"]) throws -> Approvers {
        try Approvers.parse(Array(approversJSON(threshold: threshold, requiredRoles: requiredRoles).utf8), file: "approvers.json")
    }

    func bundle(sequence: UInt64 = 7, reason: String = "tighten exports", signers: [Ed25519PrivateKey]? = nil,
                files: [(String, String)] = [("10-a.cedar", "permit(principal, action, resource);\n"),
                                             ("guardrails/regions.json", "{}\n")]) throws -> PolicyBundle {
        var b = try PolicyBundle(files: files.map { ($0.0, Array($0.1.utf8)) }, sequence: sequence,
                                 revision: "sha256:" + String(repeating: "0", count: 64),
                                 author: .init(key: ApproverKey.id(of: alice.publicKey), name: "Alice Author"),
                                 changeReason: reason, changeTicket: "CC-2026-014", created: "2026-06-01T12:00:00Z")
        for k in signers ?? [alice, quinn, lee] { try b.sign(with: k) }
        return b
    }
}

/// Replaces the first occurrence of `find` in `bytes` by `replace` (same length).
func patch(_ bytes: [UInt8], _ find: String, _ replace: String) -> [UInt8] {
    let f = Array(find.utf8), r = Array(replace.utf8)
    precondition(f.count == r.count)
    var out = bytes
    for i in 0...(bytes.count - f.count) where Array(bytes[i..<i + f.count]) == f {
        out.replaceSubrange(i..<i + f.count, with: r)
        return out
    }
    preconditionFailure("\(find) not found")
}

/// An archive rebuilt from `members` with the layout custos writes (valid headers).
func archive(_ members: [(String, [UInt8])]) -> [UInt8] {
    Tar.write(members.map { Tar.Member(name: $0.0, contents: $0.1) })
}

func members(of b: PolicyBundle) throws -> [(String, [UInt8])] {
    try Tar.read(b.serialized(), maxMembers: 100).map { ($0.name, $0.contents) }
}

@Suite struct BundleFormatTests {
    let people = People()

    @Test func aBuiltBundleReadsBackByteForByteAndVerifies() throws {
        let b = try people.bundle()
        let bytes = b.serialized()
        let again = try PolicyBundle(bytes: bytes)
        #expect(again.serialized() == bytes)
        #expect(again.manifest == b.manifest)
        #expect(again.files.map(\.name) == ["10-a.cedar", "guardrails/regions.json"])
        let approval = try again.verify(trust: people.trust())
        #expect(approval.author.name == "Alice Author")
        #expect(approval.approvers.map(\.name).sorted() == ["Lee Lead", "Quinn QA"])
    }

    @Test func theManifestIsCanonicalJSONWithSortedMembers() throws {
        let b = try people.bundle()
        let text = String(decoding: b.manifestBytes, as: UTF8.self)
        #expect(text.hasPrefix("{\"author\":{\"key\":\"sha256:"))
        #expect(!text.contains(" \"") && !text.contains("\n"))
        #expect(text.contains("\"change_ticket\":\"CC-2026-014\",\"created\":\"2026-06-01T12:00:00Z\",\"files\":[{\"name\":\"10-a.cedar\""))
        #expect(text.hasSuffix("\"sequence\":7}"))
    }

    @Test func signaturesCoverTheDomainPrefixAndTheWholeManifest() throws {
        let b = try people.bundle()
        let sig = try #require(b.signatures.first { $0.key == ApproverKey.id(of: people.quinn.publicKey) })
        #expect(people.quinn.publicKey.isValidSignature(sig.signature, for: Array("custos-policy-bundle-v1\n".utf8) + b.manifestBytes))
        #expect(!people.quinn.publicKey.isValidSignature(sig.signature, for: b.manifestBytes))
    }

    @Test func aFileChangedAfterSigningIsRefused() throws {
        let bytes = patch(try people.bundle().serialized(), "permit(principal", "forbid(principal")
        #expect { try PolicyBundle(bytes: bytes) } throws: { e in
            guard case .files(let m) = e as? BundleError else { return false }
            return m.contains("10-a.cedar does not match the manifest")
        }
    }

    @Test func aSignatureOverADifferentManifestIsRefused() throws {
        // Quinn signed sequence 6; that signature is carried over onto sequence 7's manifest.
        let other = try people.bundle(sequence: 6)
        let quinnID = ApproverKey.id(of: people.quinn.publicKey)
        let stolen = try #require(other.signatures.first { $0.key == quinnID })
        var ms = try members(of: try people.bundle(signers: [people.alice, people.lee]))
        let last = ms.popLast()
        let sigs = try #require(last)
        var json = String(decoding: sigs.1, as: UTF8.self)
        json = json.replacingOccurrences(of: "]}", with: ",{\"key\":\"\(quinnID)\",\"signature\":\"\(Data(stolen.signature).base64EncodedString())\"}]}")
        ms.append((sigs.0, Array(json.utf8)))
        let b = try PolicyBundle(bytes: archive(ms))
        #expect { try b.verify(trust: people.trust()) } throws: { e in
            guard case .approval(let m) = e as? BundleError else { return false }
            return m.contains("Quinn QA") && m.contains("does not verify over this manifest")
        }
    }

    @Test(arguments: [
        // (signers, threshold, what the refusal must say)
        ("one of two required", ["alice", "quinn"], 2, "1 of 2 required approvals"),
        ("the author's own signature counted", ["alice", "quinn"], 2, "the author (separation of duties"),
        ("a revoked key", ["alice", "quinn", "dana"], 2, "Dana Departed (sha256:"),
        ("no QA approval", ["alice", "lee", "eve"], 1, "no approval by a key with role QA"),
        ("the author did not sign", ["quinn", "lee"], 2, "has not signed it"),
        ("a key not in the approvers file", ["alice", "quinn", "eve"], 2, "not in the approvers file, ignored"),
    ])
    func approvalsThatDoNotMeetTheRuleAreRefused(_ label: String, _ signers: [String], _ threshold: Int, _ says: String) throws {
        let keys = ["alice": people.alice, "quinn": people.quinn, "lee": people.lee, "dana": people.dana, "eve": people.eve]
        let b = try people.bundle(signers: signers.map { keys[$0]! })
        #expect(throws: (any Error).self, "\(label)") { try b.verify(trust: people.trust(threshold: threshold)) }
        do { _ = try b.verify(trust: people.trust(threshold: threshold)) } catch let error as BundleError {
            guard case .approval(let m) = error else { Issue.record("\(label): \(error)"); return }
            #expect(m.contains(says), "\(label): \(m)")
        }
    }

    @Test func aRevokedAuthorKeyRefusesTheBundle() throws {
        var b = try PolicyBundle(files: [("10-a.cedar", Array("permit(principal, action, resource);".utf8))], sequence: 2,
                                 revision: "sha256:" + String(repeating: "1", count: 64),
                                 author: .init(key: ApproverKey.id(of: people.dana.publicKey), name: "Dana"),
                                 changeReason: "r", changeTicket: "t", created: "2026-06-01T12:00:00Z")
        for k in [people.dana, people.quinn, people.lee] { try b.sign(with: k) }
        #expect { try b.verify(trust: people.trust()) } throws: { e in
            guard case .approval(let m) = e as? BundleError else { return false }
            return m.contains("the author's key") && m.contains("is revoked")
        }
    }

    @Test func aMissingFileIsRefused() throws {
        var ms = try members(of: try people.bundle())
        ms.remove(at: 2)  // policies/guardrails/regions.json
        #expect { try PolicyBundle(bytes: archive(ms)) } throws: { e in
            guard case .files(let m) = e as? BundleError else { return false }
            return m.contains("missing file guardrails/regions.json")
        }
    }

    @Test func anExtraFileIsRefused() throws {
        var ms = try members(of: try people.bundle())
        ms.insert(("policies/90-extra.cedar", Array("permit(principal, action, resource);".utf8)), at: 2)
        #expect { try PolicyBundle(bytes: archive(ms)) } throws: { e in
            guard case .files(let m) = e as? BundleError else { return false }
            return m.contains("extra file 90-extra.cedar")
        }
    }

    @Test(arguments: [
        ("a duplicated key", #""sequence":7}"#, #""sequence":7,"sequence":9}"#, "duplicate"),
        ("an unknown key", #""sequence":7}"#, #""sequence":7,"signed":true}"#, "$.signed: unknown key"),
        ("an optional member left out of a signature's view", #""sequence":7}"#, #""sequence":7,"zz":null}"#, "$.zz: unknown key"),
        ("whitespace", #","sequence":7}"#, #", "sequence":7}"#, "canonical form"),
        ("members out of order", #"{"author":{"key""#, #"{"author":{"name":"Alice Author","key""#, "canonical form"),
    ])
    func aManifestThatIsNotExactlyTheFormatIsRefused(_ label: String, _ find: String, _ replace: String, _ says: String) throws {
        var ms = try members(of: try people.bundle())
        var text = String(decoding: ms[0].1, as: UTF8.self)
        if label == "members out of order" {
            // Move the author's name before its key (same members, another order).
            let b = try people.bundle()
            let key = ApproverKey.id(of: people.alice.publicKey)
            text = String(decoding: b.manifestBytes, as: UTF8.self)
                .replacingOccurrences(of: "{\"author\":{\"key\":\"\(key)\",\"name\":\"Alice Author\"}",
                                      with: "{\"author\":{\"name\":\"Alice Author\",\"key\":\"\(key)\"}")
        } else {
            text = text.replacingOccurrences(of: find, with: replace)
        }
        ms[0].1 = Array(text.utf8)
        #expect(throws: BundleError.self, "\(label)") { try PolicyBundle(bytes: archive(ms)) }
        do { _ = try PolicyBundle(bytes: archive(ms)) } catch {
            #expect(error.description.contains(says), "\(label): \(error)")
        }
    }

    @Test func aLinkEntryInTheArchiveIsRefused() throws {
        var bytes = try people.bundle().serialized()
        // Make the second entry a symbolic link (type '2'); its checksum then no longer matters.
        bytes[512 + Tar.padded(try people.bundle().manifestBytes.count) + 156] = UInt8(ascii: "2")
        #expect { try PolicyBundle(bytes: bytes) } throws: { e in
            guard case .malformed(let m) = e as? BundleError else { return false }
            return m.contains("is a link")
        }
    }

    @Test func dataAfterTheEndOfTheArchiveIsRefused() throws {
        let bytes = try people.bundle().serialized() + [UInt8](repeating: 0, count: 512) + Array("x".utf8)
        #expect(throws: BundleError.self) { try PolicyBundle(bytes: bytes) }
    }

    @Test func aHeaderOtherThanTheOneCustosWritesIsRefused() throws {
        var bytes = try people.bundle().serialized()
        bytes[100 + 4] = UInt8(ascii: "7")  // mode 0644 -> 0744, checksum now wrong too
        #expect { try PolicyBundle(bytes: bytes) } throws: { e in
            guard case .malformed(let m) = e as? BundleError else { return false }
            return m.contains("not a header custos writes")
        }
    }

    @Test(arguments: ["../etc/passwd", "/abs.cedar", "a//b.cedar", "./a.cedar", "a\u{1}.cedar", ""])
    func fileNamesThatAreNotPlainRelativePathsAreRefused(_ name: String) {
        #expect(throws: BundleError.self) {
            try PolicyBundle(files: [(name, [1])], sequence: 1, revision: "sha256:" + String(repeating: "0", count: 64),
                             author: .init(key: "sha256:" + String(repeating: "0", count: 64), name: "a"),
                             changeReason: "r", changeTicket: "t", created: "2026-06-01T12:00:00Z")
        }
    }

    @Test func peekingReadsTheManifestOfAFileWithoutItsFiles() throws {
        let b = try people.bundle()
        let dir = Scratch.directory("bundle-peek")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try PolicyBundle.writeFile(b.serialized(), to: dir + "/7.bundle", replace: false)
        let (m, sha) = try PolicyBundle.peekManifest(path: dir + "/7.bundle")
        #expect(m.sequence == 7)
        #expect(sha == b.manifestSHA256)
        #expect(throws: BundleError.self) { try PolicyBundle.writeFile([1], to: dir + "/7.bundle", replace: false) }
    }

    @Test func aRollbackMustNameAnEarlierSequence() throws {
        #expect(throws: BundleError.self) {
            try PolicyBundle(files: [("10-a.cedar", [1])], sequence: 4, revision: "sha256:" + String(repeating: "0", count: 64),
                             author: .init(key: "sha256:" + String(repeating: "0", count: 64), name: "a"),
                             changeReason: "r", changeTicket: "t", created: "2026-06-01T12:00:00Z", rollbackOf: 4)
        }
    }
}

@Suite struct ApproversFileTests {
    let people = People()

    @Test(arguments: [
        (#"{"threshold": 4, "keys": KEYS}"#, "cannot be met"),
        (#"{"threshold": 0, "keys": KEYS}"#, "$.threshold"),
        (#"{"threshold": 1, "required_roles": ["auditor"], "keys": KEYS}"#, "no key in force holds role auditor"),
        (#"{"threshold": 1, "keys": KEYS, "quorum": 2}"#, "$.quorum: unknown key"),
        (#"{"threshold": 1, "keys": []}"#, "$.keys"),
    ])
    func anApproversFileThatCannotWorkIsRefused(_ template: String, _ says: String) throws {
        func b64(_ k: Ed25519PrivateKey) -> String { Data(k.publicKey.rawRepresentation).base64EncodedString() }
        let keys = """
        [{"name": "A", "roles": ["author"], "public_key": "\(b64(people.alice))"},
         {"name": "Q", "roles": ["QA"], "public_key": "\(b64(people.quinn))"},
         {"name": "L", "roles": [], "public_key": "\(b64(people.lee))"},
         {"name": "D", "roles": ["auditor"], "public_key": "\(b64(people.dana))", "revoked": "gone"}]
        """
        let text = template.replacingOccurrences(of: "KEYS", with: keys)
        #expect { try Approvers.parse(Array(text.utf8), file: "approvers.json") } throws: { e in
            (e as? BundleError)?.description.contains(says) == true
        }
    }

    @Test func theSameKeyListedTwiceIsRefused() {
        let b64 = Data(people.alice.publicKey.rawRepresentation).base64EncodedString()
        let text = #"{"threshold": 1, "keys": [{"name": "A", "roles": [], "public_key": "\#(b64)"}, {"name": "B", "roles": [], "public_key": "\#(b64)"}]}"#
        #expect { try Approvers.parse(Array(text.utf8), file: "approvers.json") } throws: { e in
            (e as? BundleError)?.description.contains("the same key as A's") == true
        }
    }
}

@Suite struct BundleTamperTests {
    let people = People()

    /// A fully approved bundle with any one byte changed, at every offset of the file (tar
    /// headers, file contents, padding, the manifest, the signatures, the end-of-archive
    /// blocks), is refused: by the reader or by verification, never accepted. Each offset gets
    /// one change from a fixed seed.
    @Test func everySingleByteChangeOfAnApprovedBundleIsRefused() throws {
        let bytes = try people.bundle().serialized()
        #expect(bytes.count >= 5 * 512, "headers, contents, manifest, signatures: \(bytes.count) bytes")
        let trust = try people.trust()
        _ = try PolicyBundle(bytes: bytes).verify(trust: trust)
        var rng = SeededRandom(state: 0x6275_6e64_6c65_0001)
        var accepted: [Int] = []
        for at in bytes.indices {
            var changed = bytes
            changed[at] ^= UInt8.random(in: 1...255, using: &rng)
            if let b = try? PolicyBundle(bytes: changed), (try? b.verify(trust: trust)) != nil { accepted.append(at) }
        }
        #expect(accepted.isEmpty, "\(accepted.count) of \(bytes.count) single-byte changes were accepted, first at \(accepted.prefix(10))")
    }
}
