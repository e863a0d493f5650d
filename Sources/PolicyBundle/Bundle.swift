import AuditLog
import CustosJSON
#if canImport(Glibc)
import Glibc
#endif

/// One approver's Ed25519 signature over a bundle's manifest.
public struct BundleSignature: Sendable, Equatable {
    /// The signer's key id (`ApproverKey.id(of:)`).
    public var key: String
    /// 64 bytes (RFC 8032).
    public var signature: [UInt8]
    public init(key: String, signature: [UInt8]) { self.key = key; self.signature = signature }
}

/// A policy bundle: one file holding a policies folder's files, the manifest that describes
/// them and the approvers' signatures (docs/change-control.md).
///
/// The file is a ustar archive (see `Tar`) of exactly, in this order:
///
///     manifest.json            the canonical manifest: what every signature covers
///     policies/NAME ...        each file the manifest lists, in its order, and nothing else
///     signatures.json          {"signatures":[{"key":"sha256:…","signature":"base64"}]}, outside the signed bytes
///
/// A signature is Ed25519 over `signingPrefix` followed by the whole manifest, so it covers the
/// sequence, the revision, the author, the reason, the ticket and, through each file's SHA-256,
/// every byte of every file. Reading a bundle is reading attacker input: sizes and counts are
/// bounded, and every deviation from the one layout is refused.
public struct PolicyBundle: Sendable {
    public static let maxBytes = 64 << 20
    public static let maxFiles = 4096
    public static let maxManifestBytes = 1 << 20
    public static let maxSignaturesBytes = 64 << 10
    public static let maxSignatures = 64
    static let manifestName = "manifest.json"
    static let signaturesName = "signatures.json"
    public static let filePrefix = "policies/"
    /// Domain separation: a signature made for a bundle can never be taken for one over an
    /// audit checkpoint or any other message the same key signs.
    public static let signingPrefix = Array("custos-policy-bundle-v1\n".utf8)

    public private(set) var manifestBytes: [UInt8]
    public private(set) var manifest: BundleManifest
    /// The policy files, in the manifest's order (byte order of their names).
    public private(set) var files: [(name: String, contents: [UInt8])]
    /// At most one per key, in byte order of the key ids.
    public private(set) var signatures: [BundleSignature]

    /// Lowercase hex SHA-256 of the manifest bytes: names exactly what was approved.
    public var manifestSHA256: String { SHA256Digest.hash(manifestBytes).hex }

    /// A new, unsigned bundle of `files` (names as the folder has them) described by `manifest`
    /// (whose `files` are filled in here).
    public init(files: [(name: String, contents: [UInt8])], sequence: UInt64, revision: String,
                author: BundleManifest.Author, changeReason: String, changeTicket: String, created: String,
                rollbackOf: UInt64? = nil) throws(BundleError) {
        let sorted = files.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        guard sorted.count <= Self.maxFiles else { throw .tooLarge("\(sorted.count) files; a bundle holds at most \(Self.maxFiles)") }
        for (i, f) in sorted.enumerated() {
            try BundleFiles.checkName(f.name, path: f.name)
            if i > 0, sorted[i - 1].name.utf8.elementsEqual(f.name.utf8) { throw .files("\(f.name) appears twice") }
        }
        guard (1...BundleManifest.maxSequence).contains(sequence) else {
            throw .manifest("the sequence must be a whole number from 1 to \(BundleManifest.maxSequence)")
        }
        if let r = rollbackOf, r >= sequence { throw .manifest("rollback_of \(r) must be below the bundle's own sequence \(sequence)") }
        for (what, text, max) in [("author name", author.name, BundleManifest.maxShortTextBytes),
                                  ("change reason", changeReason, BundleManifest.maxReasonBytes),
                                  ("change ticket", changeTicket, BundleManifest.maxShortTextBytes)] {
            if let p = BundleManifest.textProblem(text, max: max) { throw .manifest("the \(what) \(p)") }
        }
        guard BundleManifest.isUTCSeconds(created) else { throw .manifest("created: expected UTC time YYYY-MM-DDTHH:MM:SSZ, got \"\(created)\"") }
        let m = BundleManifest(sequence: sequence, revision: revision, author: author, changeReason: changeReason,
                               changeTicket: changeTicket, created: created, rollbackOf: rollbackOf,
                               files: sorted.map { BundleManifest.File(name: $0.name, sha256: SHA256Digest.hash($0.contents).hex,
                                                                       size: UInt64($0.contents.count)) })
        manifest = m
        manifestBytes = m.canonicalBytes()
        self.files = sorted
        signatures = []
        guard serialized().count <= Self.maxBytes else { throw .tooLarge("the bundle would exceed \(Self.maxBytes) bytes") }
    }

