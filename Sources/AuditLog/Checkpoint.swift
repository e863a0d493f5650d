/// A C2SP tlog-checkpoint: the log's identity, its size and the RFC 9162 root at that size.
/// Its text form is the body of a signed note: `origin\nsize\nbase64(root)\n`.
public struct Checkpoint: Sendable, Equatable {
    public var origin: String
    public var size: UInt64
    public var root: SHA256Digest

    public init(origin: String, size: UInt64, root: SHA256Digest) {
        self.origin = origin
        self.size = size
        self.root = root
    }

    public var body: String { "\(origin)\n\(size)\n\(root.base64)\n" }

    /// Parses a checkpoint body. Extension lines after the root are allowed by the spec and
    /// ignored here; the size must be canonical decimal so one tree state has one spelling.
    public init(body: String) throws(AuditError) {
        guard body.utf8.last == 0x0A else { throw .checkpoint("the body must end with a newline") }
        let lines = body.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast()
        guard lines.count >= 3 else { throw .checkpoint("the body needs origin, size and root lines, found \(lines.count) lines") }
        let origin = String(decoding: lines[lines.startIndex], as: UTF8.self)
        guard !origin.isEmpty else { throw .checkpoint("the origin line is empty") }
        let sizeText = lines[lines.startIndex + 1]
        guard let size = parseCanonicalDecimal(sizeText) else {
            throw .checkpoint("the size line \"\(String(decoding: sizeText, as: UTF8.self))\" is not a canonical decimal number")
        }
        guard let raw = Base64.decode(Array(lines[lines.startIndex + 2])), let root = SHA256Digest(bytes: raw) else {
            throw .checkpoint("the root line is not the base64 of 32 bytes")
        }
        self.init(origin: origin, size: size, root: root)
    }
}

func parseCanonicalDecimal<C: Collection>(_ digits: C) -> UInt64? where C.Element == UInt8 {
    guard let first = digits.first, !(first == UInt8(ascii: "0") && digits.count > 1) else { return nil }
    var v: UInt64 = 0
    for c in digits {
        guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
        let (m, o1) = v.multipliedReportingOverflow(by: 10)
        let (s, o2) = m.addingReportingOverflow(UInt64(c - UInt8(ascii: "0")))
        guard !o1, !o2 else { return nil }
        v = s
    }
    return v
}

/// A note verifier key in the C2SP signed-note form `name+hex(keyid)+base64(0x01||pubkey)`:
/// what an auditor needs, and all they need, to check checkpoints offline.
public struct NoteVerifierKey: Sendable, Hashable {
    public let name: String
    public let keyID: UInt32
    public let publicKey: Ed25519PublicKey

    static let ed25519Algorithm: UInt8 = 0x01

    public init(name: String, publicKey: Ed25519PublicKey) throws(AuditError) {
        guard isValidKeyName(name) else {
            throw .key("key name \"\(name)\" must be non-empty without spaces or '+'")
        }
        self.name = name
        self.publicKey = publicKey
        keyID = Self.keyID(name: name, publicKey: publicKey)
    }

    /// keyid = SHA-256(name || 0x0A || 0x01 || pubkey)[0:4], big-endian.
    static func keyID(name: String, publicKey: Ed25519PublicKey) -> UInt32 {
        let h = SHA256Digest.hash(Array(name.utf8) + [0x0A, ed25519Algorithm] + publicKey.rawRepresentation).bytes
        return UInt32(h[0]) << 24 | UInt32(h[1]) << 16 | UInt32(h[2]) << 8 | UInt32(h[3])
    }

    public init(parsing text: String) throws(AuditError) {
        let parts = text.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .key("a verifier key has the form name+keyid+base64key") }
        guard let idBytes = Hex.decode(String(parts[1])), idBytes.count == 4 else {
            throw .key("the key id in a verifier key must be 8 hex digits")
        }
        guard let key = Base64.decode(parts[2]), key.count == 33, key[0] == Self.ed25519Algorithm else {
            throw .key("the verifier key is not an Ed25519 key (base64 of 0x01 followed by 32 bytes)")
        }
        try self.init(name: String(parts[0]), publicKey: Ed25519PublicKey(rawRepresentation: Array(key[1...])))
        let id = UInt32(idBytes[0]) << 24 | UInt32(idBytes[1]) << 16 | UInt32(idBytes[2]) << 8 | UInt32(idBytes[3])
        guard id == keyID else { throw .key("the key id \(parts[1]) does not match the name and key") }
    }

    public var text: String {
        let id = withUnsafeBytes(of: keyID.bigEndian) { Hex.encode($0) }
        return "\(name)+\(id)+\(Base64.encode([Self.ed25519Algorithm] + publicKey.rawRepresentation))"
    }
}

