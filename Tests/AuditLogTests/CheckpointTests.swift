import AuditLog
import Foundation
import Testing

@Suite struct CheckpointTests {
    let root = SHA256Digest.hash("root")

    @Test func signedCheckpointVerifiesWithItsKey() throws {
        let s = try Fixture.signer()
        let cp = Checkpoint(origin: s.name, size: 42, root: root)
        let note = try s.sign(cp)
        #expect(note.hasPrefix("custos.example/audit\n42\n\(root.base64)\n\n\u{2014} custos.example/audit "))
        #expect(try Checkpoint(signedNote: note, verifier: s.verifierKey) == cp)
    }

    @Test func checkpointSignedWithAnotherKeyOfTheSameNameIsRejected() throws {
        let s = try Fixture.signer()
        let other = try Fixture.signer()
        let note = try other.sign(Checkpoint(origin: s.name, size: 1, root: root))
        #expect(throws: AuditError.self) { try Checkpoint(signedNote: note, verifier: s.verifierKey) }
    }

    @Test func checkpointWithChangedBodyIsRejected() throws {
        let s = try Fixture.signer()
        let note = try s.sign(Checkpoint(origin: s.name, size: 10, root: root))
        let forged = note.replacingOccurrences(of: "\n10\n", with: "\n11\n")
        #expect(forged != note)
        #expect(throws: AuditError.self) { try Checkpoint(signedNote: forged, verifier: s.verifierKey) }
    }

    @Test func signaturesByUnknownKeysAreIgnoredButOneKnownSignatureIsRequired() throws {
        let s = try Fixture.signer()
        let witness = try Fixture.signer("witness.example")
        let body = Checkpoint(origin: s.name, size: 3, root: root).body
        let mine = try s.sign(body: body)
        let theirs = try witness.sign(body: body)
        let witnessLine = String(theirs.dropFirst(body.count + 1))
        // Known plus unknown: verifies, and only the known signer is reported.
        let cosigned = mine + witnessLine
        let opened = try SignedNote.open(cosigned, verifiers: [s.verifierKey])
        #expect(opened.signers == [s.name])
        #expect(opened.body == body)
        // Unknown only: rejected.
        #expect(throws: AuditError.self) { try Checkpoint(signedNote: theirs, verifier: s.verifierKey) }
        // A known key whose signature fails rejects the note even when another one verifies.
        let bad = try s.sign(body: body.replacingOccurrences(of: "\n3\n", with: "\n4\n"))
        let badLine = String(bad.dropFirst(body.count + 1))
        #expect(throws: AuditError.self) { try SignedNote.open(cosigned + badLine, verifiers: [s.verifierKey, witness.verifierKey]) }
    }

    /// The example from the signed-note reference implementation (golang.org/x/mod/sumdb/note).
    @Test func referenceSignedNoteVerifies() throws {
        let key = try NoteVerifierKey(parsing: "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
        let text = "If you think cryptography is the answer to your problem,\n"
            + "then you don't know what your problem is.\n"
            + "\n"
            + "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
        let opened = try SignedNote.open(text, verifiers: [key])
        #expect(opened.signers == ["PeterNeumann"])
        #expect(key.text == "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    }

    @Test func verifierKeyTextRoundTripsAndRejectsAWrongKeyID() throws {
        let s = try Fixture.signer()
        let text = s.verifierKey.text
        #expect(try NoteVerifierKey(parsing: text) == s.verifierKey)
        let parts = text.split(separator: "+", maxSplits: 2)
        let wrongID = "\(parts[0])+00000000+\(parts[2])"
        #expect(throws: AuditError.self) { try NoteVerifierKey(parsing: wrongID) }
    }

    @Test(arguments: [
        "origin\n12\n",                      // no root line
        "origin\n012\n\(SHA256Digest.hash("x").base64)\n",  // non-canonical size
        "origin\n-1\n\(SHA256Digest.hash("x").base64)\n",
        "origin\n12\nAAAA\n",                // root not 32 bytes
        "origin\n12\n\(SHA256Digest.hash("x").base64)",     // no final newline
        "\n12\n\(SHA256Digest.hash("x").base64)\n",         // empty origin
    ])
    func malformedCheckpointBodiesAreRejected(_ body: String) {
        #expect(throws: AuditError.self) { try Checkpoint(body: body) }
    }

    @Test func privateKeyIsStoredOwnerOnlyAndLoadsBack() throws {
        let dir = TempDir("key")
        defer { dir.cleanup() }
        let path = dir.path + "/audit.key"
        let k = try Ed25519PrivateKey.loadOrCreate(at: path)
        let attrs = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attrs[.posixPermissions] as? Int) == 0o600)
        let again = try Ed25519PrivateKey.loadOrCreate(at: path)
        #expect(again.publicKey == k.publicKey)
        let sig = try again.sign(Array("m".utf8))
        #expect(k.publicKey.isValidSignature(sig, for: Array("m".utf8)))
        #expect(!k.publicKey.isValidSignature(sig, for: Array("n".utf8)))
        chmod(path, 0o644)
        #expect(throws: AuditError.self) { try Ed25519PrivateKey.load(from: path) }
    }
}
