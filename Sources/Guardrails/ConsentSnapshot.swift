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

/// An active legal hold on a dataset, named by its matter (case) reference.
public struct HoldRecord: Sendable, Hashable {
    public var dataset: String
    public var matter: String
    public var reason: String
    public var setAt: CedarDatetime
    public var setBy: String
}

/// The consent and hold state at one moment, as a value: checks are pure functions of it.
public struct ConsentSnapshot: Sendable {
    struct Key: Hashable, Sendable {
        var subject: ConsentSubject
        var purpose: ScalarString
    }
    var consents: [Key: [ConsentRecord]] = [:]
    var holdsByDataset: [ScalarString: [HoldRecord]] = [:]

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

    public func holds(dataset: String) -> [HoldRecord] { holdsByDataset[ScalarString(dataset)] ?? [] }

    /// Hold matter references for a dataset, as retention checks take them.
    public func holdMatters(dataset: String) -> [String] { holds(dataset: dataset).map(\.matter) }

    mutating func apply(_ change: JournalChange) {
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
            let key = ScalarString(dataset)
            holdsByDataset[key]?.removeAll { $0.matter.scalarEquals(matter) }
            if holdsByDataset[key]?.isEmpty == true { holdsByDataset[key] = nil }
        }
    }
}
