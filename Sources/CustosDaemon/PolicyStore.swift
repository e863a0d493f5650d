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
    /// Every file the revision covers (the files the daemon reads; `guardrails/` ones as
    /// `guardrails/<name>`), in byte order of their names.
    public let files: [String]
    /// The guardrail configuration read from `guardrails/` together with the policies, so a
    /// decision sees policies and guardrails of the same revision (`.inactive` without one).
    public let guardrails: GuardrailConfig
    /// The guardrail view of `entities` (data attributes, principals' studies), built once per
    /// load while guardrails are active so a decision does not rebuild it.
    public let guardrailIndex: GuardrailEntityIndex
    /// The name a reason or error shows for policy i: a link's id, else its `@id` annotation,
    /// else `policyN`.
    public let policyNames: [String]
    /// The folder's `custos.json` (defaults when there is none).
    public let settings: FolderSettings
    /// The reason in `guardrails/DISABLED`, when the folder has one: guardrails may then be
    /// switched off by this load (see `PolicyStore.load(directory:inService:)`).
    public let disabledReason: String?
    /// The guardrails this load switched off compared with the set in service before it
    /// (allowed only by `guardrails/DISABLED`); nil when it switched none off.
    public let switchedOff: GuardrailSwitchOff?
    /// What only the folder may say about entities (authoritative and data types), from
    /// `entities` and `settings`, worked out once per load.
    public let trust: FolderTrust
    /// The folder's schema (`schema.cedarschema` or `schema.cedarschema.json`), when it has one:
    /// every policy, link and `entities.json` were validated against it.
    public let schema: Schema?
    /// The schema `decide` requests are checked against (`validate_requests` in custos.json),
    /// nil when requests are not checked.
    public let requestSchema: Schema?
    /// The folder's templates (`?principal`, `?resource`); they decide only through their links,
    /// which are in `policies`.
    public let templates: [Policy]
    /// What the load noticed without refusing the folder (`file:line:col: ...`): templates
    /// without a link, policies that can never apply. `custos check --strict` refuses them.
    public let warnings: [String]
    /// The warnings of the policies themselves, without the folder trust's (which are worked
    /// out again whenever the entities change).
    private let loadWarnings: [String]
    /// The bundle these files came from, when the daemon serves a bundles folder: who wrote
    /// and approved it, and why (nil for a folder).
    public let bundle: ActiveBundle?

    public init(policies: PolicySet, entities: EntityStore, revision: String, loadedAt: WallTime,
                files: [String], guardrails: GuardrailConfig = .inactive,
                settings: FolderSettings = .default, disabledReason: String? = nil,
                switchedOff: GuardrailSwitchOff? = nil, schema: Schema? = nil, templates: [Policy] = [],
                warnings: [String] = [], bundle: ActiveBundle? = nil) {
        self.bundle = bundle
        self.schema = schema
        self.requestSchema = settings.validateRequests ? schema : nil
        self.templates = templates
        self.settings = settings
        self.disabledReason = disabledReason
        self.switchedOff = switchedOff
        self.policies = policies
        self.entities = entities
        self.revision = revision
        self.loadedAt = loadedAt
        self.files = files
        self.guardrails = guardrails
        self.guardrailIndex = guardrails.status.isActive ? GuardrailEntityIndex(entities) : .empty
        self.policyNames = policies.policies.map(FolderPolicies.name)
        self.trust = FolderTrust(entities: entities, settings: settings)
        self.loadWarnings = warnings
        self.warnings = warnings + trust.warnings + Self.actionsWarnings(guardrails.actions, policies: policies, entities: entities, schema: schema)
    }

    /// An id `guardrails/actions.json` lists that no policy scope, Action entity or schema
    /// action names is most likely misspelt (`"purge_dat"`): the action meant is then not
    /// listed and counts as a use, which a delete must never be taken for.
    static func actionsWarnings(_ actions: ActionsConfig?, policies: PolicySet, entities: EntityStore, schema: Schema?) -> [String] {
        guard let actions, !actions.listed.isEmpty else { return [] }
        var named = Set<String>()
        for p in policies.policies {
            switch p.action {
            case .any: break
            case .eq(let a): named.insert(a.id.value)
            case .inSet(let s): for a in s { named.insert(a.id.value) }
            case .in(let g): named.insert(g.id.value)
            }
        }
        for e in entities.all where e.uid.type.isAction { named.insert(e.uid.id.value) }
        if let schema { for a in schema.actions.keys { named.insert(a.id.value) } }
        let unnamed = actions.listed.filter { id in !named.contains { $0.scalarEquals(id) } }
        guard !unnamed.isEmpty else { return [] }
        return ["guardrails/actions.json lists \(unnamed.joined(separator: ", ")), which no policy, Action entity or schema names: a misspelt id? The action meant is then not listed and counts as a use of the data"]
    }

    /// The same folder with `extra` entities added as if `entities.json` held them (the
    /// revision is unchanged): `custos test` gives a suite's fixture entities folder trust.
    public func addingFolderEntities(_ extra: [Entity]) throws(EntityError) -> PolicySnapshot {
        // Built as a folder store (not a request overlay): fixtures are the folder's own, so
        // they count in the guardrail index and the trust sets like entities.json's entities.
        if extra.isEmpty { return self }
        let combined = try EntityStore(entities.all + extra)
        return PolicySnapshot(policies: policies, entities: combined, revision: revision, loadedAt: loadedAt,
                       files: files, guardrails: guardrails, settings: settings, disabledReason: disabledReason,
                       switchedOff: switchedOff, schema: schema, templates: templates, warnings: loadWarnings,
                       bundle: bundle)
    }


    public var policyCount: Int { policies.policies.count }
    public var entityCount: Int { entities.count }

    /// The guardrail files in force (`guardrails/regions.json`, ...): one per check, so losing a
    /// file is losing a check. Empty while guardrails are inactive.
    public var activeGuardrails: [String] {
        if case .active(let files) = guardrails.status { return files }
        return []
    }
}

