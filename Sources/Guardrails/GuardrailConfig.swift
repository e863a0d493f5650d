import Cedar
import CustosJSON
#if canImport(Glibc)
import Glibc
#endif

/// Whether guardrails are enforced, and from which files.
public enum GuardrailStatus: Sendable, Hashable, CustomStringConvertible {
    /// No `guardrails/` folder with configuration beside the policies: only Cedar decides.
    case inactive
    /// Enforced; the configuration files that were read.
    case active(files: [String])

    public var isActive: Bool { if case .active = self { true } else { false } }

    public var description: String {
        switch self {
        case .inactive: "inactive (no guardrails/ configuration in the policies folder)"
        case .active(let files): "active (\(files.joined(separator: ", ")))"
        }
    }
}

/// The whole guardrail configuration, read from `<policies>/guardrails/`.
///
/// `regions.json` and `purposes.json` are required once any file is present, because residency
/// and purpose checks cannot be half on; `transfers.json` (no bases: only EEA processing),
/// `retention.json` (no schedules), `compute.json` (nothing is qualified: GxP jobs are
/// refused) and `actions.json` (the built-in deletes; every other action uses the data) are
/// optional.
public struct GuardrailConfig: Sendable {
    public var status: GuardrailStatus
    public var regions: RegionsConfig?
    public var transfers: TransfersConfig?
    public var retention: RetentionConfig?
    public var purposes: PurposesConfig?
    public var compute: ComputeConfig?
    /// Which actions only read metadata and which delete; nil: the built-in deletes, every
    /// other action a use.
    public var actions: ActionsConfig?

    public static let folderName = "guardrails"
    public static let fileNames = ["regions.json", "transfers.json", "retention.json", "purposes.json", "compute.json", "actions.json"]

    /// No guardrails: every check passes.
    public static let inactive = GuardrailConfig(status: .inactive)

    init(status: GuardrailStatus, regions: RegionsConfig? = nil, transfers: TransfersConfig? = nil,
         retention: RetentionConfig? = nil, purposes: PurposesConfig? = nil, compute: ComputeConfig? = nil,
         actions: ActionsConfig? = nil) {
        self.status = status; self.regions = regions; self.transfers = transfers
        self.retention = retention; self.purposes = purposes; self.compute = compute; self.actions = actions
    }

    /// Loads `<policiesFolder>/guardrails/*.json`. A folder (or a policies path that is a single
    /// .cedar file's parent) without any of the files gives `.inactive`.
    public static func load(policiesFolder: String) throws(GuardrailConfigError) -> GuardrailConfig {
        let dir = policiesFolder.hasSuffix("/") ? policiesFolder + folderName : policiesFolder + "/" + folderName
        var texts: [String: [UInt8]] = [:]
        for name in fileNames {
            let path = dir + "/" + name
            switch readFile(path) {
            case .missing: continue
            case .failed(let err):
                throw GuardrailConfigError(file: folderName + "/" + name, path: "$", message: "cannot read \(path): \(err)")
            case .bytes(let b): texts[name] = b
            }
        }
        return try parse(files: texts)
    }

    /// Parses configuration given as file name (`regions.json`, ...) -> contents; for tests and
    /// for `custos check` on files that are not on disk yet.
    public static func parse(files: [String: [UInt8]]) throws(GuardrailConfigError) -> GuardrailConfig {
        for name in files.keys where !fileNames.contains(name) {
            throw GuardrailConfigError(file: folderName + "/" + name, path: "$",
                                       message: "unknown guardrail file; expected one of \(fileNames.joined(separator: ", "))")
        }
        if files.isEmpty { return .inactive }
        func json(_ name: String) throws(GuardrailConfigError) -> JSON? {
            guard let bytes = files[name] else { return nil }
            do { return try JSON.parse(bytes) } catch {
                // Never the input itself: the file may not be what its author thinks it is.
                throw GuardrailConfigError(file: folderName + "/" + name, path: "$",
                                           message: "not valid JSON: \(error.line):\(error.column): \(error.redactedMessage)")
            }
        }
        for required in ["regions.json", "purposes.json"] where files[required] == nil {
            throw GuardrailConfigError(file: folderName + "/" + required, path: "$",
                                       message: "missing: once any guardrail file is present, regions.json and purposes.json are required")
        }
        let regions = try RegionsConfig.parse(json("regions.json")!)
        let purposes = try PurposesConfig.parse(json("purposes.json")!)
        let transfers = try json("transfers.json").map { j throws(GuardrailConfigError) in try TransfersConfig.parse(j, regions: regions) }
        let retention = try json("retention.json").map { j throws(GuardrailConfigError) in try RetentionConfig.parse(j, regions: regions) }
        let compute = try json("compute.json").map { j throws(GuardrailConfigError) in try ComputeConfig.parse(j) }
        let actions = try json("actions.json").map { j throws(GuardrailConfigError) in try ActionsConfig.parse(j) }
        let present = fileNames.filter { files[$0] != nil }.map { folderName + "/" + $0 }
        return GuardrailConfig(status: .active(files: present), regions: regions, transfers: transfers,
                               retention: retention, purposes: purposes, compute: compute, actions: actions)
    }

    private enum ReadResult { case missing, failed(String), bytes([UInt8]) }

    private static func readFile(_ path: String) -> ReadResult {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            return e == ENOENT || e == ENOTDIR ? .missing : .failed(String(cString: strerror(e)))
        }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failed(String(cString: strerror(errno)))
            }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return .bytes(out)
    }
}
