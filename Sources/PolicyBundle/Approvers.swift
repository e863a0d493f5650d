import AuditLog
import CustosJSON

/// One key of `approvers.json`.
public struct ApproverKey: Sendable, Equatable {
    public var name: String
    public var roles: [String]
    public var publicKey: Ed25519PublicKey
    /// `sha256:` and the hex SHA-256 of the raw 32-byte public key.
    public var id: String
    /// Why the key was revoked; nil while it is in force. A revoked key's signature never
    /// counts, whenever it was made (a signature carries no trustworthy time).
    public var revoked: String?

    /// The key id of `key`: `sha256:` and the hex SHA-256 of its 32 raw bytes.
    public static func id(of key: Ed25519PublicKey) -> String {
        "sha256:" + SHA256Digest.hash(key.rawRepresentation).hex
    }

    public var label: String { "\(name) (\(id))" }
}

/// `approvers.json`: who may approve a policy change, and what an approval needs.
///
///     {"threshold": 2, "required_roles": ["QA"],
///      "keys": [{"name": "Quinn QA", "roles": ["QA"], "public_key": "base64 of 32 bytes"},
///               {"name": "Dana Lead", "roles": ["approver"], "public_key": "...", "revoked": "2026-05-02, laptop lost (INC-4411)"}]}
///
/// A bundle is approved when its author's key is listed and not revoked and signed it, and at
/// least `threshold` other listed, unrevoked keys signed it (the author's own signature never
/// counts: separation of duties), among them at least one holding each of `required_roles`.
/// This file is the trust anchor: keep it where the policy authors cannot write.
public struct Approvers: Sendable {
    public static let maxBytes = 1 << 20
    public static let maxKeys = 1000

    public var threshold: Int
    public var requiredRoles: [String]
    public var keys: [ApproverKey]
    /// Lowercase hex SHA-256 of the file as read: the audit log records which trust anchor
    /// approved an activation.
    public var sha256: String

    public func key(id: String) -> ApproverKey? { keys.first { $0.id.utf8.elementsEqual(id.utf8) } }

    public static func read(path: String) throws(BundleError) -> Approvers {
        let bytes: [UInt8]
        do { bytes = try PolicyBundle.readFile(path, limit: maxBytes) } catch {
            throw .trust("\(path): \(error.description)")
        }
        return try parse(bytes, file: path)
    }

    public static func parse(_ bytes: [UInt8], file: String) throws(BundleError) -> Approvers {
        func fail(_ path: String, _ m: String) -> BundleError { .trust("\(file): \(path): \(m)") }
        let json: JSON
        do { json = try JSON.parse(bytes) } catch {
            throw .trust("\(file):\(error.line):\(error.column): invalid JSON: \(error.redactedMessage)")
        }
        guard case .object(let o) = json else { throw fail("$", "expected an object {threshold, required_roles?, keys}") }
        for k in o.keys where !["threshold", "required_roles", "keys"].contains(where: { $0.utf8.elementsEqual(k.utf8) }) {
            throw fail("$.\(k)", "unknown key (approvers.json has threshold, required_roles and keys)")
        }
        guard case .array(let items)? = o["keys"], !items.isEmpty else { throw fail("$.keys", "expected a non-empty array of keys") }
        guard items.count <= maxKeys else { throw fail("$.keys", "more than \(maxKeys) keys") }
        var keys: [ApproverKey] = []
        for (i, item) in items.enumerated() {
            let p = "$.keys[\(i)]"
            guard case .object(let k) = item else { throw fail(p, "expected {name, roles, public_key, revoked?}") }
            for m in k.keys where !["name", "roles", "public_key", "revoked"].contains(where: { $0.utf8.elementsEqual(m.utf8) }) {
                throw fail("\(p).\(m)", "unknown key (a key has name, roles, public_key and revoked)")
            }
            guard case .string(let name)? = k["name"], BundleManifest.textProblem(name, max: BundleManifest.maxShortTextBytes) == nil else {
                throw fail("\(p).name", "expected the key holder's name (one line, at most \(BundleManifest.maxShortTextBytes) bytes)")
            }
            guard case .array(let rs)? = k["roles"] else { throw fail("\(p).roles", "expected an array of role names (may be empty)") }
            var roles: [String] = []
            for (j, r) in rs.enumerated() {
                guard case .string(let role) = r, BundleManifest.textProblem(role, max: 64) == nil else {
                    throw fail("\(p).roles[\(j)]", "expected a role name (one line, at most 64 bytes)")
                }
                roles.append(role)
            }
            guard case .string(let b64)? = k["public_key"], let raw = Base64.decode(b64), raw.count == 32,
                  let pk = try? Ed25519PublicKey(rawRepresentation: raw) else {
                throw fail("\(p).public_key", "expected base64 of a 32-byte Ed25519 public key (as custos bundle keygen prints it)")
            }
            var revoked: String? = nil
            if let r = k["revoked"] {
                guard case .string(let why) = r, BundleManifest.textProblem(why, max: BundleManifest.maxShortTextBytes) == nil else {
                    throw fail("\(p).revoked", "expected the reason the key was revoked (one line); leave the member out while the key is in force")
                }
                revoked = why
            }
            let key = ApproverKey(name: name, roles: roles, publicKey: pk, id: ApproverKey.id(of: pk), revoked: revoked)
            if let other = keys.first(where: { $0.id == key.id }) {
                throw fail("\(p).public_key", "the same key as \(other.name)'s; one entry per key")
            }
            keys.append(key)
        }
        let inForce = keys.filter { $0.revoked == nil }
        guard case .int(let t)? = o["threshold"], t >= 1 else {
            throw fail("$.threshold", "expected the number of approvals a bundle needs (at least 1), besides its author")
        }
        guard t < Int64(inForce.count) else {
            throw fail("$.threshold", "\(t) approvals besides the author's cannot be met by \(inForce.count) keys in force (the author never counts)")
        }
        var required: [String] = []
        if let r = o["required_roles"] {
            guard case .array(let rs) = r else { throw fail("$.required_roles", "expected an array of role names") }
            for (j, x) in rs.enumerated() {
                guard case .string(let role) = x else { throw fail("$.required_roles[\(j)]", "expected a role name") }
                guard inForce.contains(where: { $0.roles.contains { $0.utf8.elementsEqual(role.utf8) } }) else {
                    throw fail("$.required_roles[\(j)]", "no key in force holds role \(role), so no bundle could be approved")
                }
                required.append(role)
            }
        }
        return Approvers(threshold: Int(t), requiredRoles: required, keys: keys, sha256: SHA256Digest.hash(bytes).hex)
    }
}

