import CustosJSON
import Foundation
import SchedulerNodes

/// `custos k8s-node-sync`: Kubernetes nodes into the daemon's node inventory.
enum K8sNodeSyncCommand {
    static let spec = CommandSpec(
        name: "k8s-node-sync",
        summary: "Keep the daemon's node inventory equal to a Kubernetes cluster's nodes (kubectl JSON on standard input).",
        usage: "custos k8s-node-sync [FILE|-] [--region-label KEY] [--labels KEY,...] [--socket PATH] [--check-interval SECONDS] [--once]",
        options: [
            OptionSpec(name: "region-label", valueName: "KEY", help: "Node label holding the node's region (default \(KubernetesNodeMapping.defaultRegionLabel))."),
            OptionSpec(name: "labels", valueName: "KEY,...", help: "Labels copied into the inventory: a key, a prefix ending in '/', or '*' (default: \(KubernetesNodeMapping.defaultLabelKeys.joined(separator: ",")))."),
        ] + NodeSyncLoop.commonOptions,
        details: """
        Reads JSON documents from FILE or standard input: `kubectl get nodes -o json` (the whole
        set: the inventory is replaced), and the stream of `kubectl get nodes -o json --watch
        --output-watch-events` (ADDED and MODIFIED nodes are synced, DELETED ones removed), or
        of `--watch` alone (each node synced). The first sync replaces the inventory. Every
        --check-interval the daemon's inventory revision (nodes.status) is compared with the
        last sync's; after a daemon restart it differs and everything is synced again. When the
        input ends the command keeps watching the daemon, unless --once.
        The caller needs nodes.sync, nodes.remove and nodes.status (admin methods by default; grant
        them with access.methods). Prefer a region label under node-restriction.kubernetes.io/:
        kubelets cannot set those on their own node, but they can set topology.kubernetes.io/region.
        Example: kubectl get nodes -o json --watch --output-watch-events | custos k8s-node-sync --socket /run/custos/custos.sock
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        let o = try NodeSyncLoop.options(args)
        let fd = try NodeSyncLoop.input(args, usage: spec.usage)
        var mapping = KubernetesNodeMapping()
        if let r = args.value("region-label") {
            guard !r.isEmpty else { throw UsageError(message: "--region-label needs a label key") }
            mapping.regionLabel = r
        }
        if let l = args.value("labels") {
            mapping.labelKeys = l.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        let log = NodeSyncLoop.logLine("k8s-node-sync")
        if !mapping.regionLabelIsProtected {
            log("warning: region label \(mapping.regionLabel) is not under node-restriction.kubernetes.io/; a kubelet can set it on its own node and claim a region (docs/schedulers.md, \"Labels\")")
        }
        let session = NodeSyncSession(socket: o.socket, maxLineBytes: o.maxLine, log: log)
        return NodeSyncLoop.run(input: fd, session: session, checkInterval: o.interval, once: args.flag("once"),
                                maxDocumentBytes: o.maxDocument, handle: { docs in
            // What the documents read together say: the last full list, if any, and the
            // changes after it, applied as one change.
            var all: [JSON]? = nil
            var upsert: [JSON] = []
            var delete: [String] = []
            for doc in docs {
                do {
                    switch try mapping.document(doc) {
                    case .all(let nodes): all = nodes; upsert = []; delete = []
                    case .upsert(let nodes):
                        // In the order of the events: a node deleted and added again is there.
                        let names = Set(nodes.compactMap { $0["name"]?.stringValue })
                        delete.removeAll { names.contains($0) }
                        upsert += nodes
                    case .delete(let names):
                        upsert.removeAll { names.contains($0["name"]?.stringValue ?? "") }
                        delete += names
                    case .none: break
                    }
                } catch {
                    log("input: \(error); the document is ignored")
                }
            }
            if let all {
                session.setAll(all)
                session.local(upsert: upsert, delete: delete)
                session.syncAll(reason: "a full node list")
            } else if !upsert.isEmpty || !delete.isEmpty {
                session.change(upsert: upsert, delete: delete)
            }
        }, tick: { session.check() })
    }
}