/// Guardrails a load switched off on purpose: which, and the reason `guardrails/DISABLED` gave.
public struct GuardrailSwitchOff: Sendable, Equatable {
    /// Guardrail files in service before the load and absent from it.
    public var lost: [String]
    public var reason: String

    public init(lost: [String], reason: String) { self.lost = lost; self.reason = reason }
}

/// Why a policies folder could not be loaded; the message names the file and what to fix.
public struct PolicyStoreError: Error, Sendable, CustomStringConvertible, Equatable {
    public var message: String
    /// Every problem, one a line, when there are several (validation against the schema);
    /// `message` then shows the first and how many more. `custos check` prints these.
    public var details: [String]
    public init(_ message: String, details: [String] = []) { self.message = message; self.details = details }
    public var description: String { message }
}

/// A reload that failed: when, and why. The previous snapshot stays in service.
public struct ReloadFailure: Sendable, Equatable {
    public var at: WallTime
    public var error: PolicyStoreError
}

/// Where a `PolicyStore` reads its files from.
public enum PolicySource: Sendable {
    /// A policies folder (`--policies`): development, and deployments without bundles.
    case folder(String)
    /// One bundle file, its files checked against its manifest but its signatures not checked:
    /// a candidate under assessment (`custos test --policies`), never served.
    case bundleFile(String)
    /// The daemon's `--bundles` folder: the newest bundle that verifies (see `BundleFolder`).
    case bundles(BundleFolder)

    /// A folder or a bundle file, by what `path` is.
    public static func candidate(_ path: String) -> PolicySource {
        var st = stat()
        if stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG { return .bundleFile(path) }
        return .folder(path)
    }

    /// What messages and `policy.status` call it.
    public var path: String {
        switch self {
        case .folder(let p), .bundleFile(let p): p
        case .bundles(let f): f.directory
        }
    }
}

/// Holds the snapshot in service and replaces it on reload.
///
/// Readers take the current snapshot under a read lock held only for a reference copy; loading
/// happens outside that lock, so a slow or failing reload never stalls decisions. Reloads are
/// serialised among themselves so two concurrent reloads cannot install an older folder state
/// after a newer one.
///
/// A load that would switch off a guardrail in service is refused (see `load(directory:inService:)`).
/// What "in service" means for the first load comes from `baseline`: the guardrails the state
/// directory last saw in service, so a restart cannot lose a check a reload could not.
public final class PolicyStore: Sendable {
    /// The folder, bundle file or bundles folder read (`source.path`).
    public let directory: String
    public let source: PolicySource
    public let baseline: GuardrailBaseline?
    private let current = ReadMostly<PolicySnapshot?>(nil)
    private let failure = Mutex<ReloadFailure?>(nil)
    private let rejected = Mutex<[BundleRejection]>([])
    private let reloading = Mutex<Void>(())

