import Cedar
import CustosJSON
import CustosServer
import Guardrails

/// A validated `decide` request: the Cedar request plus the caller's own entities.
public struct DecideParams: Sendable {
    public var request: Request
    public var entities: [Entity]

    public init(request: Request, entities: [Entity] = []) {
        self.request = request
        self.entities = entities
    }

    /// Reads `{principal, action, resource, context?, entities?}`. `field` is where this object
    /// sits in the call (`params`, or `params.requests[3]` inside a batch), so the -32602 message
    /// points at the exact member to fix.
    ///
    /// With a `schema` (the folder's, when its custos.json says `validate_requests`), the
    /// request must conform to it as the reference engine checks a request: principal, action
    /// and resource by `Schema.checkRequestScope`, the context read by the action's context
    /// type, request entities read as the schema declares.
    public static func parse(_ json: JSON?, field: String = "params", schema: Schema? = nil) throws(RPCError) -> DecideParams {
        guard let json else { throw .invalidParams(field: field, "missing; expected {principal, action, resource, context?, entities?}") }
        guard case .object(let o) = json else {
            throw .invalidParams(field: field, "expected an object {principal, action, resource, context?, entities?}, got \(json.kindName)")
        }
        var principal: JSON?, action: JSON?, resource: JSON?, context: JSON?, entities: JSON?
        // One pass, keys compared by bytes (as on the wire); unknown keys are refused so a
        // misspelt "contxt" cannot silently decide without its context.
        for m in o.members {
            let k = m.key.utf8
            switch k.count {
            case 9 where k.elementsEqual("principal".utf8): principal = m.value
            case 6 where k.elementsEqual("action".utf8): action = m.value
            case 8 where k.elementsEqual("resource".utf8): resource = m.value
            case 7 where k.elementsEqual("context".utf8): context = m.value
            case 8 where k.elementsEqual("entities".utf8): entities = m.value
            default:
                throw .invalidParams(field: "\(field).\(m.key)", "unknown member (a decide request has principal, action, resource, context and entities)")
            }
        }
        // Field paths are built only on error: this runs for every decision.
        let p = try uid(principal, field, "principal")
        let a = try uid(action, field, "action")
        let r = try uid(resource, field, "resource")
        var declared: RecordType? = nil
        if let schema {
            do { declared = try schema.checkRequestScope(principal: p, action: a, resource: r) } catch { throw invalid(error, field) }
        }
        var ctx = CedarRecord()
        if let c = context, !c.isNull {
            guard case .object(let co) = c else { throw .invalidParams(field: "\(field).context", "expected an object, got \(c.kindName)") }
            if let declared, let schema {
                do { ctx = try CedarRecord(json: co, expected: declared, schema: schema) } catch { throw invalid(error, "\(field).context") }
            } else if !co.isEmpty {
                do { ctx = try CedarRecord(json: co) } catch { throw invalid(error, "\(field).context") }
            }
        } else if let declared, let schema {
            do { _ = try CedarRecord(json: JSONObject(), expected: declared, schema: schema) } catch { throw invalid(error, "\(field).context") }
        }
        var extra: [Entity] = []
        if let e = entities, !e.isNull {
            guard case .array(let items) = e else { throw .invalidParams(field: "\(field).entities", "expected an array of entities, got \(e.kindName)") }
            extra.reserveCapacity(items.count)
            for (i, item) in items.enumerated() {
                do throws(FormatError) {
                    if let schema { extra.append(try Entity(json: item, schema: schema)) } else { extra.append(try Entity(json: item)) }
                } catch {
                    throw invalid(error, "\(field).entities[\(i)]")
                }
            }
        }
        return DecideParams(request: Request(principal: p, action: a, resource: r, context: ctx), entities: extra)
    }

    @inline(__always)
    private static func uid(_ j: JSON?, _ field: String, _ member: StaticString) throws(RPCError) -> EntityUID {
        guard let j else { throw .invalidParams(field: "\(field).\(member)", "missing; expected {\"type\": \"...\", \"id\": \"...\"}") }
        do { return try EntityUID(json: j) } catch { throw invalid(error, "\(field).\(member)") }
    }

    private static func invalid(_ e: FormatError, _ field: String) -> RPCError {
        let path = e.path.isEmpty ? field : (e.path.hasPrefix("[") ? field + e.path : field + "." + e.path)
        return .invalidParams(field: path, e.message)
    }
}

