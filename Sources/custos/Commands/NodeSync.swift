import CustosJSON
import CustosServer
import Glibc

/// What `k8s-node-sync` and `slurm-node-sync` share: the nodes the scheduler says it has, and
/// keeping the daemon's inventory equal to them.
///
/// The inventory is memory only and starts empty with every daemon (docs/protocol.md), so the
/// sidecar checks the daemon's inventory revision (`nodes.status`, not audited) every interval:
/// when it is not the revision of the sidecar's last sync (the daemon restarted, or someone
/// else changed the inventory), the whole set is synced again with `replace: true`. A daemon
/// that cannot be reached is tried again at the next interval; nothing is lost meanwhile,
/// since the desired set is kept here.
final class NodeSyncSession {
    let socket: String
    /// A sync line above this is split: the first part replaces, the others add
    /// (docs/protocol.md, `nodes.sync`: a sync is one line, at most `limits.max_line_bytes`).
    let maxLineBytes: Int
    let log: (String) -> Void
    private var client: RPCClient?
    /// Name -> `{name, region?, labels}` as `nodes.sync` takes it.
    private(set) var desired: [String: JSON] = [:]
    /// The daemon's revision after this session's last successful change; nil before the first
    /// and after a failed one (the next check syncs everything again).
    private(set) var synced: String?
    private(set) var syncs = 0
    /// Whether the input has said anything yet: until it has, nothing is synced (an empty
    /// set would wipe the daemon's inventory while the sidecar starts).
    private(set) var known = false

    init(socket: String, maxLineBytes: Int, log: @escaping (String) -> Void) {
        self.socket = socket; self.maxLineBytes = maxLineBytes; self.log = log
    }

    private func call(_ method: String, _ params: JSON?) throws -> JSON {
        if client == nil {
            do { client = try RPCClient(path: socket, timeout: .seconds(30), maxLineBytes: 64 << 20) } catch {
                throw UsageError(message: "\(socket): \(error.description)")
            }
        }
        do {
            switch try client!.call(method, params: params) {
            case .success(let r): return r
            case .failure(let e): throw UsageError(message: "\(method): error \(e.code): \(e.message)")
            }
        } catch let e as ClientError {
            client?.close()
            client = nil
            throw UsageError(message: "\(socket): \(e.description)")
        }
    }

    /// Makes the desired set exactly `nodes` (does not talk to the daemon).
    func setAll(_ nodes: [JSON]) {
        var next: [String: JSON] = [:]
        next.reserveCapacity(nodes.count)
        for n in nodes { if let name = n["name"]?.stringValue { next[name] = n } }
        desired = next
        known = true
    }

    /// Syncs the whole desired set with `replace: true`; true when the daemon took it.
    @discardableResult
    func syncAll(reason: String) -> Bool {
        let nodes = desired.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.map { desired[$0]! }
        do {
            var revision = ""
            var first = true
            for chunk in chunks(nodes) {
                let r = try call("nodes.sync", .object(JSONObject([JSONObject.Member(key: "nodes", value: .array(chunk)),
                                                                   JSONObject.Member(key: "replace", value: .bool(first))])))
                revision = r["revision"]?.stringValue ?? ""
                first = false
            }
            synced = revision
            syncs += 1
            log("synced \(nodes.count) nodes (replace, \(reason)); inventory revision \(revision)")
            return true
        } catch {
            synced = nil
            log("sync of \(nodes.count) nodes failed (\(reason)): \(error); trying again at the next check")
            return false
        }
    }

    /// Adds or changes nodes in the desired set, and removes `delete`; the daemon is not told.
    func local(upsert: [JSON], delete: [String]) {
        for n in upsert { if let name = n["name"]?.stringValue { desired[name] = n } }
        for name in delete { desired[name] = nil }
        known = true
    }