/// Signs checkpoints as a C2SP signed note. The key name doubles as the log's origin.
public struct NoteSigner: Sendable {
    public let privateKey: Ed25519PrivateKey
    public let verifierKey: NoteVerifierKey

    public init(name: String, privateKey: Ed25519PrivateKey) throws(AuditError) {
        self.privateKey = privateKey
        verifierKey = try NoteVerifierKey(name: name, publicKey: privateKey.publicKey)
    }

    public var name: String { verifierKey.name }

    /// The signed note: body, blank line, `— name base64(keyid || signature)`.
    public func sign(body: String) throws(AuditError) -> String {
        let sig = try privateKey.sign(Array(body.utf8))
        let id = withUnsafeBytes(of: verifierKey.keyID.bigEndian) { Array($0) }
        return body + "\n\u{2014} \(name) \(Base64.encode(id + sig))\n"
    }

    public func sign(_ checkpoint: Checkpoint) throws(AuditError) -> String { try sign(body: checkpoint.body) }
}

/// Opening a signed note as C2SP describes: signatures by unknown keys are ignored, a signature
/// by a known key that does not verify rejects the note, and so does a note no known key signed.
public enum SignedNote {
    public static func open(_ text: String, verifiers: [NoteVerifierKey]) throws(AuditError) -> (body: String, signers: [String]) {
        let u = Array(text.utf8)
        for c in u where c < 0x20 && c != 0x0A { throw .checkpoint("the note holds a control character") }
        guard u.last == 0x0A else { throw .checkpoint("the note must end with a newline") }
        // The signature block starts after the last blank line.
        var split: Int? = nil
        var i = u.count - 2
        while i >= 0 {
            if u[i] == 0x0A && u[i + 1] == 0x0A { split = i; break }
            i -= 1
        }
        guard let split else { throw .checkpoint("the note has no signature block (no blank line)") }
        let body = String(decoding: u[0...split], as: UTF8.self)
        let sigLines = u[(split + 2)...].split(separator: 0x0A)
        guard !sigLines.isEmpty else { throw .checkpoint("the note has no signatures") }
        guard sigLines.count <= 100 else { throw .checkpoint("the note has more than 100 signatures") }
        let prefix = Array("\u{2014} ".utf8)
        var signers: [String] = []
        for line in sigLines {
            guard line.starts(with: prefix) else { throw .checkpoint("a signature line must start with an em dash and a space") }
            let rest = line.dropFirst(prefix.count)
            guard let space = rest.firstIndex(of: 0x20) else { throw .checkpoint("a signature line is `— name signature`") }
            let name = String(decoding: rest[..<space], as: UTF8.self)
            guard isValidKeyName(name), let blob = Base64.decode(Array(rest[(space + 1)...])), blob.count >= 5 else {
                throw .checkpoint("malformed signature line for \"\(name)\"")
            }
            let id = UInt32(blob[0]) << 24 | UInt32(blob[1]) << 16 | UInt32(blob[2]) << 8 | UInt32(blob[3])
            guard let key = verifiers.first(where: { $0.keyID == id && $0.name.utf8.elementsEqual(name.utf8) }) else {
                continue
            }
            guard key.publicKey.isValidSignature(Array(blob[4...]), for: Array(body.utf8)) else {
                throw .checkpoint("the signature by \(name) does not verify: the note was altered or signed with another key")
            }
            signers.append(name)
        }
        guard !signers.isEmpty else { throw .checkpoint("no known key signed this note") }
        return (body, signers)
    }
}

extension Checkpoint {
    /// Verifies a signed checkpoint note and parses its body.
    public init(signedNote text: String, verifier: NoteVerifierKey) throws(AuditError) {
        let opened = try SignedNote.open(text, verifiers: [verifier])
        try self.init(body: opened.body)
    }

    /// A checkpoint of the log `key` names: signed by the key, and with the key's name as its
    /// origin. A key that also signed for another log must not vouch for that log's tree here.
    public init(signedNote text: String, ofLog key: NoteVerifierKey) throws(AuditError) {
        try self.init(signedNote: text, verifier: key)
        guard origin.utf8.elementsEqual(key.name.utf8) else {
            throw .checkpoint("the checkpoint is for log \"\(origin)\", not \"\(key.name)\"")
        }
    }
}

private func isValidKeyName(_ name: String) -> Bool {
    !name.isEmpty && !name.unicodeScalars.contains { $0 == "+" || $0.properties.isWhitespace || $0.value < 0x20 }
}
