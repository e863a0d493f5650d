import Cedar

/// Where an audited change landed in the audit log of the daemon that accepted it: the entry's
/// decision id and its seq. A shared store keeps it with the change, so every change in the
/// store names the log entry that records who made it.
public struct StateAuditReference: Sendable, Hashable {
    public var decisionID: String
    public var seq: UInt64

    public init(decisionID: String, seq: UInt64) {
        self.decisionID = decisionID
        self.seq = seq
    }
}

/// Records a change in the audit log. A store calls it once per change, with the change as it
/// will be stored (its `seq` is the store's): the embedded journal after its write, a shared
/// store inside its transaction, before the commit, so that a change whose audit entry could not
/// be written is never committed there. Nil when the daemon runs without an audit log.
public typealias StateAuditHook = (JournalChange) throws(ConsentStoreError) -> StateAuditReference?

/// How the daemon's consent and hold state is kept: the embedded journal of one state folder
/// (`ConsentStore`, the default), or a store several daemons share (fleet mode, docs/fleet.md).
///
/// Decisions read `snapshot`, a value; changes go through `commit`, which validates the change
/// against the newest state, makes it durable, calls the audit hook and returns the state
/// after it. The checks of what may change (`grant`, `withdraw`, `setHold`, `releaseHold`) are
/// shared by both stores, in the extension below, so both refuse exactly the same changes.
public protocol StateStore: AnyObject, Sendable {
    /// The current consents and holds. A shared store whose local copy is older than its bound
    /// sets `ConsentSnapshot.unavailable`.
    var snapshot: ConsentSnapshot { get }
    /// Every change, oldest first; with `id`, only those about that dataset or cohort.
    func history(_ id: String?) -> [JournalChange]
    /// Validates the change `make` returns against the newest state and records it, durably,
    /// calling `audit` for it; returns the state after the change.
    func commit(actor: String, now: CedarDatetime, audit: StateAuditHook,
                _ make: (ConsentSnapshot) throws(ConsentStoreError) -> JournalChange.Op) throws(ConsentStoreError) -> ConsentSnapshot
    /// Whether the state is shared with other daemons (the audit entry then names the store's seq).
    var isShared: Bool { get }
}

extension StateStore {
    /// Records consent of `subject` for `purpose`. `grantedAt` (default `now`) may be earlier
    /// than `now` when the evidence was collected before it was recorded, never later.
    @discardableResult
    public func grant(_ subject: ConsentSubject, purpose: String, evidence: String, actor: String,
                      now: CedarDatetime, grantedAt: CedarDatetime? = nil, audit: StateAuditHook) throws(ConsentStoreError) -> ConsentRecord {
        let g = grantedAt ?? now
        if now < g { throw .invalid("granted_at \(CivilTime.format(g)) is in the future") }
        return try commit(actor: actor, now: now, audit: audit) { snap throws(ConsentStoreError) in
            let earlier = snap.records(subject, purpose: purpose)
            if earlier.contains(where: { $0.withdrawnAt == nil }) {
                throw .invalid("\(subject) already has an open consent for purpose \"\(purpose)\"")
            }
            // Withdrawal is prospective: a new consent cannot be back-dated over it.
            if let w = earlier.compactMap(\.withdrawnAt).max(), g < w {
                throw .invalid("granted_at \(CivilTime.format(g)) precedes the withdrawal of \(CivilTime.format(w)); a new consent starts after it")
            }
            return .grant(subject: subject, purpose: purpose, grantedAt: g, evidence: evidence)
        }.records(subject, purpose: purpose).last!
    }

    /// Withdraws the open consent as of `now`: prospective, earlier processing stays lawful.
    @discardableResult
    public func withdraw(_ subject: ConsentSubject, purpose: String, actor: String,
                         now: CedarDatetime, audit: StateAuditHook) throws(ConsentStoreError) -> ConsentRecord {
        try commit(actor: actor, now: now, audit: audit) { snap throws(ConsentStoreError) in
            guard let open = snap.records(subject, purpose: purpose).last(where: { $0.withdrawnAt == nil }) else {
                throw .invalid("\(subject) has no open consent for purpose \"\(purpose)\" to withdraw")
            }
            if now < open.grantedAt { throw .invalid("withdrawal at \(CivilTime.format(now)) precedes the grant") }
            return .withdraw(subject: subject, purpose: purpose)
        }.records(subject, purpose: purpose).last!
    }

    /// Places a legal hold on `dataset` under `matter`; disposal is suspended until released.
    @discardableResult
    public func setHold(dataset: String, matter: String, reason: String, actor: String,
                        now: CedarDatetime, audit: StateAuditHook) throws(ConsentStoreError) -> HoldRecord {
        try commit(actor: actor, now: now, audit: audit) { snap throws(ConsentStoreError) in
            if snap.holds(dataset: dataset).contains(where: { $0.matter.scalarEquals(matter) }) {
                throw .invalid("dataset \(dataset) is already held under matter \"\(matter)\"")
            }
            return .holdSet(dataset: dataset, matter: matter, reason: reason)
        }.holds(dataset: dataset).last!
    }

    /// Releases the hold `matter` on `dataset`; the reason is journaled (EU GMP Annex 11 §9).
    public func releaseHold(dataset: String, matter: String, reason: String, actor: String,
                            now: CedarDatetime, audit: StateAuditHook) throws(ConsentStoreError) {
        _ = try commit(actor: actor, now: now, audit: audit) { snap throws(ConsentStoreError) in
            guard let held = snap.holds(dataset: dataset).first(where: { $0.matter.scalarEquals(matter) }) else {
                throw .invalid("dataset \(dataset) has no hold under matter \"\(matter)\"")
            }
            if now < held.setAt {
                throw .invalid("release at \(CivilTime.format(now)) precedes the hold set at \(CivilTime.format(held.setAt))")
            }
            return .holdRelease(dataset: dataset, matter: matter, reason: reason)
        }
    }
}
