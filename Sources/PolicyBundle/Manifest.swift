import AuditLog
import CustosJSON

/// `manifest.json`: what a bundle holds and why, in canonical JSON (members sorted by their
/// UTF-8 bytes at every depth, no whitespace, integers in plain decimal), so one manifest has
/// one byte string and a signature over those bytes covers every member. No member is
/// optional except `rollback_of`, and a reader refuses unknown and duplicated members and any
/// spelling other than the canonical one.
///
///     {"author":{"key":"sha256:…","name":"Alice Author"},"change_reason":"…","change_ticket":"CC-2026-014",
///      "created":"2026-06-01T12:00:00Z","files":[{"name":"10-data-scientists.cedar","sha256":"…","size":1234},…],
///      "format":1,"revision":"sha256:…","sequence":7}
public struct BundleManifest: Sendable, Equatable {
    public static let format: Int64 = 1
    /// Sequence numbers stay below 2^53 so every JSON reader reads them exactly.
    public static let maxSequence: UInt64 = (1 << 53) - 1
    public static let maxReasonBytes = 1024
    public static let maxShortTextBytes = 256

    public struct Author: Sendable, Equatable {
        /// The author's key id (`sha256:` and the hex SHA-256 of the raw Ed25519 public key).
        public var key: String
        /// The name the author gave; `approvers.json` names the key with authority.
        public var name: String
        public init(key: String, name: String) { self.key = key; self.name = name }
    }

    public struct File: Sendable, Equatable {
        /// As the folder names it: `10-a.cedar`, `guardrails/regions.json`.
        public var name: String
        /// Lowercase hex SHA-256 of the contents.
        public var sha256: String
        public var size: UInt64
        public init(name: String, sha256: String, size: UInt64) { self.name = name; self.sha256 = sha256; self.size = size }
    }

    /// Strictly increasing from one approved bundle to the next; the daemon never activates a
    /// lower one than it serves.
    public var sequence: UInt64
    /// The policy revision of the files, exactly as the daemon computes it for a folder.
    public var revision: String
    public var author: Author
    public var changeReason: String
    public var changeTicket: String
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    public var created: String
    /// For a rollback: the sequence of the bundle whose change this one undoes (its files are
    /// an earlier state); it still needs a higher sequence and its own approvals.
    public var rollbackOf: UInt64?
    /// In byte order of the names.
    public var files: [File]

    public init(sequence: UInt64, revision: String, author: Author, changeReason: String, changeTicket: String,
                created: String, rollbackOf: UInt64? = nil, files: [File]) {
        self.sequence = sequence; self.revision = revision; self.author = author
        self.changeReason = changeReason; self.changeTicket = changeTicket; self.created = created
        self.rollbackOf = rollbackOf
        self.files = files.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    }

    static let keys = ["author", "change_reason", "change_ticket", "created", "files", "format", "revision",
                       "rollback_of", "sequence"]

    /// The canonical bytes: what every signature covers.
    public func canonicalBytes() -> [UInt8] {
        var members: [JSONObject.Member] = [
            .init(key: "author", value: .object(JSONObject([
                .init(key: "key", value: .string(author.key)), .init(key: "name", value: .string(author.name))]))),
            .init(key: "change_reason", value: .string(changeReason)),
            .init(key: "change_ticket", value: .string(changeTicket)),
            .init(key: "created", value: .string(created)),
            .init(key: "files", value: .array(files.map { f in
                .object(JSONObject([.init(key: "name", value: .string(f.name)), .init(key: "sha256", value: .string(f.sha256)),
                                    .init(key: "size", value: .int(Int64(f.size)))]))
            })),
            .init(key: "format", value: .int(Self.format)),
            .init(key: "revision", value: .string(revision)),
        ]
        if let r = rollbackOf { members.append(.init(key: "rollback_of", value: .int(Int64(r)))) }
        members.append(.init(key: "sequence", value: .int(Int64(sequence))))
        var w = JSONWriter(capacity: 512 + files.count * 128)
        w.value(.object(JSONObject(members)))
        return w.bytes
    }

