import Cedar

/// What the retention schedules say about one dataset at one moment (facts.md §3).
public struct RetentionStatus: Sendable, Hashable {
    public struct Rule: Sendable, Hashable {
        public var schedule: RetentionSchedule
        /// When the trigger event happened; nil while it has not been recorded.
        public var triggeredAt: CedarDatetime?
        /// trigger + period; nil while the trigger is unknown (the data is retained).
        public var expiry: CedarDatetime?
    }
    public var dataset: String
    public var retentionClass: String?
    public var rules: [Rule]
    /// max over the rules of trigger + period; nil when there is no rule or a trigger is unknown.
    public var expiry: CedarDatetime?
    /// Active hold matters (the entity's own `legal_hold` appears as `entity`).
    public var holds: [String]
    /// now >= expiry and no hold: disposal is a duty.
    public var disposalDue: Bool
    /// now >= expiry (held or not).
    public var expired: Bool
}

/// Retention and legal hold: nothing deleted while it must be kept, nothing used past disposal.
public enum RetentionCheck {
    /// Whether an action uses the data, reads its metadata only, or deletes it.
    public typealias Operation = ActionKind

    public static func status(_ data: DatasetAttributes, config: GuardrailConfig, holds: [String],
                              now: CedarDatetime) -> RetentionStatus {
        var allHolds = holds
        if data.legalHold { allHolds.insert("entity", at: 0) }
        var rules: [RetentionStatus.Rule] = []
        var expiry: CedarDatetime?
        var unknown = false
        if let cls = data.retentionClass, let retention = config.retention {
            let eea = config.regions?.eea ?? Jurisdictions.eea
            for s in retention.schedules where s.applies(dataClass: cls, residency: data.residency, eea: eea) {
                let at = data.retentionTriggers[s.trigger]
                let e = at.flatMap { CivilTime.adding(s.period, to: $0) }
                if e == nil { unknown = true }
                if let e, expiry == nil || expiry! < e { expiry = e }
                rules.append(.init(schedule: s, triggeredAt: at, expiry: e))
            }
        }
        // A trigger not yet recorded means retain: the maximum is unknown, so there is no expiry.
        if unknown || rules.isEmpty { expiry = nil }
        let expired = expiry.map { !(now < $0) } ?? false
        return RetentionStatus(dataset: data.id, retentionClass: data.retentionClass, rules: rules, expiry: expiry,
                               holds: allHolds, disposalDue: expired && allHolds.isEmpty, expired: expired)
    }

    /// Whether any schedule covers the dataset and, if every trigger is recorded, when the
    /// longest one ends: `status` without the per-rule detail, for the per-decision path (a
    /// use of data that is not expired needs nothing else).
    static func expiry(_ data: DatasetAttributes, class cls: String, config: GuardrailConfig) -> (scheduled: Bool, expiry: CedarDatetime?) {
        guard let retention = config.retention else { return (false, nil) }
        let eea = config.regions?.eea ?? Jurisdictions.eea
        var scheduled = false
        var expiry: CedarDatetime? = nil
        for i in retention.schedules.indices where retention.schedules[i].applies(dataClass: cls, residency: data.residency, eea: eea) {
            guard let at = data.retentionTriggers[retention.schedules[i].trigger],
                  let e = CivilTime.adding(retention.schedules[i].period, to: at) else {
                // A trigger not yet recorded means retain: the maximum is unknown.
                return (true, nil)
            }
            scheduled = true
            if expiry == nil || expiry! < e { expiry = e }
        }
        return (scheduled, expiry)
    }

