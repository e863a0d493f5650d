import CustosJSON
import CustosServer

/// The Kubernetes scheduler extender's two verbs as plain functions over bytes, so any HTTP
/// listener can mount them (`POST <urlPrefix>/filter`, `POST <urlPrefix>/prioritize`): each
/// takes the scheduler's request body and calls `place` once through `via`.
///
/// Wire format (callers.md §1.1, `k8s.io/kube-scheduler/extender/v1`): the structs carry no
/// json tags, so every key is the Go field name (`Pod`, `Nodes`, `NodeNames`, `FailedNodes`,
/// `FailedAndUnresolvableNodes`, `Error`, `Host`, `Score`), read and written exactly.
///
/// Fail closed: whatever goes wrong (a body that is not `ExtenderArgs`, a pod whose labels do
/// not map onto a job, Custos not ready, an error from `place`), `filter` answers with `Error`
/// set and every node it could name in `FailedAndUnresolvableNodes`, and no node passes. With
/// `ignorable: false` (the only safe setting) the scheduler then leaves the pod pending.
public enum SchedulerExtender {
    /// `place` in-process: the daemon's dispatcher, e.g. `{ try dispatcher.call("place",
    /// params: Params($0), context: caller) }`, so the call is checked, decided and audited as
    /// on the socket.
    public typealias Place = (JSON) throws(RPCError) -> JSON

    /// `ExtenderArgs` -> `ExtenderFilterResult`.
    public static func filter(_ body: [UInt8], options: PodMapping = PodMapping(), via place: Place) -> [UInt8] {
        let args: Args
        do { args = try Args(body) } catch {
            return FilterResult.failure(error.message, names: error.names, mode: error.mode)
        }
        let job: JSON
        do { job = try options.job(args.pod) } catch {
            return FilterResult.failure("pod \(args.podName): \(error.message)", names: args.names, mode: args.mode)
        }
        let answer: JSON
        do {
            answer = try place(.object(JSONObject([JSONObject.Member(key: "job", value: job),
                                                   JSONObject.Member(key: "nodes", value: .array(args.names.map { .string($0) }))])))
        } catch {
            return FilterResult.failure("custos place: \(error.message)", names: args.names, mode: args.mode)
        }
        return FilterResult.from(answer, args: args)
    }

    /// `ExtenderArgs` -> `HostPriorityList`: the `scores` of `place` for the allowed nodes, 0 for
    /// the others. The scheduler ignores a prioritize that fails, so every failure is the
    /// neutral answer (every node 0) rather than an error.
    public static func prioritize(_ body: [UInt8], options: PodMapping = PodMapping(), via place: Place) -> [UInt8] {
        guard let args = try? Args(body) else { return hostPriorities([], scores: nil) }
        guard let job = try? options.job(args.pod) else { return hostPriorities(args.names, scores: nil) }
        let answer = try? place(.object(JSONObject([JSONObject.Member(key: "job", value: job),
                                                    JSONObject.Member(key: "nodes", value: .array(args.names.map { .string($0) })),
                                                    JSONObject.Member(key: "scores", value: .bool(true))])))
        return hostPriorities(args.names, scores: answer?["scores"]?.objectValue)
    }

    /// `[{"Host": name, "Score": n}, ...]` in the order of the request.
    static func hostPriorities(_ names: [String], scores: JSONObject?) -> [UInt8] {
        var byName: [String: Int64] = [:]
        if let scores {
            byName.reserveCapacity(scores.count)
            for m in scores.members { if case .int(let n) = m.value, n >= 0, n <= 10 { byName[m.key] = n } }
        }
        var w = JSONWriter(capacity: 32 + names.count * 40)
        w.byte(UInt8(ascii: "["))
        for (i, n) in names.enumerated() {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            w.raw("{\"Host\":"); w.string(n)
            w.raw(",\"Score\":"); w.int(byName[n] ?? 0)
            w.byte(UInt8(ascii: "}"))
        }
        w.byte(UInt8(ascii: "]"))
        return w.bytes
    }
}

/// Which member of `ExtenderArgs` carried the nodes: `NodeNames` (`nodeCacheCapable: true`) or
/// `Nodes` (a `v1.NodeList`). The answer uses the same one.
enum NodesMode: Sendable { case names, objects }

/// A body that is not usable `ExtenderArgs`, with whatever node names could still be read (to
/// fail them) and the mode to answer in.
struct ArgsError: Error {
    var message: String
    var names: [String] = []
    var mode: NodesMode = .names
}

/// `ExtenderArgs`: `{"Pod": <v1.Pod>, "Nodes": <v1.NodeList>|null, "NodeNames": [string]|null}`.
struct Args {
    var pod: JSONObject
    var mode: NodesMode
    var names: [String]
    /// The node objects of `Nodes`, in order (objects mode only), to send back those that pass.
    var nodeObjects: [JSON] = []

    var podName: String {
        let meta = pod["metadata"]?.objectValue
        return (meta?["namespace"]?.stringValue ?? "default") + "/" + (meta?["name"]?.stringValue ?? "(unnamed)")
    }