/// What one decision produced, handed to the `DecisionRecorder` (the audit log's hook).
public struct DecisionRecord: Sendable {
    public var method: String
    public var caller: CallContext
    public var decisionID: String
    public var request: Request
    public var decision: Decision
    /// Policy names (their `@id`, else `policyN`).
    public var reasons: [String]
    public var errors: [String]
    public var policyRevision: String
    public var decidedAt: WallTime
    // What the guardrails saw and said; all empty while guardrails are inactive. Added after
    // the Cedar fields so existing constructions keep compiling.
    /// `context.purpose` of a decide, `job.purpose` of a place.
    public var purpose: String? = nil
    /// Where the processing happens: `context.region` of a decide, the destination of a transfer.
    public var region: String? = nil
    /// The legal basis the allowed use rests on (`public_task`, `consent`, ...), from the
    /// `legal_basis` obligation; nil when none applied.
    public var basis: String? = nil
    /// The obligations the answer carried (only on allow).
    public var obligations: [Obligation] = []
    /// Stable guardrail denial codes (`consent.withdrawn`, ...), in the order reported.
    public var guardrailCodes: [String] = []
    /// Forbids that failed to evaluate and therefore denied (`policy.forbid_error`); also in
    /// `reasons` and `errors`.
    public var forbidErrors: [String] = []
    /// `place`: the pod the job is (`job.pod`), recorded in the entry's context as `pod`.
    public var pod: PlacementJob.Pod? = nil
    /// The caller's request entities (`decide`), kept for `audit.record_requests` only.
    public var requestEntities: [Entity] = []
    /// Whether `context.region` of `request` is the daemon's (its bound region or a node's
    /// region in the inventory) rather than the caller's assertion.
    public var regionFromDaemon = false
    /// Whether the request named an inventory node (`context.node`), whose region the log does
    /// not keep: such a decision cannot be replayed.
    public var namedNode = false
}

extension DecisionRecord {
    /// For recorders outside the daemon's methods (tests, tools); the guardrail fields start empty.
    public init(method: String, caller: CallContext, request: Request, decision: Decision,
                policyRevision: String, decidedAt: WallTime) {
        self.init(method: method, caller: caller, decisionID: "", request: request, decision: decision,
                  reasons: [], errors: [], policyRevision: policyRevision, decidedAt: decidedAt)
    }
}

/// Why the recorder could not keep a record: the answer must not leave (fail closed).
public struct RecorderError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Everything the daemon does besides decisions that the audit trail must show.
public enum DaemonEvent: Sendable {
    case started(revision: String?)
    case stopped
    /// A policy load or reload; `caller` is nil for the start-up load and for SIGHUP.
    /// `guardrails` is the guardrail status it put in service (`active (...)`, `inactive`).
    case policyLoaded(previous: String?, revision: String, caller: CallContext?, guardrails: String = "")
    case policyLoadFailed(kept: String?, error: String, caller: CallContext?)
    /// A load that switched guardrails off on purpose (`guardrails/DISABLED` gave `reason`).
    case guardrailsSwitchedOff(lost: [String], reason: String, revision: String, caller: CallContext?)
    /// A bundle put in service (`custos serve --bundles`): which, who wrote it, who approved it.
    case bundleActivated(ActiveBundle, revision: String, caller: CallContext?)
    /// A bundle of the bundles folder a reload refused; `kept` is the revision still in service.
    case bundleRejected(BundleRejection, kept: String?, caller: CallContext?)
    /// A call the access rules refused.
    case refused(method: String, caller: CallContext)
    /// A call that used a privilege (see `Privilege`) the access rules do not grant the caller;
    /// the call was refused.
    case refusedPrivilege(method: String, privilege: String, caller: CallContext)
    /// A change of state made through a method (consent, legal hold, ...): `details` is what
    /// changed, with no clinical payload.
    case change(method: String, caller: CallContext, subject: String, details: JSON)
}

