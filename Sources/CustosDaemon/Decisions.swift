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
    public static func parse(_ json: JSON?, field: String = "params") throws(RPCError) -> DecideParams {
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
        let p = try uid(principal, "\(field).principal")
        let a = try uid(action, "\(field).action")
        let r = try uid(resource, "\(field).resource")
        var ctx = CedarRecord()
        if let c = context, !c.isNull {
            guard case .object(let co) = c else { throw .invalidParams(field: "\(field).context", "expected an object, got \(c.kindName)") }
            if !co.isEmpty {
                do { ctx = try CedarRecord(json: co) } catch { throw invalid(error, "\(field).context") }
            }
        }
        var extra: [Entity] = []
        if let e = entities, !e.isNull {
            guard case .array(let items) = e else { throw .invalidParams(field: "\(field).entities", "expected an array of entities, got \(e.kindName)") }
            extra.reserveCapacity(items.count)
            for (i, item) in items.enumerated() {
                do { extra.append(try Entity(json: item)) } catch { throw invalid(error, "\(field).entities[\(i)]") }
            }
        }
        return DecideParams(request: Request(principal: p, action: a, resource: r, context: ctx), entities: extra)
    }

    @inline(__always)
    private static func uid(_ j: JSON?, _ field: String) throws(RPCError) -> EntityUID {
        guard let j else { throw .invalidParams(field: field, "missing; expected {\"type\": \"...\", \"id\": \"...\"}") }
        do { return try EntityUID(json: j) } catch { throw invalid(error, field) }
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
    case policyLoaded(previous: String?, revision: String, caller: CallContext?)
    case policyLoadFailed(kept: String?, error: String, caller: CallContext?)
    /// A call the access rules refused.
    case refused(method: String, caller: CallContext)
    /// A change of state made through a method (consent, legal hold, ...): `details` is what
    /// changed, with no clinical payload.
    case change(method: String, caller: CallContext, subject: String, details: JSON)
}

/// Receives every decision and event with the caller's identity. The audit log implements it;
/// without one the daemon records nothing. Called on the connection's thread before the answer
/// is sent: when it throws, the answer does not leave and the caller gets the not-ready error.
/// Records of one call come together, so a batch can share one durable write.
public struct DecisionRecorder: Sendable {
    public var record: @Sendable ([DecisionRecord]) throws(RecorderError) -> Void
    public var event: @Sendable (DaemonEvent) throws(RecorderError) -> Void
    /// Why the recorder cannot keep records (nil when it can); `health` reports it.
    public var unavailable: @Sendable () -> String?

    public init(record: @escaping @Sendable ([DecisionRecord]) throws(RecorderError) -> Void,
                event: @escaping @Sendable (DaemonEvent) throws(RecorderError) -> Void = { _ throws(RecorderError) in },
                unavailable: @escaping @Sendable () -> String? = { nil }) {
        self.record = record; self.event = event; self.unavailable = unavailable
    }
}

