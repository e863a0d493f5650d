import Cedar

/// Whose consent a record is: one dataset's subjects, or a whole cohort.
public enum ConsentSubject: Sendable, Hashable, CustomStringConvertible {
    case dataset(String)
    case cohort(String)

    public var kind: String { if case .dataset = self { "dataset" } else { "cohort" } }
    public var id: String { switch self { case .dataset(let s), .cohort(let s): s } }
    public var description: String { "\(kind) \(id)" }

    // Ids are Cedar strings: equal only when their Unicode scalars are.
    public static func == (a: ConsentSubject, b: ConsentSubject) -> Bool {
        switch (a, b) {
        case (.dataset(let x), .dataset(let y)), (.cohort(let x), .cohort(let y)): x.scalarEquals(y)
        default: false
        }
    }

    public func hash(into h: inout Hasher) {
        h.combine(kind)
        h.combine(ScalarString(id))
    }
}

/// One consent interval (facts.md §2): valid for granted_at <= t < withdrawn_at.
public struct ConsentRecord: Sendable, Hashable {
    public var subject: ConsentSubject
    public var purpose: String
    public var grantedAt: CedarDatetime
    public var withdrawnAt: CedarDatetime?
    public var evidence: String
    public var grantedBy: String
    public var withdrawnBy: String?

    public func covers(_ t: CedarDatetime) -> Bool {
        !(t < grantedAt) && (withdrawnAt.map { t < $0 } ?? true)
    }
}

/// A legal hold on a dataset, named by its matter (case) reference.
public struct HoldRecord: Sendable, Hashable {
    public var dataset: String
    public var matter: String
    public var reason: String
    public var setAt: CedarDatetime
    public var setBy: String
    /// When the hold was released; nil while it is in force.
    public var releasedAt: CedarDatetime? = nil

    /// Whether the hold suspends disposal at `t`. A hold counts for every time before its
    /// release, including times before it was set: nothing is ever decided as if a recorded
    /// hold did not exist yet (a wall clock can be set back; a suite may ask about an earlier
    /// time). A release counts from its own time on, so a question about a moment before the
    /// release still sees the hold (facts.md §3: a hold suspends disposal until released).
    public func inForce(at t: CedarDatetime) -> Bool {
        releasedAt.map { t < $0 } ?? true
    }
}

/// The consent and hold state at one moment, as a value: checks are pure functions of it.
public struct ConsentSnapshot: Sendable {
    struct Key: Hashable, Sendable {
        var subject: ConsentSubject
        var purpose: ScalarString
    }
    var consents: [Key: [ConsentRecord]] = [:]
    var holdsByDataset: [ScalarString: [HoldRecord]] = [:]
    /// Why this view may not be relied on, nil when it may: set by a shared store whose local
    /// copy is older than its bound (`state.stale`). Every check that reads consent records or
    /// holds to decide looks at it first (`ConsentCheck`, `RetentionCheck`, `TransferCheck`),
    /// so exactly the decisions that depend on the state deny, and the others go on.
    public var unavailable: String? = nil

    public static let empty = ConsentSnapshot()

    public init() {}

    public enum State: Sendable, Hashable {
        case granted
        case withdrawn(at: CedarDatetime, subject: ConsentSubject)
        case none
    }

    public func records(_ subject: ConsentSubject, purpose: String) -> [ConsentRecord] {
        consents[Key(subject: subject, purpose: ScalarString(purpose))] ?? []
    }

    /// Every record of `subject`, any purpose.
    public func records(_ subject: ConsentSubject) -> [ConsentRecord] {
        consents.filter { $0.key.subject == subject }.flatMap(\.value).sorted { $0.grantedAt < $1.grantedAt }
    }

    /// The state at `t` for a dataset and its cohort. A withdrawal at either level stops the
    /// purpose even if the other level still grants: the narrower wish of the subject wins.
    public func consentState(dataset: String, cohort: String?, purpose: String, at t: CedarDatetime) -> State {
        var granted = false
        var subjects: [ConsentSubject] = [.dataset(dataset)]
        if let c = cohort { subjects.append(.cohort(c)) }
        for s in subjects {
            let recs = records(s, purpose: purpose)
            if recs.contains(where: { $0.covers(t) }) { granted = true; continue }
            // Withdrawn: the latest record that began at or before t ended at or before t.
            if let last = recs.filter({ !(t < $0.grantedAt) }).max(by: { $0.grantedAt < $1.grantedAt }),
               let w = last.withdrawnAt {
                return .withdrawn(at: w, subject: s)
            }
        }
        return granted ? .granted : .none
    }

    /// The holds on a dataset not released yet, in the order they were set.
    public func holds(dataset: String) -> [HoldRecord] {
        (holdsByDataset[ScalarString(dataset)] ?? []).filter { $0.releasedAt == nil }
    }

    /// Hold matter references in force at `t` for a dataset, as retention checks take them
    /// (see `HoldRecord.inForce(at:)`).
    public func holdMatters(dataset: String, at t: CedarDatetime) -> [String] {
        guard let all = holdsByDataset[ScalarString(dataset)] else { return [] }
        return all.compactMap { $0.inForce(at: t) ? $0.matter : nil }
    }

    /// Applies one change of the journal (or of a shared store), in sequence order.
    public mutating func apply(_ change: JournalChange) {
        switch change.op {
        case .grant(let subject, let purpose, let grantedAt, let evidence):
            consents[Key(subject: subject, purpose: ScalarString(purpose)), default: []].append(
                ConsentRecord(subject: subject, purpose: purpose, grantedAt: grantedAt, withdrawnAt: nil,
                              evidence: evidence, grantedBy: change.actor, withdrawnBy: nil))
        case .withdraw(let subject, let purpose):
            let key = Key(subject: subject, purpose: ScalarString(purpose))
            if var recs = consents[key], let i = recs.lastIndex(where: { $0.withdrawnAt == nil }) {
                recs[i].withdrawnAt = change.at
                recs[i].withdrawnBy = change.actor
                consents[key] = recs
            }
        case .holdSet(let dataset, let matter, let reason):
            holdsByDataset[ScalarString(dataset), default: []].append(
                HoldRecord(dataset: dataset, matter: matter, reason: reason, setAt: change.at, setBy: change.actor))
        case .holdRelease(let dataset, let matter, _):
            // Kept with its release time: a decision about an earlier moment still sees it.
            let key = ScalarString(dataset)
            if var hs = holdsByDataset[key], let i = hs.lastIndex(where: { $0.releasedAt == nil && $0.matter.scalarEquals(matter) }) {
                hs[i].releasedAt = change.at
                holdsByDataset[key] = hs
            }
        }
    }
}
