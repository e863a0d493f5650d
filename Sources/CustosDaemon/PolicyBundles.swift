import CustosJSON
import Foundation
import Glibc
import Guardrails
import PolicyBundle

/// A key holder named by `approvers.json`, as a decision's audit trail shows them.
public struct BundleSigner: Sendable, Equatable {
    public var name: String
    public var key: String
    public var roles: [String]

    init(_ k: ApproverKey) { name = k.name; key = k.id; roles = k.roles }

    public var label: String { roles.isEmpty ? "\(name) (\(key))" : "\(name) (\(key)) [\(roles.joined(separator: ", "))]" }

    public var json: JSON {
        .object(JSONObject([.init(key: "name", value: .string(name)), .init(key: "key", value: .string(key)),
                            .init(key: "roles", value: .array(roles.map { .string($0) }))]))
    }
}

/// The bundle a snapshot was activated from: what it is, who wrote and who approved it.
public struct ActiveBundle: Sendable, Equatable {
    /// The file's name in the bundles folder.
    public var file: String
    public var sequence: UInt64
    /// Hex SHA-256 of the manifest: names exactly what was approved.
    public var manifestSHA256: String
    public var author: BundleSigner
    public var approvers: [BundleSigner]
    public var changeTicket: String
    public var changeReason: String
    public var created: String
    public var rollbackOf: UInt64?
    /// Hex SHA-256 of the approvers file that approved it.
    public var trustSHA256: String

    public var json: JSON {
        .object(JSONObject([
            .init(key: "file", value: .string(file)),
            .init(key: "sequence", value: .int(Int64(sequence))),
            .init(key: "manifest_sha256", value: .string(manifestSHA256)),
            .init(key: "author", value: author.json),
            .init(key: "approvers", value: .array(approvers.map(\.json))),
            .init(key: "change_ticket", value: .string(changeTicket)),
            .init(key: "change_reason", value: .string(changeReason)),
            .init(key: "created", value: .string(created)),
            .init(key: "rollback_of", value: rollbackOf.map { .int(Int64($0)) } ?? .null),
            .init(key: "approvers_sha256", value: .string(trustSHA256)),
        ]))
    }
}

/// A bundle of the bundles folder that a reload refused, and why.
public struct BundleRejection: Sendable, Equatable {
    public var file: String
    /// Its sequence, when its manifest could be read.
    public var sequence: UInt64?
    public var reason: String

    public init(file: String, sequence: UInt64?, reason: String) {
        self.file = file; self.sequence = sequence; self.reason = reason
    }

    public var json: JSON {
        .object(JSONObject([.init(key: "file", value: .string(file)),
                            .init(key: "sequence", value: sequence.map { .int(Int64($0)) } ?? .null),
                            .init(key: "reason", value: .string(reason))]))
    }
}

/// Loading a bundle's files through the folder's own code path.
public enum PolicyBundles {
    /// Reads a bundle file (layout, manifest, every file against it), as a load error.
    public static func read(path: String) throws(PolicyStoreError) -> PolicyBundle {
        do { return try PolicyBundle.read(path: path) } catch { throw PolicyStoreError("\(path): \(error.description)") }
    }

    /// The bundle's files loaded exactly as a folder holding them would be (the recognised
    /// entries, parsing, schema validation, the guardrail switch-off rule), named under
    /// `shown`; the revision must be the one the manifest gives, or the load fails.
    public static func load(_ bundle: PolicyBundle, shown: String, inService: [String]? = nil,
                            activation: ActiveBundle? = nil) throws(PolicyStoreError) -> PolicySnapshot {
        let files = bundle.files.map { PolicyStore.File(name: $0.name, contents: $0.contents) }
        let contents = try PolicyFolder.contents(bundleFiles: files, shown: shown)
        let s = try PolicyStore.load(contents: contents, shown: shown, inService: inService, bundle: activation)
        guard s.revision == bundle.manifest.revision else {
            throw PolicyStoreError("\(shown): the files' revision is \(s.revision) but the manifest says \(bundle.manifest.revision); rebuild the bundle with custos bundle build")
        }
        return s
    }