    init(_ body: [UInt8]) throws(ArgsError) {
        let parsed: Result<JSON, JSONParseError> = body.withUnsafeBytes { b in
            do throws(JSONParseError) { return .success(try JSON.parse(b)) } catch { return .failure(error) }
        }
        let json: JSON
        switch parsed {
        case .success(let j): json = j
        case .failure(let error):
            throw ArgsError(message: "the request body is not JSON (\(error.line):\(error.column): \(error.redactedMessage)); expected ExtenderArgs")
        }
        guard case .object(let o) = json else { throw ArgsError(message: "expected ExtenderArgs (a JSON object), got \(json.kindName)") }
        // Names first, so a bad pod can still fail every node.
        var names: [String] = []
        var objects: [JSON] = []
        var mode = NodesMode.names
        var seen = Set<String>()
        if let n = o["NodeNames"], !n.isNull {
            guard case .array(let a) = n else { throw ArgsError(message: "NodeNames: expected an array of node names, got \(n.kindName)") }
            names.reserveCapacity(a.count)
            for (i, e) in a.enumerated() {
                guard case .string(let s) = e, !s.isEmpty else { throw ArgsError(message: "NodeNames[\(i)]: expected a node name, got \(e.kindName)", names: names) }
                guard seen.insert(s).inserted else { throw ArgsError(message: "NodeNames[\(i)]: node \(s) is named twice", names: names) }
                names.append(s)
            }
        } else if let n = o["Nodes"], !n.isNull {
            mode = .objects
            guard case .array(let items)? = n["items"] else {
                throw ArgsError(message: "Nodes: expected a NodeList with items, got \(n.kindName)", mode: mode)
            }
            names.reserveCapacity(items.count)
            objects = items
            for (i, item) in items.enumerated() {
                guard let s = item["metadata"]?["name"]?.stringValue, !s.isEmpty else {
                    throw ArgsError(message: "Nodes.items[\(i)].metadata.name: missing", names: names, mode: mode)
                }
                guard seen.insert(s).inserted else { throw ArgsError(message: "Nodes.items[\(i)]: node \(s) is listed twice", names: names, mode: mode) }
                names.append(s)
            }
        }
        guard case .object(let pod)? = o["Pod"] else {
            throw ArgsError(message: "Pod: missing or not an object; expected ExtenderArgs {Pod, Nodes, NodeNames}", names: names, mode: mode)
        }
        self.pod = pod
        self.mode = mode
        self.names = names
        self.nodeObjects = objects
    }
}

/// `ExtenderFilterResult`: `{"Nodes", "NodeNames", "FailedNodes", "FailedAndUnresolvableNodes", "Error"}`.
enum FilterResult {
    /// Every node fails, with `message` as its reason and as `Error`.
    static func failure(_ message: String, names: [String], mode: NodesMode) -> [UInt8] {
        var w = JSONWriter(capacity: 128 + names.count * (message.utf8.count + 24))
        open(&w, mode: mode)
        w.raw("\"FailedNodes\":{},\"FailedAndUnresolvableNodes\":{")
        for (i, n) in names.enumerated() {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            w.string(n); w.byte(UInt8(ascii: ":")); w.string(message)
        }
        w.raw("},\"Error\":"); w.string("custos: " + message)
        w.byte(UInt8(ascii: "}"))
        return w.bytes
    }

    /// The passing list is always given (an absent one would filter out every node, callers.md
    /// §1.1). Every rejection is unresolvable: no Custos reason goes away by evicting pods, and a
    /// `FailedNodes` entry would let preemption evict pods from a node the next filter rejects
    /// again.
    static func from(_ answer: JSON, args: Args) -> [UInt8] {
        guard case .array(let allowedJSON)? = answer["allowed"], case .object(let rejected)? = answer["rejected"] else {
            return failure("custos place answered without allowed and rejected", names: args.names, mode: args.mode)
        }
        var allowed = Set<String>(minimumCapacity: allowedJSON.count)
        for a in allowedJSON { if let s = a.stringValue { allowed.insert(s) } }
        var w = JSONWriter(capacity: 256 + args.names.count * 48)
        w.raw("{\"Nodes\":")
        switch args.mode {
        case .names:
            w.raw("null,\"NodeNames\":[")
            var first = true
            for n in args.names where allowed.contains(n) {
                if !first { w.byte(UInt8(ascii: ",")) }
                first = false
                w.string(n)
            }
            w.raw("],")
        case .objects:
            w.raw("{\"items\":[")
            var first = true
            for (k, n) in args.names.enumerated() where allowed.contains(n) {
                if !first { w.byte(UInt8(ascii: ",")) }
                first = false
                w.value(args.nodeObjects[k])
            }
            w.raw("]},\"NodeNames\":null,")
        }
        w.raw("\"FailedNodes\":{},\"FailedAndUnresolvableNodes\":{")
        // Every node the scheduler sent is either passed or failed: a node `place` left out of
        // both (it never does) fails too.
        var failed = Set<String>(minimumCapacity: rejected.count)
        var first = true
        for m in rejected.members {
            guard !allowed.contains(m.key) else { continue }
            if !first { w.byte(UInt8(ascii: ",")) }
            first = false
            failed.insert(m.key)
            w.string(m.key); w.byte(UInt8(ascii: ":")); w.string(reasonText(m.value))
        }
        for n in args.names where !allowed.contains(n) && !failed.contains(n) {
            if !first { w.byte(UInt8(ascii: ",")) }
            first = false
            w.string(n); w.raw(":\"custos: place gave no answer for this node\"")
        }
        w.raw("},\"Error\":\"\"}")
        return w.bytes
    }

    /// `code: message; code: message` of a node's reasons.
    static func reasonText(_ reasons: JSON) -> String {
        guard case .array(let list) = reasons else { return "custos: rejected" }
        var out = ""
        for (i, r) in list.enumerated() {
            if i > 0 { out += "; " }
            out += (r["code"]?.stringValue ?? "rejected") + ": " + (r["message"]?.stringValue ?? "")
        }
        return out
    }

    private static func open(_ w: inout JSONWriter, mode: NodesMode) {
        switch mode {
        case .names: w.raw("{\"Nodes\":null,\"NodeNames\":[],")
        case .objects: w.raw("{\"Nodes\":{\"items\":[]},\"NodeNames\":null,")
        }
    }
}