    /// `holdsUnavailable` says why the holds of the state store cannot be relied on (a shared
    /// store's stale view, `ConsentSnapshot.unavailable`): a delete of scheduled data reads the
    /// holds to decide, so it is then denied `state.stale`; a use is decided by the expiry alone.
    public static func check(_ data: DatasetAttributes, operation: Operation, config: GuardrailConfig,
                             holds: [String], holdsUnavailable: String? = nil, now: CedarDatetime) -> GuardrailOutcome {
        // A metadata read processes nothing of the data, so neither its expiry nor a hold matters.
        guard config.status.isActive, operation != .metadata else { return GuardrailOutcome() }
        guard let cls = data.retentionClass else {
            // No class, no schedule: nothing expires and nothing must be kept for a period. A
            // legal hold still suspends disposal (facts.md §3): one recorded with `hold.set` or
            // on the entity must not protect nothing while the daemon said it was recorded.
            guard operation == .delete else { return GuardrailOutcome() }
            var denials: [Denial] = []
            if let why = holdsUnavailable {
                denials.append(Denial(.stateStale, "a delete of dataset \(data.id) depends on its legal holds, which cannot be checked: \(why)"))
            }
            let held = (data.legalHold ? ["entity"] : []) + holds
            if !held.isEmpty {
                denials.append(Denial(.retentionLegalHold, "dataset \(data.id) is under legal hold \(held.joined(separator: ", "))"))
            }
            return GuardrailOutcome(denials: denials)
        }
        if operation == .use {
            let (scheduled, expiry) = Self.expiry(data, class: cls, config: config)
            guard scheduled, let e = expiry, !(now < e) else { return GuardrailOutcome() }
        }
        let st = status(data, config: config, holds: holds, now: now)
        if st.rules.isEmpty {
            // An unscheduled class cannot be proven deletable; use is not affected.
            guard operation == .delete else { return GuardrailOutcome() }
            return GuardrailOutcome(denials: [Denial(.retentionUnknownClass,
                                    "dataset \(data.id) has retention class \"\(cls)\" and guardrails/retention.json has no schedule for it in jurisdiction \(data.residency ?? "(none)")")])
        }
        switch operation {
        case .use, .metadata:
            guard st.expired, let e = st.expiry else { return GuardrailOutcome() }
            let held = st.holds.isEmpty ? "" : " (kept only because of legal hold \(st.holds.joined(separator: ", ")))"
            return GuardrailOutcome(denials: [Denial(.retentionExpired,
                                    "dataset \(data.id) passed its retention expiry \(CivilTime.format(e)) and may no longer be processed\(held)")])
        case .delete:
            var denials: [Denial] = []
            if let why = holdsUnavailable {
                denials.append(Denial(.stateStale, "a delete of dataset \(data.id) depends on its legal holds, which cannot be checked: \(why)"))
            }
            if !st.holds.isEmpty {
                denials.append(Denial(.retentionLegalHold, "dataset \(data.id) is under legal hold \(st.holds.joined(separator: ", "))"))
            }
            if let e = st.expiry {
                if !st.expired {
                    denials.append(Denial(.retentionActive, "dataset \(data.id) must be retained until \(CivilTime.format(e)) (\(ruleSummary(st)))"))
                }
            } else {
                let pending = st.rules.filter { $0.triggeredAt == nil }.map { "\($0.schedule.id) waits for \($0.schedule.trigger)" }
                denials.append(Denial(.retentionActive, "dataset \(data.id) is retained: trigger event not recorded (\(pending.joined(separator: ", ")))"))
            }
            if !denials.isEmpty { return GuardrailOutcome(denials: denials) }
            return GuardrailOutcome(obligations: [.dispose(dataset: data.id, expiredAt: CivilTime.format(st.expiry!))])
        }
    }

    static func ruleSummary(_ st: RetentionStatus) -> String {
        st.rules.map { "\($0.schedule.id): \($0.schedule.period) after \($0.schedule.trigger)" }.joined(separator: ", ")
    }

    /// The datasets due for disposal as of `asOf`, in input order.
    public static func dueForDisposal(_ datasets: [DatasetAttributes], config: GuardrailConfig,
                                      holds: (String) -> [String], asOf: CedarDatetime) -> [RetentionStatus] {
        datasets.compactMap { d in
            let st = status(d, config: config, holds: holds(d.id), now: asOf)
            return st.disposalDue ? st : nil
        }
    }
}