    /// Reads a bundle's bytes: the layout, the manifest, and every file against it (names,
    /// sizes, SHA-256). Signatures are read but not checked: see `verify(trust:)`.
    public init(bytes: [UInt8]) throws(BundleError) {
        guard bytes.count <= Self.maxBytes else { throw .tooLarge("\(bytes.count) bytes; a bundle is at most \(Self.maxBytes)") }
        let members = try Tar.read(bytes, maxMembers: Self.maxFiles + 2)
        guard let first = members.first, first.name.utf8.elementsEqual(Self.manifestName.utf8) else {
            throw .malformed("the first entry must be \(Self.manifestName)")
        }
        guard first.contents.count <= Self.maxManifestBytes else { throw .tooLarge("\(Self.manifestName) exceeds \(Self.maxManifestBytes) bytes") }
        let m = try BundleManifest.parse(first.contents)
        var rest = members.dropFirst()
        var sigs: [BundleSignature] = []
        if let last = rest.last, last.name.utf8.elementsEqual(Self.signaturesName.utf8) {
            sigs = try Self.parseSignatures(last.contents)
            rest = rest.dropLast()
        }
        // Names first, so a missing or extra file is reported as such rather than as a mismatch.
        let prefix = Array(Self.filePrefix.utf8)
        var held: [String] = []
        for member in rest {
            guard member.name.utf8.starts(with: prefix) else {
                if member.name.utf8.elementsEqual(Self.manifestName.utf8) || member.name.utf8.elementsEqual(Self.signaturesName.utf8) {
                    throw .malformed("\(member.name) appears twice or out of place (manifest.json first, signatures.json last)")
                }
                throw .files("extra entry \(member.name): a bundle holds manifest.json, policies/NAME files and signatures.json only")
            }
            held.append(String(decoding: member.name.utf8.dropFirst(prefix.count), as: UTF8.self))
        }
        for (i, h) in held.enumerated() where held[..<i].contains(where: { $0.utf8.elementsEqual(h.utf8) }) {
            throw .files("\(h) appears twice in the archive")
        }
        let listed = m.files.map(\.name)
        for h in held where !listed.contains(where: { $0.utf8.elementsEqual(h.utf8) }) {
            throw .files("extra file \(h): in the archive but not in the manifest (the approvals do not cover it)")
        }
        for l in listed where !held.contains(where: { $0.utf8.elementsEqual(l.utf8) }) {
            throw .files("missing file \(l): the manifest lists it but the archive does not hold it")
        }
        guard held.elementsEqual(listed, by: { $0.utf8.elementsEqual($1.utf8) }) else {
            throw .malformed("files are not in the manifest's order (byte order of their names)")
        }
        var files: [(String, [UInt8])] = []
        for (entry, member) in zip(m.files, rest) {
            guard UInt64(member.contents.count) == entry.size, SHA256Digest.hash(member.contents).hex == entry.sha256 else {
                throw .files("\(entry.name) does not match the manifest (its SHA-256 is \(SHA256Digest.hash(member.contents).hex), the manifest says \(entry.sha256)): it changed after the manifest was made")
            }
            files.append((entry.name, member.contents))
        }
        manifestBytes = first.contents
        manifest = m
        self.files = files
        signatures = sigs
    }