    /// Reads `manifest.json`: every member present with its type and within its bounds, no
    /// other member (a duplicated one is refused by the JSON reader), and the bytes exactly the
    /// canonical ones, so nothing outside what the signatures cover can change its meaning.
    public static func parse(_ bytes: [UInt8]) throws(BundleError) -> BundleManifest {
        let json: JSON
        do { json = try JSON.parse(bytes) } catch {
            throw .manifest("manifest.json:\(error.line):\(error.column): invalid JSON: \(error.redactedMessage)")
        }
        guard case .object(let o) = json else { throw .manifest("$: expected an object") }
        for k in o.keys where !keys.contains(where: { $0.utf8.elementsEqual(k.utf8) }) {
            throw .manifest("$.\(k): unknown key (a manifest has \(keys.joined(separator: ", ")))")
        }
        guard o["format"] == .int(format) else {
            throw .manifest("$.format: expected \(format) (this custos reads bundles of format \(format))")
        }
        let sequence = try positive(o["sequence"], "$.sequence")
        var rollbackOf: UInt64? = nil
        if let r = o["rollback_of"] {
            let v = try positive(r, "$.rollback_of")
            guard v < sequence else { throw .manifest("$.rollback_of: \(v) must be below the bundle's own sequence \(sequence)") }
            rollbackOf = v
        }
        let revision = try string(o["revision"], "$.revision", max: 71)
        guard revision.utf8.count == 71, revision.hasPrefix("sha256:"), isHex(revision.utf8.dropFirst(7)) else {
            throw .manifest("$.revision: expected sha256: and 64 lowercase hex digits")
        }
        guard case .object(let a)? = o["author"] else { throw .manifest("$.author: expected {\"key\", \"name\"}") }
        for k in a.keys where !(k == "key" || k == "name") { throw .manifest("$.author.\(k): unknown key (author has key and name)") }
        let authorKey = try string(a["key"], "$.author.key", max: 71)
        guard isKeyID(authorKey) else { throw .manifest("$.author.key: expected a key id, sha256: and 64 lowercase hex digits") }
        let author = Author(key: authorKey, name: try text(a["name"], "$.author.name", max: maxShortTextBytes))
        let reason = try text(o["change_reason"], "$.change_reason", max: maxReasonBytes)
        let ticket = try text(o["change_ticket"], "$.change_ticket", max: maxShortTextBytes)
        let created = try string(o["created"], "$.created", max: 20)
        guard isUTCSeconds(created) else { throw .manifest("$.created: expected UTC time YYYY-MM-DDTHH:MM:SSZ, got \"\(created)\"") }
        guard case .array(let items)? = o["files"] else { throw .manifest("$.files: expected an array of {name, sha256, size}") }
        var files: [File] = []
        for (i, item) in items.enumerated() {
            let p = "$.files[\(i)]"
            guard case .object(let f) = item else { throw .manifest("\(p): expected {name, sha256, size}") }
            for k in f.keys where !(k == "name" || k == "sha256" || k == "size") {
                throw .manifest("\(p).\(k): unknown key (a file has name, sha256 and size)")
            }
            let name = try string(f["name"], "\(p).name", max: BundleFiles.maxNameBytes)
            try BundleFiles.checkName(name, path: "\(p).name")
            let sha = try string(f["sha256"], "\(p).sha256", max: 64)
            guard sha.utf8.count == 64, isHex(sha.utf8[...]) else { throw .manifest("\(p).sha256: expected 64 lowercase hex digits") }
            guard case .int(let size)? = f["size"], size >= 0 else { throw .manifest("\(p).size: expected a byte count") }
            if let last = files.last, !last.name.utf8.lexicographicallyPrecedes(name.utf8) {
                throw .manifest("\(p).name: \(name) is not after \(last.name) (files are listed once each, in byte order of their names)")
            }
            files.append(File(name: name, sha256: sha, size: UInt64(size)))
        }
        let m = BundleManifest(sequence: sequence, revision: revision, author: author, changeReason: reason,
                               changeTicket: ticket, created: created, rollbackOf: rollbackOf, files: files)
        guard m.canonicalBytes() == bytes else {
            throw .manifest("not in canonical form (members sorted, no whitespace, as custos bundle build writes it); a signature covers exact bytes, so rebuild rather than edit")
        }
        return m
    }