    /// The folder's files as a bundle holds them: every file the revision covers, named as
    /// the revision names them (`guardrails/regions.json`).
    public static func files(of contents: PolicyFolder.Contents) -> [(name: String, contents: [UInt8])] {
        contents.topLevel.map { ($0.name, $0.contents) }
            + contents.guardrails.map { (GuardrailConfig.folderName + "/" + $0.name, $0.contents) }
    }
}

/// `custos serve --bundles DIR --trust FILE`: the bundles the daemon may serve, and the
/// approvers file that says which of them are approved.
///
/// A reload reads the manifest at the head of every `*.bundle` file of the folder (hidden
/// names and other files are not read), then, newest sequence first, fully reads, verifies
/// and loads the bundles newer than the one in service, and puts the first that passes in
/// service. Older bundles are superseded and ignored. Refused: a bundle that does not verify or
/// load (each named, with its reason), one that claims the sequence in service with another
/// manifest, and a reload that would go back, because the bundle in service is no longer in
/// the folder and nothing newer verifies. The one in service is kept whenever a reload fails.
///
/// The bundle in service is recorded in the state folder (`BundleRecord`) before it serves,
/// so a restart cannot go back either: a start activates only that bundle (re-verified against
/// the approvers file as it is then) or a newer one.
public struct BundleFolder: Sendable {
    public let directory: String
    public let trustPath: String
    /// Nil without a state folder (then only the running daemon holds the line).
    public let record: BundleRecord?
    public static let suffix = ".bundle"
    /// Bundle files one reload reads the head of; beyond it the reload fails, naming the count.
    public static let maxBundles = 1000

    public init(directory: String, trustPath: String, stateDirectory: String?) {
        self.directory = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
        self.trustPath = trustPath
        record = stateDirectory.map { BundleRecord(stateDirectory: $0) }
    }

    /// The `*.bundle` names of the folder, in byte order.
    func list() throws(PolicyStoreError) -> [String] {
        guard let d = opendir(directory) else {
            throw PolicyStoreError("\(directory): cannot list the bundles folder (\(String(cString: strerror(errno))))")
        }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let bytes = withUnsafeBytes(of: e.pointee.d_name) { Array($0.prefix(while: { $0 != 0 })) }
            guard bytes.first != UInt8(ascii: "."), bytes.count > Self.suffix.utf8.count,
                  bytes.reversed().starts(with: Self.suffix.utf8.reversed()),
                  let name = String(validating: bytes, as: UTF8.self) else { continue }
            names.append(name)
            guard names.count <= Self.maxBundles else {
                throw PolicyStoreError("\(directory): more than \(Self.maxBundles) bundles; move superseded ones elsewhere")
            }
        }
        return names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    private struct Peeked {
        var file: String
        var manifest: BundleManifest
        var sha256: String
    }