    /// Adds or changes nodes in the desired set and the daemon; removes `deleted` from both.
    /// Before the first successful sync, syncs the whole set instead.
    func change(upsert: [JSON], delete: [String]) {
        local(upsert: upsert, delete: delete)
        guard synced != nil else { syncAll(reason: "first sync"); return }
        do {
            var revision = synced
            for chunk in chunks(upsert) where !chunk.isEmpty {
                revision = try call("nodes.sync", .object(JSONObject([JSONObject.Member(key: "nodes", value: .array(chunk))])))["revision"]?.stringValue
            }
            if !delete.isEmpty {
                revision = try call("nodes.remove", .object(JSONObject([JSONObject.Member(key: "names", value: .array(delete.map { .string($0) }))])))["revision"]?.stringValue
            }
            synced = revision
            log("applied \(upsert.count) changed and \(delete.count) deleted nodes; inventory revision \(revision ?? "?")")
        } catch {
            synced = nil
            log("change failed: \(error); syncing everything at the next check")
        }
    }

    /// Compares the daemon's inventory revision with the last sync's and syncs everything
    /// again when they differ. Before the first successful sync, syncs.
    func check() {
        guard known else { return }
        guard let last = synced else { syncAll(reason: "no successful sync yet"); return }
        do {
            let r = try call("nodes.status", nil)
            let now = r["revision"]?.stringValue ?? ""
            if now != last {
                let count = r["nodes"]?.intValue.map(String.init) ?? "?"
                syncAll(reason: "the daemon holds \(count) nodes at revision \(now), not \(last): restarted or changed")
            }
        } catch {
            synced = nil
            log("cannot check the daemon's inventory: \(error); syncing again once it answers")
        }
    }

    /// Splits a node list into lists whose `nodes.sync` line stays under `maxLineBytes`.
    func chunks(_ nodes: [JSON]) -> [[JSON]] {
        var out: [[JSON]] = [[]]
        var size = 64
        for n in nodes {
            var w = JSONWriter(capacity: 256)
            w.value(n)
            let k = w.bytes.count + 1
            if size + k > maxLineBytes, !out[out.count - 1].isEmpty {
                out.append([])
                size = 64
            }
            out[out.count - 1].append(n)
            size += k
        }
        return out
    }
}

/// Splits a byte stream into concatenated JSON documents (what `kubectl get -o json --watch`
/// prints: one pretty-printed object after another), without parsing them: strings and
/// escapes are followed, braces and brackets counted. A document is at most `maxBytes`.
struct JSONDocumentSplitter {
    let maxBytes: Int
    private var buffer: [UInt8] = []
    private var depth = 0
    private var inString = false
    private var escaped = false
    private var started = false

    init(maxBytes: Int) { self.maxBytes = maxBytes }

    struct TooLarge: Error { let limit: Int }
    struct NotADocument: Error { let byte: UInt8 }

    /// Feeds bytes; returns the documents they complete, in order.
    mutating func feed(_ bytes: UnsafeRawBufferPointer) throws -> [[UInt8]] {
        var out: [[UInt8]] = []
        for b in bytes {
            if !started {
                if b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { continue }
                guard b == UInt8(ascii: "{") || b == UInt8(ascii: "[") else { throw NotADocument(byte: b) }
                started = true
            }
            buffer.append(b)
            if buffer.count > maxBytes { throw TooLarge(limit: maxBytes) }
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch b {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth == 0 {
                    out.append(buffer)
                    buffer.removeAll(keepingCapacity: true)
                    started = false
                }
            default: break
            }
        }
        return out
    }

    /// Whether a document was begun and not finished (at the end of the input).
    var pending: Bool { started }
}

