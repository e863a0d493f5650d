import AuditLog
import Cedar
import CustosJSON
import Foundation
import Guardrails
import ReadMostly
import Synchronization

/// One loaded policies folder. Immutable: a reload builds a new snapshot and swaps it in, so a
/// request that took a snapshot finishes with exactly that policy set, entities and revision.
public final class PolicySnapshot: Sendable {
    public let policies: PolicySet
    public let entities: EntityStore
    /// `sha256:<hex>`, see `PolicyStore.revision(of:)`.
    public let revision: String
    public let loadedAt: WallTime
    /// Every regular file the revision covers, in byte order of their names.
    public let files: [String]
    /// Top-level files that are neither `*.cedar` nor `entities.json`: not interpreted, but
    /// they count in the revision. Guardrail configuration lives in `guardrails/` instead.
    public let guardrailFiles: [String]
    /// The guardrail configuration read from `guardrails/` together with the policies, so a
    /// decision sees policies and guardrails of the same revision (`.inactive` without one).
    public let guardrails: GuardrailConfig
    /// The guardrail view of `entities` (data attributes, principals' studies), built once per
    /// load while guardrails are active so a decision does not rebuild it.
    public let guardrailIndex: GuardrailEntityIndex
    /// The name a reason or error shows for policy i: its `@id` annotation, else `policyN`.
    public let policyNames: [String]
    /// The folder's `custos.json` (defaults when there is none).
    public let settings: FolderSettings
    /// What only the folder may say about entities (authoritative and data types), from
    /// `entities` and `settings`, worked out once per load.
    public let trust: FolderTrust

    public init(policies: PolicySet, entities: EntityStore, revision: String, loadedAt: WallTime,
                files: [String], guardrailFiles: [String], guardrails: GuardrailConfig = .inactive,
                settings: FolderSettings = .default) {
        self.settings = settings
        self.policies = policies
        self.entities = entities
        self.revision = revision
        self.loadedAt = loadedAt
        self.files = files
        self.guardrailFiles = guardrailFiles
        self.guardrails = guardrails
        self.guardrailIndex = guardrails.status.isActive ? GuardrailEntityIndex(entities) : .empty
        self.policyNames = policies.policies.map { $0.annotatedID ?? $0.id }
        self.trust = FolderTrust(entities: entities, settings: settings)
    }

    /// The same folder with `extra` entities added as if `entities.json` held them (the
    /// revision is unchanged): `custos test` gives a suite's fixture entities folder trust.
    public func addingFolderEntities(_ extra: [Entity]) throws(EntityError) -> PolicySnapshot {
        PolicySnapshot(policies: policies, entities: try entities.adding(extra), revision: revision, loadedAt: loadedAt,
                       files: files, guardrailFiles: guardrailFiles, guardrails: guardrails, settings: settings)
    }

    public var policyCount: Int { policies.policies.count }
    public var entityCount: Int { entities.count }
}

/// Why a policies folder could not be loaded; the message names the file and what to fix.
public struct PolicyStoreError: Error, Sendable, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A reload that failed: when, and why. The previous snapshot stays in service.
public struct ReloadFailure: Sendable, Equatable {
    public var at: WallTime
    public var error: PolicyStoreError
}

/// Holds the snapshot in service and replaces it on reload.
///
/// Readers take the current snapshot under a read lock held only for a reference copy; loading
/// happens outside that lock, so a slow or failing reload never stalls decisions. Reloads are
/// serialised among themselves so two concurrent reloads cannot install an older folder state
/// after a newer one.
public final class PolicyStore: Sendable {
    public let directory: String
    private let current = ReadMostly<PolicySnapshot?>(nil)
    private let failure = Mutex<ReloadFailure?>(nil)
    private let reloading = Mutex<Void>(())

    /// Runs on every loaded folder before it is put in service: checks what the folder must
    /// also satisfy for this daemon (such as its bound region), or completes it (`custos test`
    /// adds a suite's fixture entities). A throw fails the load like a parse error.
    private let adopt: @Sendable (PolicySnapshot) throws(PolicyStoreError) -> PolicySnapshot

    /// Does not load: call `reload()` (the daemon starts not-ready until one succeeds).
    public init(directory: String,
                adopt: @escaping @Sendable (PolicySnapshot) throws(PolicyStoreError) -> PolicySnapshot = { $0 }) {
        self.directory = directory
        self.adopt = adopt
    }

    /// The snapshot in service, or nil before the first successful load.
    @inline(__always) public var snapshot: PolicySnapshot? { current.read() }

    public var lastReloadFailure: ReloadFailure? { failure.withLock { $0 } }

    /// Loads the folder and, on success, swaps the new snapshot in. On failure the snapshot in
    /// service is kept and the failure recorded for `policy.status`.
    @discardableResult
    public func reload() -> Result<PolicySnapshot, PolicyStoreError> {
        reloading.withLock { _ in
            do throws(PolicyStoreError) {
                let s = try adopt(PolicyStore.load(directory: directory))
                current.replace(s)
                failure.withLock { $0 = nil }
                return .success(s)
            } catch {
                failure.withLock { $0 = ReloadFailure(at: WallTime.now(), error: error) }
                return .failure(error)
            }
        }
    }

