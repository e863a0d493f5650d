import Cedar
import CustosJSON
import CustosServer
import Guardrails

/// The guardrail methods: `place` (scheduler hook) and `transfer` (residency enforcer) here;
/// consent and legal holds in GuardrailMethods+Consent.swift; retention in
/// GuardrailMethods+Retention.swift; the node inventory `place` resolves names against in
/// GuardrailMethods+Nodes.swift. See docs/protocol.md.
public enum GuardrailMethods {
    /// JSON-RPC code of a change that contradicts the consent or hold state (withdrawing a
    /// consent that is not open, setting a hold twice, ...): nothing was changed.
    public static let conflictCode: Int64 = -32010

    /// The Cedar action `place` asks about (on `Study::"<job.study>"`, or `Job::"<job.id>"` for a
    /// job without a study): may this principal place jobs there.
    public static let placeAction = EntityUID("Action", "place_job")
    /// The Cedar action `transfer` asks about, on `Dataset::"<dataset>"`.
    public static let transferAction = EntityUID("Action", "transfer")
    /// The entity type dataset ids of `place`, `transfer`, holds and retention name.
    public static let datasetType = "Dataset"

    public static func register(into table: inout MethodTable, _ services: DaemonServices) {
        let state = GuardrailState.forStateDirectory(services.stateDirectory)
        let inventory = services.inventory
        let nodeCache = NodeEntityCache()
        // Streaming: a placement over many nodes answers with a large object whose parts repeat
        // (every node of a region has the same reasons), written directly rather than as a tree.
        table.registerStreaming("place") { params, caller, out, ticket throws(RPCError) in
            try place(params, services: services, state: state, inventory: inventory, nodeCache: nodeCache, caller: caller,
                      into: &out, ticket: &ticket)
        }
        // The scheduler extender's form: the same decision and audit entry, its question and
        // answer as values (a thousand-node answer written as JSON and parsed back was most of
        // an extender call).
        table.registerTyped("place") { input, caller, ticket throws(RPCError) -> Any in
            guard let q = input as? PlacementQuery else { throw .internalError("place: a typed call with \(type(of: input))") }
            let d = try decidePlacement(q.job, nodes: { () throws(RPCError) in q.nodes }, scores: q.scores, services: services, state: state,
                                        inventory: inventory, nodeCache: nodeCache, caller: caller, ticket: &ticket)
            return PlacementAnswer(result: d.result, decisionID: d.decisionID, laterRejections: d.guardrailRejections)
        }
        table.register("transfer") { params, caller throws(RPCError) in
            try transfer(params, services: services, state: state, caller: caller)
        }
        registerConsent(into: &table, services, state)
        registerRetention(into: &table, services, state)
        registerNodes(into: &table, services, inventory)
    }

    static func invalid(_ e: GuardrailParamError) -> RPCError {
        .invalidParams(field: e.path.hasPrefix("params") ? e.path : "params." + e.path, e.message)
    }

    static func principal(_ text: String, field: String) throws(RPCError) -> EntityUID {
        do { return try CedarParser.parseEntityUID(text) } catch {
            throw .invalidParams(field: field, "expected an entity reference such as User::\"alice\": \(error)")
        }
    }

    /// Resolves a dataset id to its guardrail attributes through `Dataset::"<id>"`.
    static func dataset(_ id: String, in entities: EntityStore) throws(Denial) -> DatasetAttributes? {
        guard let e = entities.entry(EntityUID(datasetType, id))?.entity else { return nil }
        return try DatasetAttributes(entity: e)
    }

    /// The same from a snapshot's precomputed index (guardrails active), else from its entities.
    static func dataset(_ id: String, in snapshot: PolicySnapshot) throws(Denial) -> DatasetAttributes? {
        guard snapshot.guardrails.status.isActive else { return try dataset(id, in: snapshot.entities) }
        switch snapshot.guardrailIndex.data(EntityUID(datasetType, id)) {
        case .data(let d)?: return d
        case .invalid(let den)?: throw den
        case nil: return nil
        }
    }

    // MARK: place