extension DaemonServices {
    /// Hands records to the recorder; a failure becomes the not-ready error (fail closed).
    func keep(_ records: [DecisionRecord]) throws(RPCError) {
        guard let recorder else { return }
        do { try recorder.record(records) } catch {
            throw .notReady("audit log unavailable, no decision is given: \(error.message)")
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
        table.register("decide") { params, caller throws(RPCError) in
            let snapshot = try services.readySnapshot()
            let p = try DecideParams.parse(params.json)
            let (answer, record) = try decide(p, snapshot: snapshot, services: services, caller: caller, method: "decide",
                                              guardrailState: guardrailState)
            try services.keep([record])
            return answer
        }
        table.register("decide.batch") { params, caller throws(RPCError) in
            let v = try params.required("requests")
            guard case .array(let items) = v else {
                throw .invalidParams(field: "params.requests", "expected an array of decide requests, got \(v.kindName)")
            }
            if let o = params.object, o.count > 1, let k = o.keys.first(where: { $0 != "requests" }) {
                throw .invalidParams(field: "params.\(k)", "unknown member (decide.batch takes only \"requests\")")
            }
            let limit = services.limits.batchLimit
            guard items.count <= limit else {
                throw RPCError(code: RPCError.overloadedCode,
                               message: "overloaded: decide.batch holds \(items.count) requests, the limit is \(limit); split it into smaller batches",
                               data: .object(JSONObject(["limit": .int(Int64(limit)), "requests": .int(Int64(items.count))])))
            }
            // Validate everything first: a batch is answered whole or refused whole.
            var parsed: [DecideParams] = []
            parsed.reserveCapacity(items.count)
            for (i, item) in items.enumerated() { parsed.append(try DecideParams.parse(item, field: "params.requests[\(i)]")) }
            // One snapshot for the whole batch, so every result names the same revision.
            let snapshot = try services.readySnapshot()
            var results: [JSON] = []
            var records: [DecisionRecord] = []
            results.reserveCapacity(parsed.count)
            records.reserveCapacity(parsed.count)
            for (i, p) in parsed.enumerated() {
                let (answer, record) = try decide(p, snapshot: snapshot, services: services, caller: caller,
                                                  method: "decide.batch", field: "params.requests[\(i)]",
                                                  guardrailState: guardrailState)
                results.append(answer)
                records.append(record)
            }
            try services.keep(records)
            return .object(JSONObject([JSONObject.Member(key: "results", value: .array(results))]))
        }
    }

    /// Decides one request against one snapshot: the answer, and the record the caller must
    /// hand to the recorder before the answer leaves. A deny is a result, never an error.
    ///
    /// Cedar decides first; when the snapshot's guardrails are active they then run over the
    /// resource entity (see `GuardrailContext` for what they read from the request). The answer
    /// is allow only when Cedar allows and no guardrail denies. `reasons` keeps naming Cedar
    /// policies; guardrail denials are `guardrail_reasons` (`{guardrail, code, message}`), and
    /// an allow carries the guardrails' `obligations`.
    public static func decide(_ p: DecideParams, snapshot: PolicySnapshot, services: DaemonServices,
                              caller: CallContext, method: String, field: String = "params",
                              guardrailState: GuardrailState? = nil) throws(RPCError) -> (JSON, DecisionRecord) {
        var entities = snapshot.entities
        if !p.entities.isEmpty {
            do { entities = try entities.adding(p.entities) } catch {
                throw .invalidParams(field: "\(field).entities", "\(error.description); request entities must not repeat the folder's entities.json")
            }
        }
        let response = snapshot.policies.authorize(p.request, entities: entities)
        let now = services.clock()
        var context = GuardrailContext()
        var outcome = GuardrailOutcome()
        if snapshot.guardrails.status.isActive {
            context = try GuardrailContext.read(p.request.context, field: "\(field).context")
            let state = guardrailState ?? GuardrailState.forStateDirectory(services.stateDirectory)
            outcome = try GuardrailDecision.evaluate(p.request, context: context, index: snapshot.guardrailIndex,
                                                     requestEntities: p.entities, entities: entities,
                                                     config: snapshot.guardrails, consent: state.snapshot(),
                                                     now: .daemonNow(now))
        }
        let allowed = response.decision == .allow && outcome.allowed
        let obligations = allowed ? outcome.obligations : []
        let id = DecisionID.nextString(now: now)
        let names = snapshot.policyNames
        var reasons: [JSON] = []
        reasons.reserveCapacity(response.reasons.count)
        for r in response.reasons { reasons.append(.string(names[r])) }
        var errors: [JSON] = []
        for e in response.errors {
            errors.append(.object(JSONObject([
                JSONObject.Member(key: "policy", value: .string(names[e.policy])),
                JSONObject.Member(key: "message", value: .string(e.error.description)),
            ])))
        }
        var record = DecisionRecord(method: method, caller: caller, decisionID: id, request: p.request,
                                    decision: allowed ? .allow : .deny,
                                    reasons: response.reasons.map { names[$0] },
                                    errors: response.errors.map { names[$0.policy] },
                                    policyRevision: snapshot.revision, decidedAt: now)
        record.purpose = context.purpose
        record.region = context.region
        record.basis = obligations.legalBasis
        record.obligations = obligations
        record.guardrailCodes = outcome.denials.map(\.code.rawValue)
        return (.object(JSONObject([
            JSONObject.Member(key: "decision", value: .string(allowed ? "allow" : "deny")),
            JSONObject.Member(key: "reasons", value: .array(reasons)),
            JSONObject.Member(key: "guardrail_reasons", value: outcome.denials.json),
            JSONObject.Member(key: "obligations", value: obligations.json),
            JSONObject.Member(key: "errors", value: .array(errors)),
            JSONObject.Member(key: "decision_id", value: .string(id)),
            JSONObject.Member(key: "policy_revision", value: .string(snapshot.revision)),
        ])), record)
    }
}
