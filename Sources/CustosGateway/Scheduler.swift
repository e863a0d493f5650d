import Cedar
import CustosJSON
import CustosServer
import Glibc
import Guardrails

/// The Kubernetes scheduler extender's verbs (`POST <urlPrefix>/filter`, `POST
/// <urlPrefix>/prioritize`): `ExtenderArgs` in, `ExtenderFilterResult` or `HostPriorityList` out,
/// decided by one `place` each. The keys are the Go field names, exactly (`Pod`, `Nodes`,
/// `NodeNames`, `FailedAndUnresolvableNodes`, `Host`, `Score`): the scheduler writes them so.
extension Gateway {
    /// `ExtenderArgs` read onto a `place` question: the nodes asked about (names, in the
    /// scheduler's order), the node objects when they came as `Nodes`, and the question itself.
    struct ExtenderCall {
        var asked: [String] = []
        var nodeObjects: [JSON]? = nil
        var query: PlacementQuery? = nil
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
        var nodes: [PlacementQuery.Node] = []
        if case .array(let names)? = args["NodeNames"] {
            call.asked.reserveCapacity(names.count)
            nodes.reserveCapacity(names.count)
            for (i, n) in names.enumerated() {
                guard case .string(let s) = n, !s.isEmpty else { throw Refusal(status: 400, message: "NodeNames[\(i)]: expected a node name") }
                call.asked.append(s)
                nodes.append(.name(s))
            }
        } else if case .object(let list)? = args["Nodes"] {
            let items = list["items"]?.arrayValue ?? []
            call.nodeObjects = items
            for (i, item) in items.enumerated() {
                let meta = item.objectValue?["metadata"]?.objectValue
                guard case .string(let name)? = meta?["name"], !name.isEmpty else { throw Refusal(status: 400, message: "Nodes.items[\(i)].metadata.name: missing") }
                call.asked.append(name)
                var labels: [String: String] = [:]
                if case .object(let ls)? = meta?["labels"] {
                    // A key given twice keeps its last value, as `place` reads a JSON object.
                    for l in ls.members { if case .string(let v) = l.value { labels[l.key] = v } }
                }
                var region: String? = nil
                if let rl = g.regionLabel, case .string(let v)? = meta?["labels"]?.objectValue?[rl] { region = v }
                nodes.append(.object(PlacementNode(name: name, region: region, labels: labels)))
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
        let datasets: [String] = (annotation(a.datasets) ?? "").split(separator: ",").map { part in
            String(part.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
        }
        if let (_, why) = PlacementJob.datasetsProblem(datasets) {
            throw Refusal(status: 400, message: "the pod's \(a.datasets) annotation: \(why)")
        }
        // Exactly "true" or "false": any other spelling ("True", "yes") must not make a GxP pod
        // an ordinary one and drop the qualified-compute checks.
        let gxp = annotation(a.gxp)
        guard gxp == nil || gxp!.utf8.elementsEqual("true".utf8) || gxp!.utf8.elementsEqual("false".utf8) else {
            throw Refusal(status: 400, message: "the pod's \(a.gxp) annotation is \"\(gxp!)\"; expected \"true\" or \"false\"")
        }
        var job = PlacementJob(id: namespace + "/" + podName, principal: principal, study: annotation(a.study),
                               purpose: annotation(a.purpose), datasets: datasets, gxp: gxp.map { $0.utf8.elementsEqual("true".utf8) } ?? false)
        // Every image the pod runs, init containers first: a GxP check of the first container
        // alone would let an unqualified sidecar onto a qualified node with the data. (Ephemeral
        // containers cannot be given at creation; they are added to a running pod, after
        // scheduling, through their own subresource.)
        for list in ["initContainers", "containers"] {
            guard let l = pod["spec"]?.objectValue?[list], !l.isNull else { continue }
            guard case .array(let containers) = l else { throw Refusal(status: 400, message: "Pod.spec.\(list): expected an array") }
            for (i, c) in containers.enumerated() {
                guard case .string(let image)? = c.objectValue?["image"], !image.isEmpty else {
                    throw Refusal(status: 400, message: "Pod.spec.\(list)[\(i)].image: missing (the API server requires one)")
                }
                if !job.images.contains(where: { $0.utf8.elementsEqual(image.utf8) }) { job.images.append(image) }
            }
        }
        // The pod's identity for the audit entry (`context.pod`): the uid tells apart pods
        // that reuse a name. The API server gives every pod one; without it, none is recorded.
        if case .string(let uid)? = meta["uid"], !uid.isEmpty {
            guard uid.utf8.count <= Self.maxIdentityBytes else { throw Refusal(status: 400, message: "Pod.metadata.uid: too long") }
            job.pod = PlacementJob.Pod(namespace: namespace, name: podName, uid: uid)
        }
        call.onBehalfOf = "pod " + namespace + "/" + podName
        guard call.onBehalfOf.utf8.count <= Self.maxIdentityBytes else { throw Refusal(status: 400, message: "the pod's name is too long") }
        call.query = PlacementQuery(job: job, nodes: nodes, scores: scores)
    }

    /// `place` with the HTTP caller's identity, acting for the pod, in its typed form: the same
    /// access rule, decision and audit entry as the JSON-RPC method, without the answer written
    /// as JSON and read back.
    func extenderPlace(_ call: ExtenderCall, _ caller: inout HTTPCaller) throws -> PlacementAnswer {
        guard let query = call.query else { throw Refusal(status: 400, message: "no placement question was read") }
        var context = caller.context
        context.onBehalfOf = call.onBehalfOf
        do {
            return try dispatcher.call("place", typed: query, as: PlacementAnswer.self, context: context, cache: &caller.cache)
        } catch {
            throw Refusal(status: 200, message: error.message)
        }
    }

    /// Which of the asked nodes `place` allowed, by position. `allowed` keeps the order of the
    /// nodes asked about and names each once (`place` refuses a node named twice), so one walk
    /// matches them; names are compared as bytes, never by Swift's String equality (canonical
    /// equivalence would let one node pass under another's name). A name that does not match
    /// is not passed: a mismatch can only fail a node, never pass one.
    static func passing(_ asked: [String], allowed: [String]) -> [Bool] {
        var passed = [Bool](repeating: false, count: asked.count)
        var j = 0
        for (i, name) in asked.enumerated() where j < allowed.count {
            if sameBytes(name, allowed[j]) { passed[i] = true; j += 1 }
        }
        return passed
    }

    @inline(__always) static func sameBytes(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        return a.withUTF8 { x in b.withUTF8 { y in x.count == y.count && (x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0) } }
    }

    /// Finds the rejection of each failed node, asked in the scheduler's order: `place` gives
    /// them as two runs in that order (`PlacementAnswer.laterRejections`), so the next one is at
    /// the head of either run, compared by bytes. Should a name not be found there, a table of
    /// every rejection by name is built once and used from then on.
    struct Rejections {
        let list: [(node: String, reasons: [Denial])]
        var first: Int
        let firstEnd: Int
        var later: Int
        var byName: [ScalarString: Int]? = nil

        init(_ list: [(node: String, reasons: [Denial])], laterFrom: Int) {
            self.list = list
            first = 0
            firstEnd = min(max(laterFrom, 0), list.count)
            later = firstEnd
        }

        mutating func position(of name: String) -> Int? {
            if byName == nil {
                if first < firstEnd, Gateway.sameBytes(list[first].node, name) { first += 1; return first - 1 }
                if later < list.count, Gateway.sameBytes(list[later].node, name) { later += 1; return later - 1 }
                var all: [ScalarString: Int] = [:]
                for (k, r) in list.enumerated() where all[ScalarString(r.node)] == nil { all[ScalarString(r.node)] = k }
                byName = all
            }
            return byName?[ScalarString(name)]
        }
    }

    func extenderFilter(_ g: GatewayConfig, _ r: HTTPRequest, _ caller: inout HTTPCaller) -> HTTPResponse {
        var call = ExtenderCall()
        do {
            try extenderCall(g, r, into: &call, scores: false)
            let answer = try extenderPlace(call, &caller)
            let result = answer.result
            let passed = Self.passing(call.asked, allowed: result.allowed)
            var rejections = Rejections(result.rejected, laterFrom: answer.laterRejections)
            var w = JSONWriter(capacity: 256 + 160 * call.asked.count)
            if let nodeObjects = call.nodeObjects {
                w.raw("{\"Nodes\":{\"items\":[")
                var first = true
                for (i, item) in nodeObjects.enumerated() where passed[i] {
                    if !first { w.byte(UInt8(ascii: ",")) }
                    first = false
                    w.value(item)
                }
                w.raw("]},\"NodeNames\":null")
            } else {
                // Always the full passing list, even when empty: a null list filters out every node.
                w.raw("{\"Nodes\":null,\"NodeNames\":[")
                var first = true
                for (i, name) in call.asked.enumerated() where passed[i] {
                    if !first { w.byte(UInt8(ascii: ",")) }
                    first = false
                    w.string(name)
                }
                w.byte(UInt8(ascii: "]"))
            }
            // Residency, isolation and compute do not change by preempting pods.
            w.raw(",\"FailedNodes\":{},\"FailedAndUnresolvableNodes\":{")
            // Nodes of one region share one list of reasons (the same storage, see
            // `Placement.place`): its message is written once and copied for the others.
            var memo: [UnsafeRawPointer: [UInt8]] = [:]
            var first = true
            for (i, name) in call.asked.enumerated() where !passed[i] {
                if !first { w.byte(UInt8(ascii: ",")) }
                first = false
                w.string(name)
                w.byte(UInt8(ascii: ":"))
                guard let k = rejections.position(of: name) else { w.string("not allowed by custos"); continue }
                let reasons = result.rejected[k].reasons
                let key = reasons.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
                if let key, let bytes = memo[key] { w.bytes.append(contentsOf: bytes); continue }
                var m = JSONWriter(capacity: 256)
                m.string(reasons.isEmpty ? "not allowed by custos" : reasons.map { $0.code.rawValue + ": " + $0.message }.joined(separator: "; "))
                w.bytes.append(contentsOf: m.bytes)
                if let key { memo[key] = m.bytes }
            }
            w.raw("},\"Error\":\"\"}\n")
            return HTTPResponse(status: 200, headers: [("x-custos-decision-id", answer.decisionID)], body: w.bytes)
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
        var score = [Int64](repeating: 0, count: 0)
        var status: UInt32 = 200
        do {
            try extenderCall(g, r, into: &call, scores: true)
            let result = try extenderPlace(call, &caller).result
            score = [Int64](repeating: 0, count: call.asked.count)
            var j = 0
            for (i, name) in call.asked.enumerated() where j < result.allowed.count {
                guard Self.sameBytes(name, result.allowed[j]) else { continue }
                let n = j < result.scores.count ? result.scores[j] : 0
                if n >= 0, n <= 10 { score[i] = Int64(n) }
                j += 1
            }
        } catch let refusal as Refusal {
            // A body that is not ExtenderArgs is the scheduler's mistake: say so in the status.
            if refusal.status != 200 { status = refusal.status }
        } catch {
            status = 400
        }
        var w = JSONWriter(capacity: 64 + 40 * call.asked.count)
        w.byte(UInt8(ascii: "["))
        for (i, name) in call.asked.enumerated() {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            w.raw("{\"Host\":")
            w.string(name)
            w.raw(",\"Score\":")
            w.int(i < score.count ? score[i] : 0)
            w.byte(UInt8(ascii: "}"))
        }
        w.raw("]\n")
        return HTTPResponse(status: status, body: w.bytes)
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