    /// Runs on every loaded folder before it is put in service: checks what the folder must
    /// also satisfy for this daemon (such as its bound region), or completes it (`custos test`
    /// adds a suite's fixture entities). A throw fails the load like a parse error.
    private let adopt: @Sendable (PolicySnapshot) throws(PolicyStoreError) -> PolicySnapshot

    /// Does not load: call `reload()` (the daemon starts not-ready until one succeeds).
    public convenience init(directory: String, baseline: GuardrailBaseline? = nil,
                            adopt: @escaping @Sendable (PolicySnapshot) throws(PolicyStoreError) -> PolicySnapshot = { $0 }) {
        self.init(source: .folder(directory), baseline: baseline, adopt: adopt)
    }

    public init(source: PolicySource, baseline: GuardrailBaseline? = nil,
                adopt: @escaping @Sendable (PolicySnapshot) throws(PolicyStoreError) -> PolicySnapshot = { $0 }) {
        self.source = source
        self.directory = source.path
        self.baseline = baseline
        self.adopt = adopt
    }

    /// The snapshot in service, or nil before the first successful load.
    @inline(__always) public var snapshot: PolicySnapshot? { current.read() }

    public var lastReloadFailure: ReloadFailure? { failure.withLock { $0 } }

    /// `folder`, `bundle` or `bundles`, as `policy.status` names the source.
    public var sourceKind: String {
        switch source {
        case .folder: "folder"
        case .bundleFile: "bundle"
        case .bundles: "bundles"
        }
    }

    /// Bundles the last reload of a bundles folder refused (empty for other sources).
    public var bundleRejections: [BundleRejection] { rejected.withLock { $0 } }

    /// Loads the folder and, on success, swaps the new snapshot in. On failure (including a
    /// refused guardrail switch-off) the snapshot in service is kept and the failure recorded
    /// for `policy.status`. `rejecting` hears each bundle a bundles folder's reload refused,
    /// while the reload holds its lock (so the audit log sees them in reload order).
    @discardableResult
    public func reload(rejecting: (BundleRejection) -> Void = { _ in }) -> Result<PolicySnapshot, PolicyStoreError> {
        reloading.withLock { _ in
            var rejections: [BundleRejection] = []
            defer {
                if case .bundles = source { rejected.withLock { $0 = rejections } }
                for r in rejections { rejecting(r) }
            }
            do throws(PolicyStoreError) {
                var inService = current.read()?.activeGuardrails
                if inService == nil, let baseline { inService = try baseline.read() }
                let s: PolicySnapshot
                switch source {
                case .folder(let directory):
                    s = try adopt(PolicyStore.load(directory: directory, inService: inService))
                case .bundleFile(let path):
                    s = try adopt(PolicyBundles.load(PolicyBundles.read(path: path), shown: path, inService: inService))
                case .bundles(let folder):
                    s = try folder.select(active: current.read(), inService: inService, rejections: &rejections) {
                        s throws(PolicyStoreError) in
                        let adopted = try adopt(s)
                        try record(adopted, inService: inService)
                        return adopted
                    }
                    if s === current.read() {
                        failure.withLock { $0 = nil }
                        return .success(s)
                    }
                }
                if case .bundles = source {} else { try record(s, inService: inService) }
                current.replace(s)
                failure.withLock { $0 = nil }
                return .success(s)
            } catch {
                failure.withLock { $0 = ReloadFailure(at: WallTime.now(), error: error) }
                return .failure(error)
            }
        }
    }

    /// Records what the state directory must know before `s` is put in service: a set in
    /// service that it does not know of could be lost by the next restart.
    private func record(_ s: PolicySnapshot, inService: [String]?) throws(PolicyStoreError) {
        if let baseline, inService != s.activeGuardrails || !baseline.exists {
            try baseline.write(s.activeGuardrails, revision: s.revision)
        }
    }

