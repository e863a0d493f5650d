import CustosJSON
import CustosServer

/// The Kubernetes scheduler extender's verbs (`POST <urlPrefix>/filter`, `POST
/// <urlPrefix>/prioritize`): `ExtenderArgs` in, `ExtenderFilterResult` or `HostPriorityList` out,
/// decided by one `place` each. The keys are the Go field names, exactly (`Pod`, `Nodes`,
/// `NodeNames`, `FailedAndUnresolvableNodes`, `Host`, `Score`): the scheduler writes them so.
extension Gateway {
    /// `ExtenderArgs` read onto a `place` call: the nodes asked about (names, in the
    /// scheduler's order), the node objects when they came as `Nodes`, and `place`'s params.
    struct ExtenderCall {
        var asked: [String] = []
        var nodeObjects: [JSON]? = nil
        var params = JSONObject()
        var onBehalfOf = ""
    }

    /// Reads `ExtenderArgs`; `asked` is filled before anything about the pod is checked, so
    /// that even a refusal names every node.
    func extenderCall(_ g: GatewayConfig, _ r: HTTPRequest, into call: inout ExtenderCall, scores: Bool) throws -> Void {
        let body = try JSON.parse(r.body)
        guard case .object(let args) = body else { throw Refusal(status: 400, message: "expected ExtenderArgs {Pod, Nodes, NodeNames}, got \(body.kindName)") }
        for m in args.members where !["Pod", "Nodes", "NodeNames"].contains(where: { $0.utf8.elementsEqual(m.key.utf8) }) {
            throw Refusal(status: 400, message: "\(m.key): unknown member (ExtenderArgs has Pod, Nodes, NodeNames; keys are case-sensitive)")
        }
        var nodes: [JSON] = []
        if case .array(let names)? = args["NodeNames"] {
            for (i, n) in names.enumerated() {
                guard case .string(let s) = n, !s.isEmpty else { throw Refusal(status: 400, message: "NodeNames[\(i)]: expected a node name") }
                call.asked.append(s)
                nodes.append(.string(s))
            }
        } else if case .object(let list)? = args["Nodes"] {
            let items = list["items"]?.arrayValue ?? []
            call.nodeObjects = items
            for (i, item) in items.enumerated() {
                let meta = item.objectValue?["metadata"]?.objectValue
                guard case .string(let name)? = meta?["name"], !name.isEmpty else { throw Refusal(status: 400, message: "Nodes.items[\(i)].metadata.name: missing") }
                call.asked.append(name)
                var node = JSONObject([JSONObject.Member(key: "name", value: .string(name))])
                var labels = JSONObject()
                if case .object(let ls)? = meta?["labels"] {
                    for l in ls.members { if case .string = l.value { labels.append(l.key, l.value) } }
                }
                if let rl = g.regionLabel, case .string(let region)? = labels[rl] { node.append("region", .string(region)) }
                node.append("labels", .object(labels))
                nodes.append(.object(node))
            }
        } else {
            throw Refusal(status: 400, message: "neither NodeNames nor Nodes is given")
        }
        guard case .object(let pod)? = args["Pod"], case .object(let meta)? = pod["metadata"],
              case .string(let podName)? = meta["name"] else {
            throw Refusal(status: 400, message: "Pod.metadata.name: missing")
        }
        let namespace = meta["namespace"]?.stringValue ?? "default"
        let annotations = meta["annotations"]?.objectValue ?? JSONObject()
        func annotation(_ k: String) -> String? { annotations[k]?.stringValue }
        let a = g.podAnnotations
        guard let principal = annotation(a.principal) else {
            throw Refusal(status: 400, message: "the pod has no \(a.principal) annotation naming its principal (such as User::\"carol\")")
        }
        _ = try identity(.string(principal), "annotation \(a.principal)")
        let datasets: [JSON] = (annotation(a.datasets) ?? "").split(separator: ",").map { part in
            JSON.string(String(part.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()))
        }
        var job = JSONObject([
            "id": .string(namespace + "/" + podName),
            "principal": .string(principal),
            "datasets": .array(datasets),
            "gxp": .bool(annotation(a.gxp) == "true"),
        ])
        if let s = annotation(a.study) { job.append("study", .string(s)) }
        if let p = annotation(a.purpose) { job.append("purpose", .string(p)) }
        if case .array(let containers)? = pod["spec"]?.objectValue?["containers"],
           case .string(let image)? = containers.first?.objectValue?["image"] {
            job.append("image", .string(image))
        }
        // The pod's identity for the audit entry (`context.pod`): the uid tells apart pods
        // that reuse a name. The API server gives every pod one; without it, none is recorded.
        if case .string(let uid)? = meta["uid"], !uid.isEmpty {
            guard uid.utf8.count <= Self.maxIdentityBytes else { throw Refusal(status: 400, message: "Pod.metadata.uid: too long") }
            job.append("pod", .object(JSONObject(["namespace": .string(namespace), "name": .string(podName), "uid": .string(uid)])))
        }
        call.onBehalfOf = "pod " + namespace + "/" + podName
        guard call.onBehalfOf.utf8.count <= Self.maxIdentityBytes else { throw Refusal(status: 400, message: "the pod's name is too long") }
        call.params = JSONObject(["job": .object(job), "nodes": .array(nodes)])
        if scores { call.params.append("scores", .bool(true)) }
    }