    /// Reads the bundle at `path` (a regular file, not followed through a link, at most
    /// `maxBytes`), as `init(bytes:)`.
    public static func read(path: String) throws(BundleError) -> PolicyBundle {
        try PolicyBundle(bytes: readFile(path, limit: maxBytes))
    }

    /// The archive's bytes.
    public func serialized() -> [UInt8] {
        var members = [Tar.Member(name: Self.manifestName, contents: manifestBytes)]
        for f in files { members.append(Tar.Member(name: Self.filePrefix + f.name, contents: f.contents)) }
        if !signatures.isEmpty { members.append(Tar.Member(name: Self.signaturesName, contents: Self.signaturesJSON(signatures))) }
        return Tar.write(members)
    }

    /// The message an approver signs: `signingPrefix` followed by the whole manifest.
    public var signedMessage: [UInt8] { Self.signingPrefix + manifestBytes }

    /// Adds (or replaces) the signature of `key` over this manifest.
    public mutating func sign(with key: Ed25519PrivateKey) throws(BundleError) {
        let sig: [UInt8]
        do { sig = try key.sign(signedMessage) } catch { throw .key(error.description) }
        let id = ApproverKey.id(of: key.publicKey)
        signatures.removeAll { $0.key == id }
        guard signatures.count < Self.maxSignatures else { throw .tooLarge("a bundle holds at most \(Self.maxSignatures) signatures") }
        signatures.append(BundleSignature(key: id, signature: sig))
        signatures.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
    }

    /// `{"signatures":[{"key","signature"}]}`, canonical.
    static func signaturesJSON(_ sigs: [BundleSignature]) -> [UInt8] {
        var w = JSONWriter(capacity: 64 + sigs.count * 180)
        w.value(.object(JSONObject([.init(key: "signatures", value: .array(sigs.map { s in
            .object(JSONObject([.init(key: "key", value: .string(s.key)),
                                .init(key: "signature", value: .string(Base64.encode(s.signature)))]))
        }))])))
        return w.bytes
    }

    static func parseSignatures(_ bytes: [UInt8]) throws(BundleError) -> [BundleSignature] {
        guard bytes.count <= maxSignaturesBytes else { throw .tooLarge("\(signaturesName) exceeds \(maxSignaturesBytes) bytes") }
        let json: JSON
        do { json = try JSON.parse(bytes) } catch {
            throw .manifest("\(signaturesName):\(error.line):\(error.column): invalid JSON: \(error.redactedMessage)")
        }
        guard case .object(let o) = json, o.count == 1, case .array(let items)? = o["signatures"] else {
            throw .manifest("\(signaturesName): expected {\"signatures\": [{\"key\", \"signature\"}, ...]} and nothing else")
        }
        guard items.count <= maxSignatures else { throw .tooLarge("more than \(maxSignatures) signatures") }
        var out: [BundleSignature] = []
        for (i, item) in items.enumerated() {
            let p = "\(signaturesName): $.signatures[\(i)]"
            guard case .object(let s) = item, s.count == 2, case .string(let key)? = s["key"], case .string(let b64)? = s["signature"] else {
                throw .manifest("\(p): expected {\"key\", \"signature\"} and nothing else")
            }
            guard BundleManifest.isKeyID(key) else { throw .manifest("\(p).key: expected sha256: and 64 lowercase hex digits") }
            guard let sig = Base64.decode(b64), sig.count == 64 else { throw .manifest("\(p).signature: expected base64 of 64 bytes") }
            guard !out.contains(where: { $0.key == key }) else { throw .manifest("\(p).key: \(key) signed twice") }
            out.append(BundleSignature(key: key, signature: sig))
        }
        return out
    }