/// Who approved a bundle, as `PolicyBundle.verify(trust:)` found it.
public struct Approval: Sendable, Equatable {
    public var author: ApproverKey
    /// The keys whose signatures count, in the order of the signatures.
    public var approvers: [ApproverKey]
    /// Signatures that did not count, each with why (the author's own, a revoked key, a key
    /// the approvers file does not list).
    public var notCounted: [String]
}

extension PolicyBundle {
    /// Checks the signatures against `trust` (see `Approvers`). Every signature by a listed
    /// key must verify over these manifest bytes; one that does not refuses the bundle (it
    /// was made for another manifest, or the manifest changed). Signatures by unlisted keys
    /// are ignored, as C2SP notes do.
    public func verify(trust: Approvers) throws(BundleError) -> Approval {
        let message = signedMessage
        guard let author = trust.key(id: manifest.author.key) else {
            throw .approval("the author's key \(manifest.author.key) (\(manifest.author.name)) is not in the approvers file; an author must be a known key holder")
        }
        if let why = author.revoked {
            throw .approval("the author's key \(author.label) is revoked (\(why))")
        }
        var authorSigned = false
        var counted: [ApproverKey] = []
        var notCounted: [String] = []
        for s in signatures {
            guard let k = trust.key(id: s.key) else {
                notCounted.append("\(s.key): not in the approvers file, ignored")
                continue
            }
            guard k.publicKey.isValidSignature(s.signature, for: message) else {
                throw .approval("the signature by \(k.label) does not verify over this manifest: it was made for another manifest, or the manifest changed after it was signed")
            }
            if k.id == author.id {
                authorSigned = true
                notCounted.append("\(k.label): the author (separation of duties: an author never approves their own change)")
            } else if let why = k.revoked {
                notCounted.append("\(k.label): revoked (\(why))")
            } else {
                counted.append(k)
            }
        }
        guard authorSigned else {
            throw .approval("the author \(author.label) has not signed it (custos bundle build signs as the author)")
        }
        let others = notCounted.isEmpty ? "" : "; not counted: " + notCounted.joined(separator: "; ")
        guard counted.count >= trust.threshold else {
            throw .approval("\(counted.count) of \(trust.threshold) required approvals\(counted.isEmpty ? "" : " (" + counted.map(\.label).joined(separator: ", ") + ")")\(others)")
        }
        for role in trust.requiredRoles where !counted.contains(where: { $0.roles.contains { $0.utf8.elementsEqual(role.utf8) } }) {
            throw .approval("no approval by a key with role \(role) (required_roles); approved by \(counted.map(\.label).joined(separator: ", "))\(others)")
        }
        return Approval(author: author, approvers: counted, notCounted: notCounted)
    }
}