    static func place(_ params: Params, services: DaemonServices, state: GuardrailState, inventory: NodeInventory,
                      nodeCache: NodeEntityCache, caller: CallContext, into out: inout JSONWriter,
                      ticket: inout CommitTicket) throws(RPCError) {
        try params.only(["job", "nodes", "scores"], method: "place")
        let job: PlacementJob
        let jobJSON = try params.required("job"), nodesJSON = try params.required("nodes")
        var scores = false
        if let v = try params.optional("scores"), !v.isNull {
            guard case .bool(let b) = v else { throw .invalidParams(field: "params.scores", "expected true or false, got \(v.kindName)") }
            scores = b
        }
        do throws(GuardrailParamError) { job = try PlacementJob(json: jobJSON, path: "params.job") } catch { throw invalid(error) }
        let d = try decidePlacement(job, nodes: { () throws(RPCError) in try queryNodes(nodesJSON) }, scores: scores, services: services,
                                    state: state, inventory: inventory, nodeCache: nodeCache, caller: caller, ticket: &ticket)
        writePlaceAnswer(d.result, reasons: d.reasons, errors: d.failures, decisionID: d.decisionID,
                         policyRevision: d.policyRevision, scores: scores, into: &out)
    }

    /// A placement decided and kept in the audit log (its sync promised through `ticket`).
    struct DecidedPlacement {
        var result: PlacementResult
        var reasons: [String]
        var failures: [PolicyFailure]
        var decisionID: String
        var policyRevision: String
        /// How many of `result.rejected` the guardrails rejected (the per-node checks append theirs).
        var guardrailRejections: Int
    }

    /// `place` after its params are read, for both forms: `nodes` is asked for only once the
    /// principal is read and the policies are ready, so a malformed node list and a daemon that
    /// is not ready give the same error in either form.
    static func decidePlacement(_ job: PlacementJob, nodes readNodes: () throws(RPCError) -> [PlacementQuery.Node], scores: Bool,
                                services: DaemonServices, state: GuardrailState, inventory: NodeInventory,
                                nodeCache: NodeEntityCache, caller: CallContext,
                                ticket: inout CommitTicket) throws(RPCError) -> DecidedPlacement {
        let who = try principal(job.principal, field: "params.job.principal")
        let snapshot = try services.readySnapshot()
        // One inventory state for the whole call: names resolve, and per-node checks read
        // attributes, from the same nodes.
        let nodesNow = inventory.snapshot
        let asked = try readNodes()
        let nodes = try candidates(asked, job: job, snapshot: snapshot, inventory: nodesNow)
        let consent = try state.snapshot()
        let now = services.clock()
        var ctx: [(String, Value)] = [("gxp", .bool(job.gxp)), ("job", .string(job.id))]
        if let p = job.purpose { ctx.append(("purpose", .string(p))) }
        let request = Request(principal: who, action: placeAction,
                              resource: job.study.map { EntityUID("Study", $0) } ?? EntityUID("Job", job.id),
                              context: CedarRecord(ctx))
        let cedar = snapshot.authorize(request, entities: snapshot.entities)
        var failures = cedar.errors.isEmpty ? [] : snapshot.failures(cedar)
        // Membership comes from the folder (the index), never from the job the caller describes.
        var result = Placement.place(job: job, candidates: nodes, config: snapshot.guardrails, consent: consent,
                                     now: .daemonNow(now), principalStudies: snapshot.guardrailIndex.studies(who),
                                     resolve: { id throws(Denial) in try dataset(id, in: snapshot) },
                                     mayPlace: { _ in cedar.decision == .allow }, scores: scores)
        var reasons = cedar.reasons
        let guardrailRejections = result.rejected.count
        if !result.allowed.isEmpty, asksAboutNodes(snapshot) {
            var objects: [ScalarString: PlacementNode] = [:]
            for case .object(let n) in asked { objects[ScalarString(n.name)] = n }
            let checked = checkNodes(&result, job: job, principal: who, context: ctx,
                                     nodes: { objects[ScalarString($0)] ?? nodesNow.node(named: $0) },
                                     objectNames: Set(objects.keys), inventory: nodesNow, cache: nodeCache, snapshot: snapshot)
            // A policy is listed once, with the first failure met (per-node ones differ only
            // in the node they name).
            for f in checked.failures where !failures.contains(where: { $0.policy == f.policy }) { failures.append(f) }
            for r in checked.reasons where !reasons.contains(r) { reasons.append(r) }
        }
        var record = DecisionRecord(method: "place", caller: caller, decisionID: "", request: request,
                                    decision: result.allowed.isEmpty ? .deny : .allow,
                                    reasons: reasons.map { snapshot.policyNames[$0] },
                                    errors: failures.map(\.policy),
                                    policyRevision: snapshot.revision, decidedAt: now)
        record.purpose = job.purpose
        record.basis = result.obligations.legalBasis
        // The entry keeps every basis the job may run on: the job's, and each allowed node's
        // transfer basis once (nodes of one region share theirs).
        record.obligations = result.obligations
        for (_, list) in result.nodeObligations { for o in list where !record.obligations.contains(o) { record.obligations.append(o) } }
        record.pod = job.pod
        var codes: [String] = []
        for r in result.rejected { for d in r.reasons where !codes.contains(d.code.rawValue) { codes.append(d.code.rawValue) } }
        record.guardrailCodes = codes
        record.forbidErrors = failures.forbidErrors
        var records = [record]
        try services.keep(&records, ticket: &ticket)
        return DecidedPlacement(result: result, reasons: record.reasons, failures: failures, decisionID: records[0].decisionID,
                                policyRevision: snapshot.revision, guardrailRejections: guardrailRejections)
    }