    /// The manifest alone, read from the head of the file without reading the files: what the
    /// daemon reads of every bundle in its folder to find the newest. Nothing here is trusted
    /// until `read(path:)` and `verify(trust:)` have passed.
    public static func peekManifest(path: String) throws(BundleError) -> (manifest: BundleManifest, sha256: String) {
        let head = try readFile(path, limit: Tar.block + maxManifestBytes, truncate: true)
        guard head.count >= Tar.block else { throw .malformed("shorter than one archive header") }
        let name = String(decoding: head[0..<100].prefix(while: { $0 != 0 }), as: UTF8.self)
        guard name.utf8.elementsEqual(manifestName.utf8), head[156] == UInt8(ascii: "0") else {
            throw .malformed("the first entry must be \(manifestName)")
        }
        var size = 0
        for b in head[124..<135] {
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "7") else { throw .malformed("\(manifestName): the size field is not octal") }
            size = size * 8 + Int(b - UInt8(ascii: "0"))
            guard size <= maxManifestBytes else { throw .tooLarge("\(manifestName) exceeds \(maxManifestBytes) bytes") }
        }
        guard Array(head[0..<Tar.block]) == Tar.header(name: manifestName, size: size) else {
            throw .malformed("\(manifestName): not a header custos writes; rebuild the bundle with custos bundle build")
        }
        guard head.count >= Tar.block + size else { throw .malformed("the archive ends inside \(manifestName)") }
        let bytes = Array(head[Tar.block..<(Tar.block + size)])
        return (try BundleManifest.parse(bytes), SHA256Digest.hash(bytes).hex)
    }

    /// Reads a regular file (never through a link, never a FIFO) of at most `limit` bytes; with
    /// `truncate`, its first `limit` bytes.
    static func readFile(_ path: String, limit: Int, truncate: Bool = false) throws(BundleError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else {
            let e = errno
            if e == ELOOP { throw .io("\(path): is a symbolic link; bundles are read as regular files only") }
            throw .io("\(path): cannot be read (\(String(cString: strerror(e))))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { throw .io("\(path): is not a regular file") }
        if !truncate, Int(st.st_size) > limit { throw .tooLarge("\(path) is \(st.st_size) bytes; a bundle is at most \(limit)") }
        var out: [UInt8] = []
        out.reserveCapacity(min(Int(st.st_size), limit))
        var buf = [UInt8](repeating: 0, count: 65536)
        while out.count < limit {
            let want = min(buf.count, limit - out.count)
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, want) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io("\(path): cannot be read (\(String(cString: strerror(errno))))")
            }
            if n == 0 { return out }
            out.append(contentsOf: buf[0..<n])
        }
        if !truncate {
            // Grew past the limit while being read.
            var one: UInt8 = 0
            if Glibc.read(fd, &one, 1) == 1 { throw .tooLarge("\(path) exceeds \(limit) bytes") }
        }
        return out
    }

    /// Writes `bytes` to `path` durably and atomically: a temporary file beside it, fsync,
    /// rename over `path` (refused when `path` exists and `replace` is false), fsync the folder.
    public static func writeFile(_ bytes: [UInt8], to path: String, replace: Bool) throws(BundleError) {
        if !replace, access(path, F_OK) == 0 { throw .io("\(path) exists; choose another name (bundles are never overwritten)") }
        let slash = path.utf8.lastIndex(of: UInt8(ascii: "/"))
        let dir = slash.map { String(path.utf8[..<$0])! } ?? "."
        let base = slash.map { String(path.utf8[path.utf8.index(after: $0)...])! } ?? path
        let tmp = (dir.isEmpty ? "" : dir + "/") + "." + base + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw .io("\(tmp): cannot be created (\(String(cString: strerror(errno))))") }
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            off += n
        }
        let ok = off == bytes.count && fsync(fd) == 0
        close(fd)
        guard ok else { unlink(tmp); throw .io("\(tmp): cannot be written") }
        if !replace {
            // link(2) fails when the name exists: no window in which another file is replaced.
            guard link(tmp, path) == 0 else { let e = errno; unlink(tmp); throw .io("\(path): cannot be created (\(String(cString: strerror(e))))") }
            unlink(tmp)
        } else {
            guard rename(tmp, path) == 0 else { let e = errno; unlink(tmp); throw .io("\(path): cannot be replaced (\(String(cString: strerror(e))))") }
        }
        let dfd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }
}