    /// Picks the bundle to serve (see the type's description). `active` is the snapshot in
    /// service; `install` adopts a loaded snapshot for this daemon and records it, and may
    /// refuse it. Returns `active` itself when nothing newer was put in service and nothing
    /// was refused; throws, naming every refusal, when something was.
    func select(active: PolicySnapshot?, inService: [String]?, rejections: inout [BundleRejection],
                install: (PolicySnapshot) throws(PolicyStoreError) -> PolicySnapshot) throws(PolicyStoreError) -> PolicySnapshot {
        let trust: Approvers
        do { trust = try Approvers.read(path: trustPath) } catch { throw PolicyStoreError(error.description) }
        let recorded = try record?.read()
        let floor: (sequence: UInt64, sha: String)? = active?.bundle.map { ($0.sequence, $0.manifestSHA256) }
            ?? recorded.map { ($0.sequence, $0.manifestSHA256) }
        var peeked: [Peeked] = []
        for name in try list() {
            do {
                let (m, sha) = try PolicyBundle.peekManifest(path: directory + "/" + name)
                peeked.append(Peeked(file: name, manifest: m, sha256: sha))
            } catch {
                rejections.append(BundleRejection(file: name, sequence: nil, reason: error.description))
            }
        }
        var candidates: [Peeked] = []
        for p in peeked.sorted(by: { $0.manifest.sequence > $1.manifest.sequence }) {
            let seq = p.manifest.sequence
            if let floor {
                if seq < floor.sequence { continue }  // superseded
                if seq == floor.sequence {
                    if p.sha256 != floor.sha {
                        rejections.append(BundleRejection(file: p.file, sequence: seq, reason: "sequence \(seq) is the bundle in service, with another manifest (\(floor.sha)); a new change needs a higher sequence"))
                    } else if active == nil, !candidates.contains(where: { $0.manifest.sequence == seq }) {
                        // A start: the bundle recorded in service is served again, re-verified.
                        candidates.append(p)
                    }
                    continue
                }
            }
            if candidates.contains(where: { $0.manifest.sequence == seq && $0.sha256 == p.sha256 }) { continue }  // a copy
            candidates.append(p)
        }
        // Highest sequence first; files that claim one sequence with different manifests are
        // weighed only once verified: an unsigned file must not block an approved bundle by
        // claiming its sequence. Two approved manifests for one sequence serve neither.
        var i = 0
        while i < candidates.count {
            let seq = candidates[i].manifest.sequence
            var end = i
            while end < candidates.count && candidates[end].manifest.sequence == seq { end += 1 }
            let group = candidates[i..<end]
            i = end
            var verified: [(peeked: Peeked, bundle: PolicyBundle, approval: Approval)] = []
            for c in group {
                do throws(BundleError) {
                    let bundle = try PolicyBundle.read(path: directory + "/" + c.file)
                    guard bundle.manifestSHA256 == c.sha256 else {
                        throw BundleError.io("the file changed while it was being read; it is read again at the next reload")
                    }
                    verified.append((c, bundle, try bundle.verify(trust: trust)))
                } catch {
                    rejections.append(BundleRejection(file: c.file, sequence: seq, reason: error.description))
                }
            }
            if verified.count > 1 {
                for v in verified {
                    let others = verified.filter { $0.peeked.file != v.peeked.file }.map(\.peeked.file).joined(separator: ", ")
                    rejections.append(BundleRejection(file: v.peeked.file, sequence: seq,
                        reason: "\(others) claims sequence \(seq) too, with another approved manifest; neither is served until one is removed"))
                }
                continue
            }
            guard let (c, bundle, approval) = verified.first else { continue }
            let path = directory + "/" + c.file
            do throws(PolicyStoreError) {
                let m = bundle.manifest
                let activation = ActiveBundle(file: c.file, sequence: m.sequence, manifestSHA256: c.sha256,
                                              author: BundleSigner(approval.author), approvers: approval.approvers.map(BundleSigner.init),
                                              changeTicket: m.changeTicket, changeReason: m.changeReason, created: m.created,
                                              rollbackOf: m.rollbackOf, trustSHA256: trust.sha256)
                let s = try install(PolicyBundles.load(bundle, shown: path, inService: inService, activation: activation))
                try record?.write(activation, revision: s.revision)
                return s
            } catch {
                rejections.append(BundleRejection(file: c.file, sequence: seq, reason: error.message))
            }
        }
        let refusals = rejections.map { "\($0.file)\($0.sequence.map { " (sequence \($0))" } ?? ""): \($0.reason)" }
        if let active, let ab = active.bundle {
            let kept = "keeping sequence \(ab.sequence) (\(ab.file))"
            guard peeked.contains(where: { $0.manifest.sequence == ab.sequence && $0.sha256 == ab.manifestSHA256 }) else {
                let newest = peeked.map(\.manifest.sequence).max()
                throw PolicyStoreError("\(directory): refused: the bundle in service (sequence \(ab.sequence), \(ab.file)) is no longer in the folder and \(newest.map { "the newest there is sequence \($0)" } ?? "no other bundle is there"): going back is a downgrade; \(kept). To return to earlier policies, activate a rollback bundle with a higher sequence (docs/change-control.md)" + (refusals.isEmpty ? "" : "; also refused: " + refusals.joined(separator: "; ")))
            }
            if refusals.isEmpty { return active }
            throw PolicyStoreError("\(directory): refused \(refusals.joined(separator: "; ")); \(kept)")
        }
        if let recorded {
            throw PolicyStoreError("\(directory): the bundle last in service (sequence \(recorded.sequence), \(recorded.file)) is not there or no longer verifies, and no newer one verifies; an older one would be a downgrade, so none is served. Restore it or add a newer approved bundle" + (refusals.isEmpty ? "" : "; refused: " + refusals.joined(separator: "; ")))
        }
        throw PolicyStoreError("\(directory): no approved bundle to serve" + (refusals.isEmpty ? " (no *.bundle file)" : "; refused: " + refusals.joined(separator: "; ")))
    }
}