    private static func positive(_ v: JSON?, _ path: String) throws(BundleError) -> UInt64 {
        guard case .int(let i)? = v, i >= 1, UInt64(i) <= maxSequence else {
            throw .manifest("\(path): expected a whole number from 1 to \(maxSequence)")
        }
        return UInt64(i)
    }

    private static func string(_ v: JSON?, _ path: String, max: Int) throws(BundleError) -> String {
        guard case .string(let s)? = v else { throw .manifest("\(path): expected a string") }
        guard s.utf8.count <= max else { throw .manifest("\(path): longer than \(max) bytes") }
        return s
    }

    /// Free text that reaches the audit log and one-line logs: not blank, no control characters.
    static func text(_ v: JSON?, _ path: String, max: Int) throws(BundleError) -> String {
        let s = try string(v, path, max: max)
        if let problem = textProblem(s, max: max) { throw .manifest("\(path): \(problem)") }
        return s
    }

    /// Why `s` cannot be a manifest's free text, or nil.
    public static func textProblem(_ s: String, max: Int) -> String? {
        if s.utf8.count > max { return "longer than \(max) bytes" }
        if s.unicodeScalars.allSatisfy({ $0.properties.isWhitespace }) { return "is empty" }
        if s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return "holds a control character (it is written into the audit log and one-line logs; keep it on one line)"
        }
        return nil
    }

    static func isHex<C: Collection>(_ s: C) -> Bool where C.Element == UInt8 {
        s.allSatisfy { ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f")) }
    }

    static func isKeyID(_ s: String) -> Bool {
        s.utf8.count == 71 && s.hasPrefix("sha256:") && isHex(s.utf8.dropFirst(7))
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` with plausible fields.
    public static func isUTCSeconds(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard u.count == 20 else { return false }
        let pattern = Array("dddd-dd-ddTdd:dd:ddZ".utf8)
        for (c, p) in zip(u, pattern) {
            if p == UInt8(ascii: "d") { guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return false } } else if c != p { return false }
        }
        func n(_ r: Range<Int>) -> Int { u[r].reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) } }
        return (1...12).contains(n(5..<7)) && (1...31).contains(n(8..<10)) && n(11..<13) < 24 && n(14..<16) < 60 && n(17..<19) < 60
    }
}

/// Rules for the names of a bundle's policy files.
public enum BundleFiles {
    /// The archive stores a file as `policies/NAME` in a 100-byte name field.
    public static let maxNameBytes = Tar.maxNameBytes - PolicyBundle.filePrefix.utf8.count

    /// A relative name of non-empty components, none `.` or `..`, no control characters.
    /// Which names a policies folder may hold is the daemon's rule (`PolicyFolder`), applied
    /// when the files are loaded.
    public static func checkName(_ name: String, path: String) throws(BundleError) {
        guard !name.isEmpty, name.utf8.count <= maxNameBytes else {
            throw .manifest("\(path): a file name is 1 to \(maxNameBytes) bytes")
        }
        guard !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw .manifest("\(path): \(name) holds a control character")
        }
        for c in name.split(separator: "/", omittingEmptySubsequences: false) {
            guard !c.isEmpty, c != ".", c != ".." else {
                throw .manifest("\(path): \(name) is not a plain relative path (empty, . or .. component, or a leading /)")
            }
        }
    }
}