/// Receives every decision and event with the caller's identity. The audit log implements it;
/// without one the daemon records nothing. Called on the connection's thread before the answer
/// is sent: when it throws, the answer does not leave and the caller gets the not-ready error.
/// Records of one call come together, so a batch can share one durable write. A recorder may
/// set the records' `decisionID`s (the audit log makes them in log order); ids it leaves empty
/// are made by the daemon.
public struct DecisionRecorder: Sendable {
    public var record: @Sendable (inout [DecisionRecord]) throws(RecorderError) -> Void
    public var event: @Sendable (DaemonEvent) throws(RecorderError) -> Void
    /// Why the recorder cannot keep records (nil when it can); `health` reports it.
    public var unavailable: @Sendable () -> String?
    /// Split recording for the hot path: `enqueue` queues records and returns the ticket that
    /// `commit` must see through before any of their answers leaves (nil: nothing to wait for).
    /// The transport commits once for all the answers of a read, so pipelined decisions share
    /// one sync. Without them `record` is used, which returns only once the records are kept.
    public var enqueue: (@Sendable (inout [DecisionRecord]) throws(RecorderError) -> UInt64?)?
    public var commit: (@Sendable (UInt64) throws(RecorderError) -> Void)?
    /// `event`, returning where the entry landed (its decision id and seq), once it is as durable
    /// as the mode promises: a shared state store keeps it with the change (docs/fleet.md).
    public var reference: (@Sendable (DaemonEvent) throws(RecorderError) -> (decisionID: String, seq: UInt64))? = nil

    public init(record: @escaping @Sendable (inout [DecisionRecord]) throws(RecorderError) -> Void,
                event: @escaping @Sendable (DaemonEvent) throws(RecorderError) -> Void = { _ throws(RecorderError) in },
                unavailable: @escaping @Sendable () -> String? = { nil },
                enqueue: (@Sendable (inout [DecisionRecord]) throws(RecorderError) -> UInt64?)? = nil,
                commit: (@Sendable (UInt64) throws(RecorderError) -> Void)? = nil) {
        precondition((enqueue == nil) == (commit == nil), "enqueue and commit come together")
        self.record = record; self.event = event; self.unavailable = unavailable
        self.enqueue = enqueue; self.commit = commit
    }
}

extension DaemonServices {
    /// Hands records to the recorder; a failure becomes the not-ready error (fail closed).
    /// Gives every record its decision id: the recorder's, else a fresh one.
    func keep(_ records: inout [DecisionRecord]) throws(RPCError) {
        if let recorder {
            do { try recorder.record(&records) } catch {
                throw Self.unkept(error)
            }
        }
        Self.identify(&records)
        metrics.count(records)
    }

    /// Queues records whose answer is about to be written; `ticket` tells the transport what to
    /// commit before sending it. Falls back to `keep` for recorders that cannot split.
    func keep(_ records: inout [DecisionRecord], ticket: inout CommitTicket) throws(RPCError) {
        guard let enqueue = recorder?.enqueue else { return try keep(&records) }
        do {
            if let t = try enqueue(&records) { ticket.require(t) }
        } catch {
            throw Self.unkept(error)
        }
        Self.identify(&records)
        metrics.count(records)
    }

    private static func identify(_ records: inout [DecisionRecord]) {
        for i in records.indices where records[i].decisionID.isEmpty {
            records[i].decisionID = DecisionID.nextString(now: records[i].decidedAt)
        }
    }

    /// The dispatcher's barrier: waits until queued records up to `index` are kept.
    public func commitRecords(through index: UInt64) throws(RPCError) {
        guard let commit = recorder?.commit else { return }
        do { try commit(index) } catch { throw Self.unkept(error) }
    }

    private static func unkept(_ error: RecorderError) -> RPCError {
        .notReady("audit log unavailable, no decision is given: \(error.message)")
    }

    /// Records an event and says where it landed in the log (nil without a recorder, or with one
    /// that cannot say); a failure becomes the not-ready error, as for `note`.
    public func noteReferenced(_ event: DaemonEvent) throws(RPCError) -> StateAuditReference? {
        guard let recorder else { return nil }
        guard let reference = recorder.reference else {
            try note(event)
            return nil
        }
        do {
            let r = try reference(event)
            return StateAuditReference(decisionID: r.decisionID, seq: r.seq)
        } catch {
            throw .notReady("audit log unavailable: \(error.message)")
        }
    }

    /// Records an event; a failure becomes the not-ready error, so a change that could not be
    /// audited is reported as failed.
    public func note(_ event: DaemonEvent) throws(RPCError) {
        guard let recorder else { return }
        do { try recorder.event(event) } catch {
            throw .notReady("audit log unavailable: \(error.message)")
        }
    }
}