/// The bundle last put in service, kept in the state folder (`STATE/bundle-in-service.json`,
/// written and fsync'ed before the bundle serves), so a restart can never go back to an older
/// bundle than the daemon has served:
///
///     {"file":"0007.bundle","manifest_sha256":"…","revision":"sha256:…","sequence":7}
public struct BundleRecord: Sendable {
    public static let fileName = "bundle-in-service.json"
    public let path: String

    public struct Entry: Sendable, Equatable {
        public var sequence: UInt64
        public var manifestSHA256: String
        public var file: String
    }

    public init(stateDirectory: String) {
        path = (stateDirectory.hasSuffix("/") ? stateDirectory : stateDirectory + "/") + Self.fileName
    }

    /// Nil when there is none yet. A record that cannot be read fails the load: the line it
    /// holds cannot be guessed.
    public func read() throws(PolicyStoreError) -> Entry? {
        guard access(path, F_OK) == 0 else { return nil }
        let bytes: [UInt8]
        do { bytes = try PolicyBundleFiles.read(path, limit: 1 << 16) } catch {
            throw PolicyStoreError("\(path): \(error.description); compare it with the audit log's bundle activations, then restore or remove it")
        }
        guard let json = try? JSON.parse(bytes), case .int(let seq)? = json["sequence"], seq >= 1,
              case .string(let sha)? = json["manifest_sha256"], case .string(let file)? = json["file"] else {
            throw PolicyStoreError("\(path): damaged (expected {\"file\", \"manifest_sha256\", \"revision\", \"sequence\"}); compare it with the audit log's bundle activations, then restore or remove it")
        }
        return Entry(sequence: UInt64(seq), manifestSHA256: sha, file: file)
    }

    func write(_ b: ActiveBundle, revision: String) throws(PolicyStoreError) {
        var w = JSONWriter()
        w.value(.object(JSONObject([
            .init(key: "file", value: .string(b.file)),
            .init(key: "manifest_sha256", value: .string(b.manifestSHA256)),
            .init(key: "revision", value: .string(revision)),
            .init(key: "sequence", value: .int(Int64(b.sequence))),
        ])))
        w.byte(0x0A)
        do { try PolicyBundle.writeFile(w.bytes, to: path, replace: true) } catch {
            throw PolicyStoreError("\(path): cannot record the bundle in service (\(error.description)); the bundle is not put in service")
        }
    }
}

/// Bounded reads of small files, for the daemon's state records.
enum PolicyBundleFiles {
    static func read(_ path: String, limit: Int) throws(BundleError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { throw .io("cannot be read (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while out.count <= limit {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw .io("cannot be read (\(String(cString: strerror(errno))))") }
            if n == 0 { return out }
            out.append(contentsOf: buf[0..<n])
        }
        throw .io("larger than \(limit) bytes")
    }
}