    /// Reads the folder once (see `PolicyFolder` for what it may hold; the revision and the
    /// parsed policies describe the same bytes) and builds a snapshot. A guardrail
    /// configuration that does not validate fails the whole load, naming the file and field.
    /// With a schema, so does any policy, template link or entity that does not validate
    /// against it (`FolderPolicies`; every error is in the error's `details`).
    ///
    /// `inService` is the guardrail set in service (nil: nothing to compare with). A load
    /// without one of those guardrails is refused unless `guardrails/DISABLED` gives the
    /// reason; the snapshot then says what was switched off (`switchedOff`) for the audit log.
    ///
    /// Errors never quote a file's content beyond line:col and the class of the token where
    /// parsing stopped: the file may not be what its author thinks it is.
    public static func load(directory: String, inService: [String]? = nil) throws(PolicyStoreError) -> PolicySnapshot {
        let folder = try PolicyFolder.read(directory)
        let shown = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        return try load(contents: folder, shown: shown, inService: inService)
    }

    /// Builds a snapshot from files already read: a folder's (`load(directory:inService:)`) or
    /// a policy bundle's (`PolicyFolder.contents(bundleFiles:shown:)`), so both pass exactly
    /// the same checks. `shown` is what errors name the files under (`policies`,
    /// `bundles/0007.bundle`).
    public static func load(contents folder: PolicyFolder.Contents, shown: String,
                            inService: [String]? = nil, bundle: ActiveBundle? = nil) throws(PolicyStoreError) -> PolicySnapshot {
        func path(_ name: String) -> String { shown + "/" + name }
        var disabledReason: String? = nil
        var texts: [String: [UInt8]] = [:]
        for f in folder.guardrails {
            if f.name.utf8.elementsEqual(PolicyFolder.disabledFileName.utf8) {
                disabledReason = try disabled(f.contents, path: path(GuardrailConfig.folderName + "/" + f.name))
            } else {
                texts[f.name] = f.contents
            }
        }
        let guardrails: GuardrailConfig
        // Parsed from the bytes the revision covers (never re-read).
        do { guardrails = try GuardrailConfig.parse(files: texts) } catch {
            throw PolicyStoreError("\(path(error.file)): \(error.path): \(error.message)")
        }
        let files = folder.topLevel + folder.guardrails.map { File(name: GuardrailConfig.folderName + "/" + $0.name, contents: $0.contents) }
        var asts: [PolicyAST] = []
        var entitiesJSON: JSON? = nil
        var settings = FolderSettings.default
        var schemaFile: File? = nil
        var linksFile: File? = nil
        for f in folder.topLevel {
            let p = path(f.name)
            if f.name.utf8.elementsEqual("entities.json".utf8) {
                do { entitiesJSON = try JSON.parse(f.contents) } catch {
                    throw PolicyStoreError("\(p):\(error.line):\(error.column): invalid JSON: \(error.redactedMessage)")
                }
            } else if f.name.utf8.elementsEqual(FolderSettings.fileName.utf8) {
                settings = try FolderSettings.parse(f.contents, path: p)
            } else if PolicyFolder.isSchemaFile(f.name) {
                if let other = schemaFile {
                    throw PolicyStoreError("\(shown): holds both \(other.name) and \(f.name); a folder has one schema, in one format: remove one of them")
                }
                schemaFile = f
            } else if f.name.utf8.elementsEqual(PolicyFolder.linksFileName.utf8) {
                linksFile = f
            } else if PolicyFolder.recognised(f.name)?.pattern == "*.cedar" {
                guard let text = String(validating: f.contents, as: UTF8.self) else {
                    throw PolicyStoreError("\(p): not valid UTF-8")
                }
                do { asts += try CedarParser.parsePolicies(text, file: p) } catch {
                    throw PolicyStoreError(error.redactedDescription)
                }
            }
        }
        let schema = try schemaFile.map { f throws(PolicyStoreError) in try loadSchema(f, path: path(f.name)) }
        if settings.validateRequests && schema == nil {
            throw PolicyStoreError("\(path(FolderSettings.fileName)): $.validate_requests: true needs a schema in the folder (\(PolicyFolder.schemaFileName) or \(PolicyFolder.schemaJSONFileName)) to check requests against")
        }
        var entities = EntityStore.empty
        if let json = entitiesJSON {
            let p = path("entities.json")
            // With a schema, read as the schema declares (as the reference engine reads it).
            do throws(FormatError) {
                if let schema {
                    entities = try EntityStore.load(json: json, file: p, schema: schema)
                } else {
                    entities = try EntityStore.load(json: json, file: p)
                }
            } catch {
                throw PolicyStoreError(error.description)
            }
        }
        let compiled = try FolderPolicies.build(asts, links: linksFile, linksPath: path(PolicyFolder.linksFileName), schema: schema)
        let set = compiled.set
        var switchedOff: GuardrailSwitchOff? = nil
        if let inService {
            let now = guardrails.status
            let lost = inService.filter { f in
                if case .active(let files) = now { return !files.contains { $0.utf8.elementsEqual(f.utf8) } }
                return true
            }
            if !lost.isEmpty {
                guard let reason = disabledReason else {
                    throw PolicyStoreError("\(shown): refused: this load would switch off \(lost.joined(separator: ", ")), which \(lost.count == 1 ? "is" : "are") in service; the previous policy set is kept. Restore \(lost.count == 1 ? "it" : "them"), or, to switch \(lost.count == 1 ? "it" : "them") off on purpose, write the reason into \(GuardrailConfig.folderName)/\(PolicyFolder.disabledFileName)")
                }
                switchedOff = GuardrailSwitchOff(lost: lost, reason: reason)
            }
        }
        return PolicySnapshot(policies: set, entities: entities, revision: revision(of: files),
                              loadedAt: WallTime.now(),
                              files: files.map(\.name).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) },
                              guardrails: guardrails, settings: settings, disabledReason: disabledReason,
                              switchedOff: switchedOff, schema: schema, templates: compiled.templates,
                              warnings: compiled.warnings, bundle: bundle)
    }

    /// The folder's schema, from the bytes the revision covers. A syntax error is reported by
    /// line:col and token class only, as for policies.
    private static func loadSchema(_ f: File, path: String) throws(PolicyStoreError) -> Schema {
        if f.contents.starts(with: [0xEF, 0xBB, 0xBF]) {
            throw PolicyStoreError("\(path):1:1: \(CedarParser.byteOrderMarkMessage)")
        }
        if f.name.utf8.elementsEqual(PolicyFolder.schemaJSONFileName.utf8) {
            let json: JSON
            do { json = try JSON.parse(f.contents) } catch {
                throw PolicyStoreError("\(path):\(error.line):\(error.column): invalid JSON: \(error.redactedMessage)")
            }
            do { return try Schema.parse(json: json, file: path) } catch { throw PolicyStoreError(error.redactedDescription) }
        }
        guard let text = String(validating: f.contents, as: UTF8.self) else { throw PolicyStoreError("\(path): not valid UTF-8") }
        do { return try Schema.parse(cedarSchema: text, file: path) } catch { throw PolicyStoreError(error.redactedDescription) }
    }

    /// Longest reason `guardrails/DISABLED` may give: it is copied into the audit log.
    public static let maxDisabledReasonBytes = 1024

    /// The reason in `guardrails/DISABLED`: UTF-8 text, not blank, at most 1 KiB.
    private static func disabled(_ bytes: [UInt8], path: String) throws(PolicyStoreError) -> String {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) {
            throw PolicyStoreError("\(path):1:1: the file starts with a UTF-8 byte-order mark (EF BB BF); save it as UTF-8 without a BOM")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw PolicyStoreError("\(path): not valid UTF-8") }
        let reason = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reason.isEmpty else {
            throw PolicyStoreError("\(path): is empty; it must say why guardrails are switched off (who decided, and the change or ticket)")
        }
        guard reason.utf8.count <= maxDisabledReasonBytes else {
            throw PolicyStoreError("\(path): the reason is \(reason.utf8.count) bytes; keep it under \(maxDisabledReasonBytes) (it is copied into the audit log)")
        }
        return reason
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
}
