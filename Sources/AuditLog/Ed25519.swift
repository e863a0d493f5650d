import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// An Ed25519 (RFC 8032) signing key held by OpenSSL. The private half is stored on disk as its
/// raw 32-byte seed, readable by the owner only.
public final class Ed25519PrivateKey: @unchecked Sendable {
    // EVP_PKEY is safe to share across threads for signing once built (OpenSSL 3 threading rules).
    private let pkey: OpaquePointer
    public let publicKey: Ed25519PublicKey

    private init(pkey: OpaquePointer) throws(AuditError) {
        self.pkey = pkey
        var raw = [UInt8](repeating: 0, count: 32)
        var len = 32
        guard EVP_PKEY_get_raw_public_key(pkey, &raw, &len) == 1, len == 32 else {
            EVP_PKEY_free(pkey)
            throw .key("OpenSSL could not export the Ed25519 public key")
        }
        publicKey = Ed25519PublicKey(unchecked: raw)
    }

    deinit { EVP_PKEY_free(pkey) }

    /// A fresh key from OpenSSL's CSPRNG.
    public static func generate() throws(AuditError) -> Ed25519PrivateKey {
        guard let ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nil) else { throw .key("OpenSSL has no Ed25519 support") }
        defer { EVP_PKEY_CTX_free(ctx) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(ctx) == 1, EVP_PKEY_keygen(ctx, &key) == 1, let key else {
            throw .key("OpenSSL could not generate an Ed25519 key")
        }
        return try Ed25519PrivateKey(pkey: key)
    }

    /// The key whose 32-byte RFC 8032 seed is `seed`.
    public convenience init(seed: [UInt8]) throws(AuditError) {
        guard seed.count == 32 else { throw .key("an Ed25519 private key is 32 bytes, got \(seed.count)") }
        guard let k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, 32) else {
            throw .key("OpenSSL rejected the Ed25519 private key")
        }
        try self.init(pkey: k)
    }

    var seed: [UInt8] {
        var raw = [UInt8](repeating: 0, count: 32)
        var len = 32
        precondition(EVP_PKEY_get_raw_private_key(pkey, &raw, &len) == 1 && len == 32)
        return raw
    }

    public func sign(_ message: [UInt8]) throws(AuditError) -> [UInt8] {
        guard let ctx = EVP_MD_CTX_new() else { throw .key("OpenSSL could not allocate a signing context") }
        defer { EVP_MD_CTX_free(ctx) }
        var sig = [UInt8](repeating: 0, count: 64)
        var len = 64
        // Ed25519 is "pure": no separate digest, one-shot DigestSign over the whole message.
        guard EVP_DigestSignInit(ctx, nil, nil, nil, pkey) == 1,
              EVP_DigestSign(ctx, &sig, &len, message, message.count) == 1, len == 64 else {
            throw .key("OpenSSL failed to sign with Ed25519")
        }
        return sig
    }

    /// Reads a key written by `store(to:)`. Refuses a file other users can read, because then the
    /// checkpoints it signs prove nothing.
    public static func load(from path: String) throws(AuditError) -> Ed25519PrivateKey {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw .io(operation: "open signing key", path: path, errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .io(operation: "stat signing key", path: path, errno: errno) }
        guard st.st_mode & 0o077 == 0 else {
            throw .key("signing key \(path) is accessible to group or others: run chmod 600 on it")
        }
        var buf = [UInt8](repeating: 0, count: 64)
        let n = read(fd, &buf, 64)
        guard n == 32 else { throw .key("signing key \(path) must hold exactly 32 bytes (an Ed25519 seed), found \(max(n, 0))") }
        return try Ed25519PrivateKey(seed: Array(buf[0..<32]))
    }

    /// Writes the seed to a new file with mode 0600 and makes the file and its name durable.
    public func store(to path: String) throws(AuditError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw .io(operation: "create signing key", path: path, errno: errno) }
        let s = seed
        let n = write(fd, s, s.count)
        let synced = fsync(fd) == 0
        let err = errno
        close(fd)
        guard n == 32, synced else { throw .io(operation: "write signing key", path: path, errno: err) }
        try FileSystem.syncDirectory(containing: path)
    }

    /// Loads the key at `path`, or creates and stores one when there is none yet.
    public static func loadOrCreate(at path: String) throws(AuditError) -> Ed25519PrivateKey {
        if access(path, F_OK) == 0 { return try load(from: path) }
        let k = try generate()
        try k.store(to: path)
        return k
    }
}

/// An Ed25519 public key: 32 raw bytes.
public struct Ed25519PublicKey: Hashable, Sendable {
    public let rawRepresentation: [UInt8]

    public init(rawRepresentation: [UInt8]) throws(AuditError) {
        guard rawRepresentation.count == 32 else { throw .key("an Ed25519 public key is 32 bytes, got \(rawRepresentation.count)") }
        self.rawRepresentation = rawRepresentation
    }

    init(unchecked raw: [UInt8]) { rawRepresentation = raw }

    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        guard signature.count == 64,
              let pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, rawRepresentation, 32) else { return false }
        defer { EVP_PKEY_free(pkey) }
        guard let ctx = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(ctx) }
        return EVP_DigestVerifyInit(ctx, nil, nil, nil, pkey) == 1
            && EVP_DigestVerify(ctx, signature, 64, message, message.count) == 1
    }
}
