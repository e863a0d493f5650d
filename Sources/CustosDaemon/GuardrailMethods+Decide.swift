import Cedar
import CustosJSON
import CustosServer
import Guardrails

/// Where, why and in which study a `decide` request processes data, read from its Cedar
/// `context` so one request shape serves Cedar conditions and guardrails alike:
///
/// * `context.region`: the regions.json name of where the processing happens (the caller's or
///   node's region);
/// * `context.purpose`: a purposes.json name;
/// * `context.study`: the study environment the request runs in (else the principal's
///   `studies` attribute is the environment); the principal must be a member of the data's
///   study either way (`IsolationCheck`);
/// * `context.node`: an inventory node whose region is the region (read with `region` by
///   `DecisionMethods.processingRegion`, which also applies the daemon's bound region).
///
/// Each is optional; a missing one is never guessed: touching resident personal data without
/// a region or a purpose is a denial with its own code. A wrong type is invalid params.
public struct GuardrailContext: Sendable, Hashable {
    public var region: String?
    public var purpose: String?
    public var study: String?

    public init(region: String? = nil, purpose: String? = nil, study: String? = nil) {
        self.region = region; self.purpose = purpose; self.study = study
    }

    /// `requestField` is where the request sits (`params`, `params.requests[3]`); the path of a
    /// bad member is built from it only when there is one to report.
    public static func read(_ context: CedarRecord, requestField field: String) throws(RPCError) -> GuardrailContext {
        func str(_ key: String) throws(RPCError) -> String? {
            guard let v = context[key] else { return nil }
            switch v {
            case .string(let s): return s
            // The study is often written as an entity (`Study::"ONC-301"`) for Cedar's sake.
            case .entity(let uid) where key == "study": return uid.id.value
            default: throw .invalidParams(field: "\(field).context.\(key)", "expected a string, got \(v.typeName)")
            }
        }
        return GuardrailContext(region: try str("region"), purpose: try str("purpose"), study: try str("study"))
    }
}

/// The guardrail view of a folder's entities: each data entity's attributes (or why they are
/// malformed) and each principal's studies, by entity reference.
public struct GuardrailEntityIndex: Sendable {
    public enum Data: Sendable {
        case data(DatasetAttributes)
        case invalid(Denial)
    }
    var data: [EntityUID: Data] = [:]
    var studies: [EntityUID: Set<String>] = [:]

    public static let empty = GuardrailEntityIndex()

    init() {}

    public init(_ entities: EntityStore) {
        for e in entities.all {
            do throws(Denial) {
                if let d = try DatasetAttributes(entity: e) { data[e.uid] = .data(d) }
            } catch {
                data[e.uid] = .invalid(error)
            }
            if let s = DatasetAttributes.principalStudies(e) { studies[e.uid] = s }
        }
    }

    /// nil when the entity is unknown or not data.
    public func data(_ uid: EntityUID) -> Data? { data[uid] }
    public func studies(_ uid: EntityUID) -> Set<String>? { studies[uid] }
}

/// The guardrail half of a `decide`.
public enum GuardrailDecision {
    /// Runs the guardrails over the request's resource entity. An entity that carries none of
    /// the data attributes (a report, a user) is not data and passes; one whose attributes are
    /// malformed is denied (`data.invalid_attribute`), never waved through.
    ///
    /// `index` is the folder's precomputed view; `entities` (the folder plus the request's own
    /// entities) is read only for entities the request itself brought.
    public static func evaluate(_ request: Request, context: GuardrailContext, index: GuardrailEntityIndex,
                                requestEntities: [Entity], entities: EntityStore,
                                config: GuardrailConfig, consent: ConsentSnapshot,
                                now: CedarDatetime) -> GuardrailOutcome {
        var data: [DatasetAttributes] = []
        let resourceData: GuardrailEntityIndex.Data?
        if !requestEntities.isEmpty, requestEntities.contains(where: { $0.uid == request.resource }),
           let e = entities.entry(request.resource)?.entity {
            do throws(Denial) {
                resourceData = try DatasetAttributes(entity: e).map { .data($0) }
            } catch {
                resourceData = .invalid(error)
            }
        } else {
            resourceData = index.data(request.resource)
        }
        switch resourceData {
        case .data(let d)?: data.append(d)
        case .invalid(let den)?: return GuardrailOutcome(denials: [den])
        case nil: return GuardrailOutcome()
        }
        // Study membership is the folder's to say (docs/security.md): a principal the request
        // itself defines is a member of no study, whatever `studies` it gives itself.
        let principalStudies: Set<String>?
        if !requestEntities.isEmpty, requestEntities.contains(where: { $0.uid == request.principal }) {
            principalStudies = nil
        } else {
            principalStudies = index.studies(request.principal)
        }
        let g = GuardrailRequest(operation: GuardrailRequest.operation(forAction: request.action.id.value, actions: config.actions),
                                 region: context.region, purpose: context.purpose, study: context.study,
                                 principalStudies: principalStudies, now: now)
        return Guardrails.evaluate(data, request: g, config: config, consent: consent)
    }
}

extension Denial {
    /// `{"guardrail", "code", "message"}`, as every answer shows a guardrail denial.
    public var json: JSON {
        .object(JSONObject([
            JSONObject.Member(key: "guardrail", value: .string(guardrail.rawValue)),
            JSONObject.Member(key: "code", value: .string(code.rawValue)),
            JSONObject.Member(key: "message", value: .string(message)),
        ]))
    }
}

extension Obligation {
    /// `{"kind", ...fields}`: see docs/guardrails.md, "Obligations".
    public var json: JSON {
        var o = JSONObject()
        o.append("kind", .string(kind))
        switch self {
        case .transferBasis(let d, let dest, let b):
            o.append("dataset", .string(d)); o.append("destination", .string(dest)); o.append("basis", .string(b))
        case .dispose(let d, let e):
            o.append("dataset", .string(d)); o.append("expired_at", .string(e))
        case .legalBasis(let p, let b):
            o.append("purpose", .string(p)); o.append("basis", .string(b))
        }
        return .object(o)
    }
}

extension Array where Element == Denial {
    public var json: JSON { .array(map(\.json)) }
}

extension Array where Element == Obligation {
    public var json: JSON { .array(map(\.json)) }

    /// The Art 6 basis of the first `legal_basis` obligation, for the audit record.
    public var legalBasis: String? {
        for o in self { if case .legalBasis(_, let b) = o { return b } }
        return nil
    }
}
