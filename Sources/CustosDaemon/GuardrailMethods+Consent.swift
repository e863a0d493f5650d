import Cedar
import CustosJSON
import CustosServer
import Guardrails

/// `consent.grant`, `consent.withdraw`, `consent.get`, `hold.set`, `hold.release`.
///
/// A change goes through the daemon's state store (`StateStore`), which calls back to note it to
/// the audit log before the answer leaves. With the embedded journal the change is committed
/// (written and fdatasync'ed) first: if the audit log cannot take the note the caller gets the
/// not-ready error, but the change stays in force, since the journal is itself a record of it
/// (seq, time, actor) and `consent.get` shows it. A shared store (fleet mode) notes the change
/// inside its transaction and commits it with the audit entry's reference, so a change whose
/// audit entry could not be written is never committed. The actor is the caller's
/// kernel-reported uid, never a name the caller claims.
extension GuardrailMethods {
    static func registerConsent(into table: inout MethodTable, _ services: DaemonServices, _ state: GuardrailState) {
        table.register("consent.grant") { params, caller throws(RPCError) in
            try params.only(["dataset", "cohort", "purpose", "evidence", "granted_at"], method: "consent.grant")
            let subject = try consentSubject(params)
            if case .dataset(let id) = subject { try requireDataset(id, services: services) }
            let purpose = try consentPurpose(params, services: services)
            let evidence = try params.string("evidence")
            var grantedAt: CedarDatetime?
            if let g = try params.optional("granted_at"), !g.isNull {
                guard case .string(let s) = g, let d = try? CedarDatetime.parse(s) else {
                    throw .invalidParams(field: "params.granted_at", "expected a date \"YYYY-MM-DD\" or an RFC 3339 UTC time")
                }
                grantedAt = d
            }
            let now = CedarDatetime.daemonNow(services.clock())
            if let g = grantedAt, now < g {
                // A bad value, not a conflict with the recorded state: say which field.
                throw .invalidParams(field: "params.granted_at", "\(g.description) is in the future; a consent is recorded once it has been given")
            }
            let store = try open(state)
            let record = try commit { () throws(ConsentStoreError) in
                try store.grant(subject, purpose: purpose, evidence: evidence, actor: actor(caller),
                                now: now, grantedAt: grantedAt, audit: auditHook(services, caller, store))
            }
            return .object(JSONObject(["recorded": .bool(true), "consent": record.json]))
        }
        table.register("consent.withdraw") { params, caller throws(RPCError) in
            try params.only(["dataset", "cohort", "purpose"], method: "consent.withdraw")
            let subject = try consentSubject(params)
            let purpose = try params.string("purpose")
            let store = try open(state)
            let record = try commit { () throws(ConsentStoreError) in
                try store.withdraw(subject, purpose: purpose, actor: actor(caller), now: .daemonNow(services.clock()),
                                   audit: auditHook(services, caller, store))
            }
            return .object(JSONObject(["recorded": .bool(true), "consent": record.json]))
        }
        table.register("consent.get") { params, _ throws(RPCError) in
            try params.only(["dataset", "cohort", "purpose"], method: "consent.get")
            let subject = try consentSubject(params)
            let purpose = try params.optional("purpose").flatMap { j throws(RPCError) -> String? in
                if j.isNull { return nil }
                guard case .string(let s) = j else { throw .invalidParams(field: "params.purpose", "expected a string, got \(j.kindName)") }
                return s
            }
            let store = try open(state)
            let snap = try state.reportableSnapshot()
            let records = purpose.map { snap.records(subject, purpose: $0) } ?? snap.records(subject)
            let history = store.history(subject.id).filter { c in
                switch c.op {
                case .grant(let s, let p, _, _), .withdraw(let s, let p):
                    s == subject && (purpose.map { p.scalarEquals($0) } ?? true)
                case .holdSet, .holdRelease: false
                }
            }
            return .object(JSONObject([
                "subject": .object(JSONObject([JSONObject.Member(key: subject.kind, value: .string(subject.id))])),
                "consents": .array(records.map(\.json)),
                "history": .array(history.map(\.historyJSON)),
            ]))
        }
        table.register("hold.set") { params, caller throws(RPCError) in
            try params.only(["dataset", "matter", "reason"], method: "hold.set")
            let dataset = try params.string("dataset"), matter = try params.string("matter"), reason = try params.string("reason")
            try requireDataset(dataset, services: services)
            let store = try open(state)
            let hold = try commit { () throws(ConsentStoreError) in
                try store.setHold(dataset: dataset, matter: matter, reason: reason, actor: actor(caller),
                                  now: .daemonNow(services.clock()), audit: auditHook(services, caller, store))
            }
            return .object(JSONObject(["recorded": .bool(true), "hold": hold.json,
                                       "holds": .array(store.snapshot.holds(dataset: dataset).map(\.json))]))
        }
        table.register("hold.release") { params, caller throws(RPCError) in
            try params.only(["dataset", "matter", "reason"], method: "hold.release")
            let dataset = try params.string("dataset"), matter = try params.string("matter"), reason = try params.string("reason")
            let store = try open(state)
            try commit { () throws(ConsentStoreError) in
                try store.releaseHold(dataset: dataset, matter: matter, reason: reason, actor: actor(caller),
                                      now: .daemonNow(services.clock()), audit: auditHook(services, caller, store))
            }
            return .object(JSONObject(["recorded": .bool(true),
                                       "holds": .array(store.snapshot.holds(dataset: dataset).map(\.json))]))
        }
    }