/// `decide` and `decide.batch`.
public enum DecisionMethods {
    public static let defaultBatchLimit = 1000

    public static func register(into table: inout MethodTable, _ services: DaemonServices) {
        let guardrailState = GuardrailState.forStateDirectory(services.stateDirectory)
        let entities = table.registerPrivilege(entitiesPrivilegeName)
        table.registerStreaming("decide") { params, caller, out, ticket throws(RPCError) in
            let snapshot = try services.readySnapshot()
            try services.limits.checkRequestEntityCount(params.json, field: "params")
            let p = try DecideParams.parse(params.json, schema: snapshot.requestSchema)
            try admitEntities(p, privilege: entities, caller: caller, snapshot: snapshot, services: services,
                              method: "decide", field: "params")
            var d = try decision(p, snapshot: snapshot, services: services, caller: caller, method: "decide",
                                 guardrailState: guardrailState)
            var records = [d.record]
            try services.keep(&records, ticket: &ticket)
            d.record.decisionID = records[0].decisionID
            d.write(into: &out)
        }
        // In a batch array, a decide.batch counts for its requests (ServerConfiguration.batchLimit).
        table.register("decide.batch", weight: { $0.object?["requests"]?.arrayValue?.count ?? 1 }) { params, caller throws(RPCError) in
            try params.only(["requests"], method: "decide.batch")
            let v = try params.required("requests")
            guard case .array(let items) = v else {
                throw .invalidParams(field: "params.requests", "expected an array of decide requests, got \(v.kindName)")
            }
            let limit = services.limits.batchLimit
            guard items.count <= limit else { throw .batchTooLarge(requests: items.count, limit: limit) }
            // One snapshot for the whole batch, so every result names the same revision (and
            // every request is checked against the same schema).
            let snapshot = try services.readySnapshot()
            // Validate everything first: a batch is answered whole or refused whole.
            var parsed: [DecideParams] = []
            parsed.reserveCapacity(items.count)
            for (i, item) in items.enumerated() {
                try services.limits.checkRequestEntityCount(item, field: "params.requests[\(i)]")
                parsed.append(try DecideParams.parse(item, field: "params.requests[\(i)]", schema: snapshot.requestSchema))
            }
            for (i, p) in parsed.enumerated() {
                try admitEntities(p, privilege: entities, caller: caller, snapshot: snapshot, services: services,
                                  method: "decide.batch", field: "params.requests[\(i)]")
            }
            var answers: [DecideAnswer] = []
            answers.reserveCapacity(parsed.count)
            for (i, p) in parsed.enumerated() {
                answers.append(try decision(p, snapshot: snapshot, services: services, caller: caller,
                                            method: "decide.batch", field: "params.requests[\(i)]",
                                            guardrailState: guardrailState))
            }
            var records = answers.map(\.record)
            try services.keep(&records)
            var results: [JSON] = []
            results.reserveCapacity(answers.count)
            for i in answers.indices {
                answers[i].record.decisionID = records[i].decisionID
                results.append(answers[i].json)
            }
            return .object(JSONObject([JSONObject.Member(key: "results", value: .array(results))]))
        }
    }

