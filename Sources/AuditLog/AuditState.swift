#if canImport(Glibc)
import Glibc
#endif

/// Where a Custos state folder keeps its audit log and keys, so the daemon (which writes) and the
/// offline commands (which read) agree on one layout:
///
///     <state>/audit/segment-<20 digits>.log   framed entries (AuditWriter)
///     <state>/audit/checkpoints.log           framed signed checkpoint notes (AuditWriter)
///     <state>/audit/signing.key               the Ed25519 seed, 32 raw bytes, mode 0600
///     <state>/audit/verifier.key              the C2SP note verifier key line, public
///
/// The verifier key file exists because the key name (the log's origin) is not derivable from
/// the seed; it is a convenience for operators, never a trust anchor for auditors, who must use
/// a copy of the verifier key obtained out of band.
public enum AuditState {
    public static let defaultStateDirectory = "./state"
    public static let auditSubdirectory = "audit"
    public static let signingKeyFile = "signing.key"
    public static let verifierKeyFile = "verifier.key"

    /// The folder AuditWriter and AuditVerifier take as their `stateDirectory`.
    public static func logDirectory(state: String) -> String {
        state.hasSuffix("/") ? state + auditSubdirectory : state + "/" + auditSubdirectory
    }

    public static func signingKeyPath(state: String) -> String { logDirectory(state: state) + "/" + signingKeyFile }
    public static func verifierKeyPath(state: String) -> String { logDirectory(state: state) + "/" + verifierKeyFile }

    /// A key name for a new log: `custos/<hostname>`, restricted to characters a note key name
    /// allows. Only used when a key is first created; the name is then read from verifier.key.
    public static func defaultKeyName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        let host = gethostname(&buf, buf.count - 1) == 0
            ? String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        let cleaned = host.unicodeScalars.filter { $0.isASCII && $0 != "+" && $0.value > 0x20 && $0.value < 0x7F }
        return cleaned.isEmpty ? "custos" : "custos/" + String(String.UnicodeScalarView(cleaned))
    }

    /// The state folder's signer, creating the audit folder, a fresh key (mode 0600) and its
    /// verifier key file when there is none yet. `name` only applies to a new key.
    public static func loadOrCreateSigner(state: String, name: String? = nil) throws(AuditError) -> NoteSigner {
        try FileSystem.makeDirectory(state)
        let dir = logDirectory(state: state)
        try FileSystem.makeDirectory(dir)
        let keyPath = signingKeyPath(state: state)
        let verifierPath = verifierKeyPath(state: state)
        if FileSystem.exists(keyPath) {
            let key = try Ed25519PrivateKey.load(from: keyPath)
            if FileSystem.exists(verifierPath) {
                let stored = try readVerifierKey(path: verifierPath)
                guard stored.publicKey == key.publicKey else {
                    throw .key("\(verifierPath) does not belong to \(keyPath): restore the matching pair")
                }
                return try NoteSigner(name: stored.name, privateKey: key)
            }
            // A crash between storing the seed and writing the verifier key: finish the pair.
            let signer = try NoteSigner(name: name ?? defaultKeyName(), privateKey: key)
            try writeVerifierKey(signer.verifierKey, path: verifierPath)
            return signer
        }
        let signer = try NoteSigner(name: name ?? defaultKeyName(), privateKey: Ed25519PrivateKey.generate())
        try signer.privateKey.store(to: keyPath)
        try writeVerifierKey(signer.verifierKey, path: verifierPath)
        return signer
    }

    /// The signer of an existing state folder; never creates anything.
    public static func loadSigner(state: String) throws(AuditError) -> NoteSigner {
        let keyPath = signingKeyPath(state: state)
        guard FileSystem.exists(keyPath) else {
            throw .key("no signing key at \(keyPath): the daemon creates one on its first start with --state \(state)")
        }
        let key = try Ed25519PrivateKey.load(from: keyPath)
        let stored = try readVerifierKey(path: verifierKeyPath(state: state))
        guard stored.publicKey == key.publicKey else {
            throw .key("\(verifierKeyPath(state: state)) does not belong to \(keyPath): restore the matching pair")
        }
        return try NoteSigner(name: stored.name, privateKey: key)
    }

    /// Visits each whole entry's stored canonical JSON in log order, up to `limit` entries: the
    /// fast path for dumping a log without parsing it. Throws when the scan meets damaged bytes.
    public static func forEachRecord(logDirectory dir: String, limit: Int? = nil,
                                     _ body: (UnsafeRawBufferPointer) -> Void) throws(AuditError) {
        var seen = 0
        let summary = try LogReader.scan(dir) { _, payload in
            if let limit, seen >= limit { return false }
            body(payload)
            seen += 1
            return true
        }
        switch summary.issue {
        case .corrupt(let name, let offset, _, let reason)?:
            throw .corruptLog(path: dir + "/" + name, offset: offset, reason: reason)
        case .segmentGap(let name, let expected, let found)?:
            throw .corruptLog(path: dir + "/" + name, offset: 0, reason: "segment starts at entry \(found) but \(expected) entries precede it")
        case nil:
            break
        }
    }

    /// The newest signed checkpoint note in the log folder (of `checkpoint.head` and
    /// `checkpoints.log`), as written (nil when none yet). Not verified here: it is what an
    /// operator copies off the machine as an anchor.
    public static func latestCheckpointNote(logDirectory dir: String) throws(AuditError) -> String? {
        try LogReader.newestCheckpoint(dir)?.note
    }

    /// Reads a verifier key line from a file (surrounding whitespace ignored).
    public static func readVerifierKey(path: String) throws(AuditError) -> NoteVerifierKey {
        guard FileSystem.exists(path) else { throw .key("no verifier key file at \(path)") }
        let bytes = try FileSystem.readAll(path)
        guard bytes.count <= 4096 else { throw .key("\(path) is too large to be a verifier key line") }
        let text = String(decoding: bytes, as: UTF8.self)
            .trimmingPrefixAndSuffix { $0 == " " || $0 == "\n" || $0 == "\r" || $0 == "\t" }
        do {
            return try NoteVerifierKey(parsing: text)
        } catch {
            throw .key("\(path): \(error.description)")
        }
    }

    /// Writes the public line through a temporary file and a rename, so a crash leaves either
    /// no file or a whole one.
    private static func writeVerifierKey(_ key: NoteVerifierKey, path: String) throws(AuditError) {
        let tmp = path + ".tmp"
        _ = unlink(tmp)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw .io(operation: "create", path: tmp, errno: errno) }
        let line = Array((key.text + "\n").utf8)
        let failure = line.withUnsafeBytes { raw -> AuditError? in
            do throws(AuditError) { try FileSystem.writeAll(fd, raw, path: tmp); return nil } catch { return error }
        }
        if let failure {
            close(fd)
            throw failure
        }
        let synced = fsync(fd) == 0
        let err = errno
        close(fd)
        guard synced else { throw .io(operation: "fsync", path: tmp, errno: err) }
        guard rename(tmp, path) == 0 else { throw .io(operation: "rename to \(path)", path: tmp, errno: errno) }
        try FileSystem.syncDirectory(containing: path)
    }
}

private extension String {
    func trimmingPrefixAndSuffix(_ isSpace: (Character) -> Bool) -> String {
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