    /// `{"allowed", "rejected", "obligations", "node_obligations", "reasons", "errors", "decision_id", "policy_revision"}`;
    /// `reasons` names the Cedar policies that answered the `place_job` question, as a decide's do.
    ///
    /// Every node of a region shares its region's verdict (the same array storage, see
    /// `Placement.place`), so each distinct list of reasons or transfer bases is serialised once
    /// and copied for the other nodes; that is most of the bytes of a large answer. Keys are
    /// storage addresses: lists with the same storage hold the same elements, and all of them
    /// stay alive in `result` while this runs, so no address is reused meanwhile.
    static func writePlaceAnswer(_ result: PlacementResult, reasons: [String] = [], errors: [PolicyFailure] = [], decisionID: String,
                                 policyRevision: String, scores: Bool = false, into w: inout JSONWriter) {
        w.raw("{\"allowed\":[")
        for (i, n) in result.allowed.enumerated() {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            w.string(n)
        }
        w.raw("],\"rejected\":{")
        writeNodeMap(result.rejected, node: \.node, list: \.reasons, into: &w) { $0.denials($1) }
        w.raw("},\"obligations\":")
        w.obligations(result.obligations)
        w.raw(",\"node_obligations\":{")
        writeNodeMap(result.nodeObligations, node: \.node, list: \.obligations, into: &w) { $0.obligations($1) }
        if scores {
            w.raw("},\"scores\":{")
            for (i, n) in result.allowed.enumerated() {
                if i > 0 { w.byte(UInt8(ascii: ",")) }
                w.string(n)
                w.byte(UInt8(ascii: ":"))
                w.int(Int64(i < result.scores.count ? result.scores[i] : 0))
            }
        }
        w.raw("},\"reasons\":[")
        for (i, r) in reasons.enumerated() {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            w.string(r)
        }
        w.raw("],\"errors\":")
        errors.write(into: &w)
        w.raw(",\"decision_id\":")
        w.string(decisionID)
        w.raw(",\"policy_revision\":")
        w.string(policyRevision)
        w.byte(UInt8(ascii: "}"))
    }

    /// `"node": [...]` members, each distinct list (by storage) serialised once.
    private static func writeNodeMap<Item, Element>(_ items: [Item], node: KeyPath<Item, String>, list: KeyPath<Item, [Element]>,
                                                   into w: inout JSONWriter, encode: (inout JSONWriter, [Element]) -> Void) {
        var memo: [UnsafeRawPointer: [UInt8]] = [:]
        for (i, item) in items.enumerated() {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            w.string(item[keyPath: node])
            w.byte(UInt8(ascii: ":"))
            let elements = item[keyPath: list]
            let key = elements.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
            if let key, let bytes = memo[key] { w.bytes.append(contentsOf: bytes); continue }
            var f = JSONWriter(capacity: 256)
            encode(&f, elements)
            w.bytes.append(contentsOf: f.bytes)
            if let key { memo[key] = f.bytes }
        }
    }