    /// Decides one request against one snapshot (see `DecideAnswer` for the answer's shape). The
    /// record's decision id is left empty: `keep` gives it one, in log order, before the answer
    /// is written. A deny is a result, never an error.
    ///
    /// The caller's request entities must have been admitted (`admitEntities`). Where the
    /// processing happens is settled first (`processingRegion`: the bound region, an inventory
    /// node, or the caller's `context.region`), and Cedar sees that region in its context. Cedar
    /// decides; a resource of a data type that the folder does not hold is denied
    /// (`data.unknown_dataset`) whether or not guardrails are active; when the snapshot's
    /// guardrails are active they then run over the resource entity (see `GuardrailContext`
    /// for what they read from the request). The answer is allow only when Cedar allows and
    /// nothing else denies.
    public static func decision(_ p: DecideParams, snapshot: PolicySnapshot, services: DaemonServices,
                                caller: CallContext, method: String, field: String = "params",
                                guardrailState: GuardrailState? = nil) throws(RPCError) -> DecideAnswer {
        var entities = snapshot.entities
        if !p.entities.isEmpty {
            entities = try entities.addingRequestEntities(p.entities, limits: services.limits, field: field)
        }
        var request = p.request
        let place = try processingRegion(request.context, services: services, field: field)
        if let c = place?.context { request.context = c }
        let response = snapshot.authorize(request, entities: entities)
        let now = services.clock()
        var context = GuardrailContext()
        var outcome = GuardrailOutcome()
        if snapshot.guardrails.status.isActive {
            context = try GuardrailContext.read(request.context, requestField: field)
            if let place { context.region = place.region }
            let state = guardrailState ?? GuardrailState.forStateDirectory(services.stateDirectory)
            outcome = try GuardrailDecision.evaluate(request, context: context, index: snapshot.guardrailIndex,
                                                     requestEntities: p.entities, entities: entities,
                                                     config: snapshot.guardrails, consent: state.snapshot(),
                                                     now: .daemonNow(now))
        } else if let place {
            context.region = place.region
        }
        if let den = place?.denial { outcome.denials.insert(den, at: 0); outcome.obligations = [] }
        if let den = unknownData(request.resource, snapshot: snapshot) { outcome.denials.insert(den, at: 0); outcome.obligations = [] }
        let allowed = response.decision == .allow && outcome.allowed
        let obligations = allowed ? outcome.obligations : []
        let names = snapshot.policyNames
        var record = DecisionRecord(method: method, caller: caller, decisionID: "", request: request,
                                    decision: allowed ? .allow : .deny,
                                    reasons: response.reasons.map { names[$0] },
                                    errors: response.errors.map { names[$0.policy] },
                                    policyRevision: snapshot.revision, decidedAt: now)
        record.purpose = context.purpose
        record.region = context.region
        record.basis = obligations.legalBasis
        record.obligations = obligations
        record.guardrailCodes = outcome.denials.map(\.code.rawValue)
        let errors = response.errors.isEmpty ? [] : snapshot.failures(response)
        record.forbidErrors = errors.forbidErrors
        record.requestEntities = p.entities
        record.regionFromDaemon = place?.fromDaemon ?? false
        record.namedNode = place != nil && request.context[Self.nodeKey] != nil  // place is nil without a node or bound region
        return DecideAnswer(record: record, denials: outcome.denials, errors: errors)
    }
}

/// One `decide` answer: `{decision, reasons, guardrail_reasons, obligations, errors,
/// decision_id, policy_revision}`. `reasons` names the Cedar policies that determined it;
/// guardrail denials are `guardrail_reasons` (`{guardrail, code, message}`); an allow carries
/// the guardrails' `obligations`; `errors` are `{policy, code?, message}` of policies that
/// failed (`code` is `policy.forbid_error` for a forbid that denied because it failed).
public struct DecideAnswer: Sendable {
    public var record: DecisionRecord
    public var denials: [Denial]
    public var errors: [PolicyFailure]

    /// Writes the answer as JSON directly (the hot path builds no tree).
    public func write(into w: inout JSONWriter) {
        w.raw(record.decision == .allow ? "{\"decision\":\"allow\",\"reasons\":[" : "{\"decision\":\"deny\",\"reasons\":[")
        for (i, r) in record.reasons.enumerated() {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            w.string(r)
        }
        w.raw("],\"guardrail_reasons\":")
        if denials.isEmpty { w.raw("[]") } else { w.value(denials.json) }
        w.raw(",\"obligations\":")
        if record.obligations.isEmpty { w.raw("[]") } else { w.value(record.obligations.json) }
        w.raw(",\"errors\":")
        errors.write(into: &w)
        w.raw(",\"decision_id\":")
        w.string(record.decisionID)
        w.raw(",\"policy_revision\":")
        w.string(record.policyRevision)
        w.byte(UInt8(ascii: "}"))
    }

    /// The same answer as a tree, for batches and in-process callers.
    public var json: JSON {
        .object(JSONObject([
            JSONObject.Member(key: "decision", value: .string(record.decision == .allow ? "allow" : "deny")),
            JSONObject.Member(key: "reasons", value: .array(record.reasons.map { .string($0) })),
            JSONObject.Member(key: "guardrail_reasons", value: denials.json),
            JSONObject.Member(key: "obligations", value: record.obligations.json),
            JSONObject.Member(key: "errors", value: .array(errors.map(\.json))),
            JSONObject.Member(key: "decision_id", value: .string(record.decisionID)),
            JSONObject.Member(key: "policy_revision", value: .string(record.policyRevision)),
        ]))
    }
}