/// Reads documents from a file descriptor and checks the daemon between them: the loop both
/// sidecars run. `handle` applies one document to the session; `tick` runs at every check
/// interval (and once at the start).
enum NodeSyncLoop {
    /// Returns 0 when the input ended and `once` was asked with a successful sync; otherwise
    /// runs until killed. 1 when `once` and the sync failed or the input was unusable.
    static func run(input fd: Int32?, session: NodeSyncSession, checkInterval: Double, once: Bool,
                    maxDocumentBytes: Int, handle: ([JSON]) -> Void, tick: () -> Void) -> Int32 {
        var splitter = JSONDocumentSplitter(maxBytes: maxDocumentBytes)
        var open = fd != nil
        var failed = false
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        var nextCheck = monotonic() + checkInterval
        tick()
        while true {
            if open, let fd {
                let wait = max(0, nextCheck - monotonic())
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let r = poll(&p, 1, Int32(min(wait * 1000, Double(Int32.max))))
                if r < 0 && errno != EINTR { open = false; session.log("input: poll failed: \(String(cString: strerror(errno)))") }
                if r > 0 {
                    // Drain what is there now: an initial listing arrives in one burst and is
                    // applied as one change.
                    var docs: [JSON] = []
                    while true {
                        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                        if n < 0 && errno == EINTR { continue }
                        if n <= 0 {
                            if splitter.pending { session.log("input ended in the middle of a document; it is ignored"); failed = true }
                            open = false
                            break
                        }
                        do {
                            for d in try buf.withUnsafeBytes({ try splitter.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }) {
                                do { docs.append(try d.withUnsafeBytes { try JSON.parse($0) }) } catch {
                                    session.log("input: a document is not JSON (\(error)); it is ignored")
                                    failed = true
                                }
                            }
                        } catch let e as JSONDocumentSplitter.TooLarge {
                            session.log("input: a document is larger than \(e.limit) bytes (--max-document-mib); the input is not read further")
                            open = false; failed = true
                            break
                        } catch {
                            session.log("input: not a stream of JSON objects; the input is not read further")
                            open = false; failed = true
                            break
                        }
                        var more = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                        if poll(&more, 1, 0) <= 0 { break }
                    }
                    if !docs.isEmpty { handle(docs) }
                    if !open && once { return session.synced != nil && !failed ? 0 : 1 }
                }
            } else if once {
                return session.synced != nil && !failed ? 0 : 1
            } else {
                let wait = max(0, nextCheck - monotonic())
                var ts = timespec(tv_sec: Int(wait), tv_nsec: Int((wait - Double(Int(wait))) * 1e9))
                _ = nanosleep(&ts, nil)
            }
            if monotonic() >= nextCheck {
                tick()
                nextCheck = monotonic() + checkInterval
            }
        }
    }

    static func monotonic() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// The options both sidecars take.
    static let commonOptions = [
        OptionSpec(name: "socket", valueName: "PATH", help: "Daemon socket (default $CUSTOS_SOCKET, else state/custos.sock)."),
        OptionSpec(name: "check-interval", valueName: "SECONDS", help: "How often to compare the daemon's inventory revision with the last sync (default 10)."),
        OptionSpec(name: "once", valueName: nil, help: "Sync what the input holds, then exit (0 synced, 1 not); no restart detection."),
        OptionSpec(name: "max-line-bytes", valueName: "N", help: "Split a sync into lines below this (default 1000000; the daemon's limits.max_line_bytes)."),
        OptionSpec(name: "max-document-mib", valueName: "N", help: "Refuse an input document larger than this (default 512)."),
    ]

    static func options(_ args: ParsedArguments) throws -> (socket: String, interval: Double, maxLine: Int, maxDocument: Int) {
        let interval = try args.value("check-interval").map { v -> Double in
            guard let d = Double(v), d > 0, d.isFinite else { throw UsageError(message: "--check-interval expects a positive number of seconds, got '\(v)'") }
            return d
        } ?? 10
        let maxLine = try args.int("max-line-bytes", default: 1_000_000)
        let maxDoc = try args.int("max-document-mib", default: 512)
        guard maxLine >= 1024, maxDoc > 0 else { throw UsageError(message: "--max-line-bytes must be at least 1024 and --max-document-mib positive") }
        return (args.value("socket") ?? CallCommand.defaultSocket(), interval, maxLine, maxDoc << 20)
    }

    /// The input: a FILE positional, `-` or nothing for standard input.
    static func input(_ args: ParsedArguments, usage: String) throws -> Int32 {
        guard args.positionals.count <= 1 else { throw UsageError(message: "usage: \(usage)") }
        guard let path = args.positionals.first, path != "-" else { return 0 }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw UsageError(message: "\(path): \(String(cString: strerror(errno)))") }
        return fd
    }

    static func logLine(_ prefix: String) -> (String) -> Void {
        { message in IO.printError(prefix + ": " + message) }
    }
}