    /// Notes a change to the audit log as the store asks: the method, the caller, the subject and
    /// what changed (with a shared store, also the change's seq there), and returns where the
    /// entry landed.
    static func auditHook(_ services: DaemonServices, _ caller: CallContext, _ store: any StateStore) -> StateAuditHook {
        { change throws(ConsentStoreError) in
            let subject: String
            var details = JSONObject()
            switch change.op {
            case .grant(let s, let purpose, let grantedAt, let evidence):
                subject = "\(s.kind):\(s.id)"
                details = JSONObject(["purpose": .string(purpose), "granted_at": .string(grantedAt.description),
                                      "evidence": .string(evidence)])
            case .withdraw(let s, let purpose):
                subject = "\(s.kind):\(s.id)"
                details = JSONObject(["purpose": .string(purpose), "withdrawn_at": .string(change.at.description)])
            case .holdSet(let d, let matter, let reason), .holdRelease(let d, let matter, let reason):
                subject = "dataset:\(d)"
                details = JSONObject(["matter": .string(matter), "reason": .string(reason)])
            }
            if store.isShared { details.append("store_seq", .int(change.seq)) }
            do throws(RPCError) {
                return try services.noteReferenced(.change(method: change.op.name, caller: caller, subject: subject,
                                                           details: .object(details)))
            } catch {
                throw .audit(error.message)
            }
        }
    }

    static func actor(_ caller: CallContext) -> String { "uid:\(caller.uid)" }

    /// A hold or a dataset consent on a misspelt id would protect nothing and look as if it
    /// did, so the dataset must be a data entity of the loaded folder. (Releasing is not
    /// checked: a dataset removed from entities.json may still have a hold to release.)
    static func requireDataset(_ id: String, services: DaemonServices) throws(RPCError) {
        let snapshot = try services.readySnapshot()
        let found: DatasetAttributes?
        do throws(Denial) { found = try dataset(id, in: snapshot.entities) } catch { found = nil }
        guard found != nil || snapshot.entities.entry(EntityUID(datasetType, id)) != nil else {
            throw .invalidParams(field: "params.dataset", "no data entity Dataset::\"\(id)\" in entities.json")
        }
    }

    static func open(_ state: GuardrailState) throws(RPCError) -> any StateStore {
        guard let store = try state.consentStore() else {
            throw .notReady("the consent and hold store needs a state directory: start custos serve with --state DIR")
        }
        return store
    }

    static func commit<T>(_ body: () throws(ConsentStoreError) -> T) throws(RPCError) -> T {
        do { return try body() } catch {
            switch error {
            case .invalid(let m): throw RPCError(code: conflictCode, message: "conflict: \(m); nothing was changed")
            // Already the not-ready message of the audit log (`DaemonServices.note`).
            case .audit(let m): throw RPCError(code: RPCError.notReadyCode, message: m)
            case .failed, .io, .corrupt, .unavailable: throw .notReady(error.description)
            }
        }
    }

    /// Exactly one of `dataset` and `cohort`.
    static func consentSubject(_ params: Params) throws(RPCError) -> ConsentSubject {
        let d = try params.optional("dataset"), c = try params.optional("cohort")
        switch (d, c) {
        case (.string(let s)?, nil): return .dataset(s)
        case (nil, .string(let s)?): return .cohort(s)
        case (nil, nil): throw .invalidParams(field: "params.dataset", "missing: name the dataset or the cohort whose consent this is")
        case (_?, _?): throw .invalidParams(field: "params.cohort", "give either dataset or cohort, not both")
        case (let v?, nil): throw .invalidParams(field: "params.dataset", "expected a string, got \(v.kindName)")
        case (nil, let v?): throw .invalidParams(field: "params.cohort", "expected a string, got \(v.kindName)")
        }
    }

    /// A purpose must be configured and consent-based: consent recorded for a purpose on
    /// another legal basis would never be read, which hides the mistake.
    static func consentPurpose(_ params: Params, services: DaemonServices) throws(RPCError) -> String {
        let purpose = try params.string("purpose")
        let snapshot = try services.readySnapshot()
        guard snapshot.guardrails.status.isActive, let purposes = snapshot.guardrails.purposes else { return purpose }
        guard let p = purposes.purposes.first(where: { $0.key.scalarEquals(purpose) })?.value else {
            throw .invalidParams(field: "params.purpose", "\"\(purpose)\" is not in guardrails/purposes.json")
        }
        guard p.consentBased else {
            throw .invalidParams(field: "params.purpose",
                                 "\"\(purpose)\" rests on \(p.legalBasis.rawValue), not consent; consent records are not used for it")
        }
        return purpose
    }
}

extension ConsentRecord {
    var json: JSON {
        .object(JSONObject([
            "subject": .object(JSONObject([JSONObject.Member(key: subject.kind, value: .string(subject.id))])),
            "purpose": .string(purpose),
            "granted_at": .string(grantedAt.description),
            "withdrawn_at": withdrawnAt.map { .string($0.description) } ?? .null,
            "evidence": .string(evidence),
            "granted_by": .string(grantedBy),
            "withdrawn_by": withdrawnBy.map { .string($0) } ?? .null,
        ]))
    }
}

extension HoldRecord {
    var json: JSON {
        .object(JSONObject(["dataset": .string(dataset), "matter": .string(matter), "reason": .string(reason),
                            "set_at": .string(setAt.description), "set_by": .string(setBy)]))
    }
}

extension JournalChange {
    /// A journal line for `consent.get`, with the time written out rather than in milliseconds.
    var historyJSON: JSON {
        guard case .object(var o) = json else { return json }
        o.members = o.members.map { m in
            if m.key == "at" || m.key == "granted_at", case .int(let ms) = m.value {
                return JSONObject.Member(key: m.key, value: .string(CedarDatetime(millisecondsSinceEpoch: ms).description))
            }
            return m
        }
        return .object(o)
    }
}
