import CustosJSON
import Foundation

/// `custos slurm-node-sync`: Slurm's nodes into the daemon's node inventory.
enum SlurmNodeSyncCommand {
    static let spec = CommandSpec(
        name: "slurm-node-sync",
        summary: "Keep the daemon's node inventory equal to a Slurm cluster's nodes (scontrol/sinfo JSON).",
        usage: "custos slurm-node-sync [FILE|-] [--command CMD --every SECONDS] [--region-feature KEY] [--socket PATH] [--check-interval SECONDS] [--once]",
        options: [
            OptionSpec(name: "command", valueName: "CMD", help: "Run CMD (with /bin/sh -c) for the node list instead of reading FILE, at start and every --every seconds."),
            OptionSpec(name: "every", valueName: "SECONDS", help: "How often --command runs (default 60)."),
            OptionSpec(name: "region-feature", valueName: "KEY", help: "The node feature KEY=REGION that gives a node's region (default region)."),
        ] + NodeSyncLoop.commonOptions,
        details: """
        Reads the JSON node list of `scontrol show nodes --json` (Slurm 23.02 and later) or
        `sinfo --json` (Slurm 22.05, whose scontrol has no --json): each document is the whole
        set, which replaces the inventory when it changed. A node's features become its labels:
        `key=value` gives label key with that value, a bare feature label `feature` with value
        "true"; `region=<name>` (see --region-feature) gives its region. Active features are
        used when the node reports them. Features are written by the administrators in
        slurm.conf (or a node_features plugin), so they are the place for a node's region and
        dedicated study (compute.json `dedicated`), e.g.
          NodeName=gpu-fra-[01-08] Features=region=eu-central-1,node-restriction.kubernetes.io/study=ONC-301
        Every --check-interval the daemon's inventory revision is compared with the last sync's,
        and after a daemon restart everything is synced again.
        Example: custos slurm-node-sync --command 'scontrol show nodes --json' --every 60 --socket /run/custos/custos.sock
        """)

    /// `{name, region?, labels}` for each node of a `scontrol show nodes --json` / `sinfo --json`
    /// document. A node whose features give one key twice (`region=eu-central-1,region=us-west-2`,
    /// or `gpu` and `gpu=a100`) is left out, `skipped` saying why: which value counts is not for
    /// the sync to pick, and a node the inventory lacks is refused by every placement
    /// (`placement.unknown_node`), while the other nodes are synced as usual.
    static func nodes(_ doc: JSON, regionFeature: String, skipped: (String) -> Void = { _ in }) throws -> [JSON] {
        if let errors = doc["errors"]?.arrayValue, !errors.isEmpty {
            let text = errors.map { $0["error"]?.stringValue ?? $0["description"]?.stringValue ?? $0.serialized }.joined(separator: "; ")
            throw UsageError(message: "the node list reports errors: \(text)")
        }
        guard case .array(let items)? = doc["nodes"] else { throw UsageError(message: "expected a document with a nodes array (scontrol show nodes --json, sinfo --json)") }
        var out: [JSON] = []
        var seen = Set<String>()
        for (i, n) in items.enumerated() {
            guard let name = n["name"]?.stringValue, !name.isEmpty else { throw UsageError(message: "nodes[\(i)]: no name") }
            // sinfo --json may list a node once per partition.
            guard seen.insert(name).inserted else { continue }
            var features: [String] = []
            for key in ["active_features", "features"] {
                switch n[key] {
                case .string(let s)?: features = s.split(separator: ",").map(String.init)
                case .array(let a)?: features = a.compactMap(\.stringValue)
                default: continue
                }
                if !features.isEmpty { break }
            }
            var labels = JSONObject()
            var region: String? = nil
            var repeated: String? = nil
            for f in features {
                let f = f.trimmingCharacters(in: .whitespaces)
                guard !f.isEmpty else { continue }
                let (k, v): (String, String)
                if let eq = f.firstIndex(of: "=") {
                    (k, v) = (String(f[..<eq]), String(f[f.index(after: eq)...]))
                } else {
                    (k, v) = (f, "true")
                }
                if labels[k] != nil { repeated = k; break }
                if k.utf8.elementsEqual(regionFeature.utf8) { region = v }
                labels.append(k, .string(v))
            }
            if let repeated {
                skipped("node \(name): its features give \(repeated) more than once; left out of the inventory until they give it once")
                continue
            }
            var node = JSONObject([JSONObject.Member(key: "name", value: .string(name))])
            if let region { node.append("region", .string(region)) }
            node.append("labels", .object(labels))
            out.append(.object(node))
        }
        return out
    }

    static func run(_ args: ParsedArguments) throws -> Int32 {
        let o = try NodeSyncLoop.options(args)
        let regionFeature = args.value("region-feature") ?? "region"
        let every = try args.value("every").map { v -> Double in
            guard let d = Double(v), d > 0, d.isFinite else { throw UsageError(message: "--every expects a positive number of seconds, got '\(v)'") }
            return d
        } ?? 60
        let log = NodeSyncLoop.logLine("slurm-node-sync")
        let session = NodeSyncSession(socket: o.socket, maxLineBytes: o.maxLine, log: log)
        var failed = false
        let apply = { (doc: JSON) in
            do {
                let nodes = try nodes(doc, regionFeature: regionFeature, skipped: log)
                let before = session.desired
                session.setAll(nodes)
                if session.synced == nil || before != session.desired { session.syncAll(reason: "the node list changed") }
            } catch {
                failed = true
                log("\(error); the inventory is left as it was")
            }
        }
        if let command = args.value("command") {
            guard args.positionals.isEmpty else { throw UsageError(message: "give --command or FILE, not both") }
            var nextRun = 0.0
            let runOnce = {
                switch runCommand(command) {
                case .success(let out):
                    do { apply(try JSON.parse(out)) } catch { failed = true; log("\(command): the output is not JSON (\(error))") }
                case .failure(let e): failed = true; log(e.message)
                }
            }
            if args.flag("once") {
                runOnce()
                return session.synced != nil && !failed ? 0 : 1
            }
            return NodeSyncLoop.run(input: nil, session: session, checkInterval: min(o.interval, every), once: false,
                                    maxDocumentBytes: o.maxDocument, handle: { _ in }, tick: {
                if NodeSyncLoop.monotonic() >= nextRun {
                    nextRun = NodeSyncLoop.monotonic() + every
                    runOnce()
                }
                session.check()
            })
        }
        let fd = try NodeSyncLoop.input(args, usage: spec.usage)
        let code = NodeSyncLoop.run(input: fd, session: session, checkInterval: o.interval, once: args.flag("once"),
                                    maxDocumentBytes: o.maxDocument, handle: { docs in for d in docs { apply(d) } },
                                    tick: { session.check() })
        return failed && code == 0 ? 1 : code
    }

    /// Runs `command` with /bin/sh and returns its standard output; a non-zero exit is an error
    /// with what it printed on standard error.
    static func runCommand(_ command: String) -> Result<String, UsageError> {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch { return .failure(UsageError(message: "\(command): cannot run: \(error)")) }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            return .failure(UsageError(message: "\(command): exit \(p.terminationStatus): \(String(decoding: e, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))"))
        }
        return .success(String(decoding: o, as: UTF8.self))
    }
}