    // MARK: transfer

    static func transfer(_ params: Params, services: DaemonServices, state: GuardrailState,
                         caller: CallContext) throws(RPCError) -> JSON {
        try params.only(["principal", "dataset", "from", "to", "kind", "basis"], method: "transfer")
        guard let json = params.json, case .object = json else {
            throw .invalidParams(field: "params", "expected an object {principal, dataset, from, to, kind, basis?}")
        }
        let t: TransferRequest
        do throws(GuardrailParamError) { t = try TransferRequest(json: json) } catch { throw invalid(error) }
        let who = try principal(t.principal, field: "params.principal")
        let snapshot = try services.readySnapshot()
        if let b = t.basis, snapshot.guardrails.status.isActive, !b.utf8.elementsEqual("adequacy".utf8) {
            // A misspelt basis must not pass unnoticed because a move inside the EEA needs none.
            let ids = snapshot.guardrails.transfers?.bases.map(\.id) ?? []
            guard ids.contains(where: { $0.scalarEquals(b) }) else {
                throw .invalidParams(field: "params.basis",
                                     "no transfer basis \"\(b)\" in guardrails/transfers.json; known: \((["adequacy"] + ids).joined(separator: ", "))")
            }
        }
        let now = services.clock()
        var ctx: [(String, Value)] = [("kind", .string(t.kind.rawValue)), ("from", .string(t.from)), ("to", .string(t.to))]
        if let b = t.basis { ctx.append(("basis", .string(b))) }
        let request = Request(principal: who, action: transferAction, resource: EntityUID(datasetType, t.dataset),
                              context: CedarRecord(ctx))
        let cedar = snapshot.authorize(request, entities: snapshot.entities)
        var outcome = GuardrailOutcome()
        if snapshot.guardrails.status.isActive {
            let consent = try state.snapshot()
            do throws(Denial) {
                if let d = try dataset(t.dataset, in: snapshot) {
                    outcome = TransferCheck.decide(t, data: d, config: snapshot.guardrails,
                                                   holds: consent.holdMatters(dataset: d.id, at: .daemonNow(now)),
                                                   holdsUnavailable: consent.unavailable, now: .daemonNow(now))
                } else {
                    // A move of data the guardrails know nothing about cannot be shown lawful.
                    outcome = GuardrailOutcome(denials: [Denial(.dataUnknownDataset,
                        "dataset \(t.dataset) is not a data entity (Dataset::\"\(t.dataset)\" with residency/data_state attributes) in entities.json")])
                }
            } catch {
                outcome = GuardrailOutcome(denials: [error])
            }
        }
        let allowed = cedar.decision == .allow && outcome.allowed
        let obligations = allowed ? outcome.obligations : []
        let names = snapshot.policyNames
        var record = DecisionRecord(method: "transfer", caller: caller, decisionID: "", request: request,
                                    decision: allowed ? .allow : .deny,
                                    reasons: cedar.reasons.map { names[$0] },
                                    errors: cedar.errors.map { names[$0.policy] },
                                    policyRevision: snapshot.revision, decidedAt: now)
        record.region = t.to
        record.obligations = obligations
        record.guardrailCodes = outcome.denials.map(\.code.rawValue)
        let failures = cedar.errors.isEmpty ? [] : snapshot.failures(cedar)
        record.forbidErrors = failures.forbidErrors
        var records = [record]
        try services.keep(&records)
        let id = records[0].decisionID
        let errors: [JSON] = failures.map(\.json)
        return .object(JSONObject([
            JSONObject.Member(key: "decision", value: .string(allowed ? "allow" : "deny")),
            JSONObject.Member(key: "reasons", value: .array(cedar.reasons.map { .string(names[$0]) })),
            JSONObject.Member(key: "guardrail_reasons", value: outcome.denials.json),
            JSONObject.Member(key: "obligations", value: obligations.json),
            JSONObject.Member(key: "errors", value: .array(errors)),
            JSONObject.Member(key: "decision_id", value: .string(id)),
            JSONObject.Member(key: "policy_revision", value: .string(snapshot.revision)),
        ]))
    }
}