    /// Reads the folder once (so the revision and the parsed policies describe the same bytes)
    /// and builds a snapshot. Not recursive, except for the `guardrails/` sub-folder, whose
    /// files count in the revision as `guardrails/<name>`; other sub-folders (such as
    /// `requests/`) and hidden files are ignored. A guardrail configuration that does not
    /// validate fails the whole load, naming the file and field.
    public static func load(directory: String) throws(PolicyStoreError) -> PolicySnapshot {
        let topLevel = try readFolder(directory)
        let guardrailDir = (directory as NSString).appendingPathComponent(GuardrailConfig.folderName)
        var isDir: ObjCBool = false
        var configFiles: [File] = []
        if FileManager.default.fileExists(atPath: guardrailDir, isDirectory: &isDir), isDir.boolValue {
            configFiles = try readFolder(guardrailDir)
        }
        let guardrails: GuardrailConfig
        do {
            // Parsed from the bytes the revision covers (never re-read), and every file in the
            // folder is passed on, so a misspelt file name is an error rather than a check
            // that silently stays off.
            var texts: [String: [UInt8]] = [:]
            for f in configFiles { texts[f.name] = f.contents }
            guardrails = try GuardrailConfig.parse(files: texts)
        } catch {
            throw PolicyStoreError("\((directory as NSString).appendingPathComponent(error.file)): \(error.path): \(error.message)")
        }
        let files = topLevel + configFiles.map { File(name: GuardrailConfig.folderName + "/" + $0.name, contents: $0.contents) }
        var asts: [PolicyAST] = []
        var entities = EntityStore.empty
        var guardrailFiles: [String] = []
        var settings = FolderSettings.default
        for f in topLevel {
            let path = (directory as NSString).appendingPathComponent(f.name)
            if f.name.hasSuffix(".cedar") {
                guard let text = String(validatingUTF8Bytes: f.contents) else {
                    throw PolicyStoreError("\(path): not valid UTF-8")
                }
                do { asts += try CedarParser.parsePolicies(text, file: path) } catch {
                    throw PolicyStoreError(error.description)
                }
            } else if f.name == "entities.json" {
                let json: JSON
                do { json = try JSON.parse(f.contents) } catch {
                    throw PolicyStoreError("\(path):\(error.line):\(error.column): invalid JSON: \(error.message)")
                }
                do { entities = try EntityStore.load(json: json, file: path) } catch {
                    throw PolicyStoreError(error.description)
                }
            } else if f.name == FolderSettings.fileName {
                settings = try FolderSettings.parse(f.contents, path: path)
            } else {
                guardrailFiles.append(f.name)
            }
        }
        let set: PolicySet
        do { set = try PolicySet(asts) } catch { throw PolicyStoreError(error.description) }
        return PolicySnapshot(policies: set, entities: entities, revision: revision(of: files),
                              loadedAt: WallTime.now(),
                              files: files.map(\.name).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) },
                              guardrailFiles: guardrailFiles, guardrails: guardrails, settings: settings)
    }

    /// One file of a policies folder as the revision sees it.
    public struct File: Sendable {
        public var name: String
        public var contents: [UInt8]
        public init(name: String, contents: [UInt8]) { self.name = name; self.contents = contents }
    }

    /// `sha256:<hex>` over every file, in byte order of the names, each framed as
    /// name, NUL, contents length (8 bytes big-endian), contents. The length makes the framing
    /// unambiguous: moving bytes from the end of one file to the start of the next changes it.
    public static func revision(of files: [File]) -> String {
        let sorted = files.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        var buf: [UInt8] = []
        buf.reserveCapacity(sorted.reduce(0) { $0 + $1.name.utf8.count + 9 + $1.contents.count })
        for f in sorted {
            buf.append(contentsOf: f.name.utf8)
            buf.append(0)
            let n = UInt64(f.contents.count)
            for shift in stride(from: 56, through: 0, by: -8) { buf.append(UInt8(truncatingIfNeeded: n >> UInt64(shift))) }
            buf.append(contentsOf: f.contents)
        }
        return "sha256:" + SHA256Digest.hash(buf).hex
    }

    private static func readFolder(_ directory: String) throws(PolicyStoreError) -> [File] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir) else {
            throw PolicyStoreError("\(directory): no such folder; pass --policies DIR with the folder holding your *.cedar files")
        }
        guard isDir.boolValue else {
            throw PolicyStoreError("\(directory): is a file; --policies takes a folder of *.cedar files and entities.json")
        }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw PolicyStoreError("\(directory): cannot list the folder (check its permissions)")
        }
        var files: [File] = []
        for name in names.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) where !name.hasPrefix(".") {
            let path = (directory as NSString).appendingPathComponent(name)
            var sub: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &sub), !sub.boolValue else { continue }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw PolicyStoreError("\(path): cannot be read (check its permissions)")
            }
            files.append(File(name: name, contents: [UInt8](data)))
        }
        return files
    }
}

extension String {
    fileprivate init?(validatingUTF8Bytes bytes: [UInt8]) {
        var it = bytes.makeIterator()
        var decoder = UTF8()
        loop: while true {
            switch decoder.decode(&it) {
            case .scalarValue: continue
            case .emptyInput: break loop
            case .error: return nil
            }
        }
        self = String(decoding: bytes, as: UTF8.self)
    }
}