    /// `place` with the HTTP caller's identity, acting for the pod.
    func extenderPlace(_ call: ExtenderCall, _ caller: inout HTTPCaller) throws -> JSONObject {
        var context = caller.context
        context.onBehalfOf = call.onBehalfOf
        let answer: JSON
        do {
            answer = try dispatcher.call("place", params: Params(.object(call.params)), context: context, cache: &caller.cache)
        } catch {
            throw Refusal(status: 200, message: error.message)
        }
        guard case .object(let o) = answer else { throw Refusal(status: 200, message: "place answered \(answer.kindName)") }
        return o
    }

    func extenderFilter(_ g: GatewayConfig, _ r: HTTPRequest, _ caller: inout HTTPCaller) -> HTTPResponse {
        var call = ExtenderCall()
        do {
            try extenderCall(g, r, into: &call, scores: false)
            let o = try extenderPlace(call, &caller)
            // Names are compared as bytes, never by Swift's String equality (canonical
            // equivalence would let one node pass under another's name), and looked up through
            // sets built once: with 1,000 nodes a member-by-member search per name was a fifth
            // of the call.
            let allowed = Set((o["allowed"]?.arrayValue ?? []).compactMap { $0.stringValue.map { Array($0.utf8) } })
            var reasonsOf: [[UInt8]: [JSON]] = [:]
            for m in o["rejected"]?.objectValue?.members ?? [] where reasonsOf[Array(m.key.utf8)] == nil {
                reasonsOf[Array(m.key.utf8)] = m.value.arrayValue ?? []
            }
            var unresolvable = JSONObject()
            var listed = Set<[UInt8]>()
            for name in call.asked {
                let key = Array(name.utf8)
                guard !allowed.contains(key), listed.insert(key).inserted else { continue }
                let reasons = (reasonsOf[key] ?? []).compactMap { d -> String? in
                    guard let c = d.objectValue?["code"]?.stringValue else { return nil }
                    return c + ": " + (d.objectValue?["message"]?.stringValue ?? "")
                }
                unresolvable.append(name, .string(reasons.isEmpty ? "not allowed by custos" : reasons.joined(separator: "; ")))
            }
            var result = JSONObject()
            if let nodeObjects = call.nodeObjects {
                let kept = nodeObjects.filter { allowed.contains(Array(($0.objectValue?["metadata"]?.objectValue?["name"]?.stringValue ?? "").utf8)) }
                result.append("Nodes", .object(JSONObject(["items": .array(kept)])))
                result.append("NodeNames", .null)
            } else {
                result.append("Nodes", .null)
                // Always the full passing list, even when empty: a null list filters out every node.
                result.append("NodeNames", .array(call.asked.filter { allowed.contains(Array($0.utf8)) }.map { .string($0) }))
            }
            result.append("FailedNodes", .object(JSONObject()))
            // Residency, isolation and compute do not change by preempting pods.
            result.append("FailedAndUnresolvableNodes", .object(unresolvable))
            result.append("Error", .string(""))
            let id = o["decision_id"]?.stringValue
            return Self.json(200, .object(result), headers: id.map { [("x-custos-decision-id", $0)] } ?? [])
        } catch let refusal as Refusal {
            return Self.extenderError(refusal.message, nodes: call.asked)
        } catch {
            return Self.extenderError("the body is not JSON: \(error)", nodes: call.asked)
        }
    }

    /// `HostPriorityList`: `[{"Host", "Score"}]` in the scheduler's order, each the `scores` of
    /// `place` (10 the study's dedicated nodes, 5 nodes in the data's own region, 0 otherwise;
    /// docs/protocol.md). A node `place` does not allow scores 0: filter has already removed it.
    /// The scheduler only logs a failed prioritize, so no decision is every node at 0 (no
    /// preference), never a preference guessed without Custos.
    func extenderPrioritize(_ g: GatewayConfig, _ r: HTTPRequest, _ caller: inout HTTPCaller) -> HTTPResponse {
        var call = ExtenderCall()
        var scores = JSONObject()
        var status: UInt32 = 200
        do {
            try extenderCall(g, r, into: &call, scores: true)
            scores = try extenderPlace(call, &caller)["scores"]?.objectValue ?? JSONObject()
        } catch let refusal as Refusal {
            // A body that is not ExtenderArgs is the scheduler's mistake: say so in the status.
            if refusal.status != 200 { status = refusal.status }
        } catch {
            status = 400
        }
        var byName: [[UInt8]: Int64] = [:]
        for m in scores.members { if case .int(let n) = m.value, n >= 0, n <= 10 { byName[Array(m.key.utf8)] = n } }
        return Self.json(status, .array(call.asked.map { name in
            .object(JSONObject([JSONObject.Member(key: "Host", value: .string(name)),
                                JSONObject.Member(key: "Score", value: .int(byName[Array(name.utf8)] ?? 0))]))
        }))
    }

    /// No decision: an error the scheduler sees (`Error`), and every node it asked about
    /// failed, so no reading of the answer can place the pod.
    static func extenderError(_ message: String, nodes: [String]) -> HTTPResponse {
        let m = "custos: " + message
        return json(200, .object(JSONObject([
            "Nodes": .null,
            "NodeNames": .null,
            "FailedNodes": .object(JSONObject()),
            // Each node once, even when the scheduler named one twice: the keys are node names.
            "FailedAndUnresolvableNodes": .object(JSONObject(unique(nodes).map { JSONObject.Member(key: $0, value: .string(m)) })),
            "Error": .string(m),
        ])))
    }

    static func unique(_ names: [String]) -> [String] {
        var seen = Set<[UInt8]>()
        return names.filter { seen.insert(Array($0.utf8)).inserted }
    }
}
