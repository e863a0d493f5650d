import AuditLog
import Cedar
import CustosJSON
import CustosServer
import Guardrails
import Glibc
import ReadMostly
import Synchronization

/// How `custos serve` runs its audit log.
public struct AuditRecorderOptions: Sendable {
    public var mode: AuditDurability
    public var checkpoint: CheckpointPolicy
    /// Request context keys whose values are copied into entries. Every other context value
    /// stays out of the log: the log is itself personal data and must hold no clinical payload.
    public var contextAllowList: [String]
    /// `audit.record_requests`: keep in each decision's entry what is needed to decide it
    /// again (`ReplayInput`), for `custos diff --audit`. More personal data in the log.
    public var recordRequests = false
    /// A segment is sealed and the next one started beyond this many bytes, or once its first
    /// entry is `segmentMaxAgeSeconds` old (nil: by size only); sealed segments can be archived.
    public var segmentBytes: Int
    public var segmentMaxAgeSeconds: Int?
    /// Told once, with the reason, when the writer stops for good (a failed write or sync):
    /// the daemon logs it and tells the service manager, while every decision fails closed.
    public var onFailure: (@Sendable (String) -> Void)?

    public init(mode: AuditDurability = .always, checkpoint: CheckpointPolicy = CheckpointPolicy(),
                contextAllowList: [String] = [], segmentBytes: Int = 64 << 20, segmentMaxAgeSeconds: Int? = nil) {
        self.mode = mode
        self.checkpoint = checkpoint
        self.contextAllowList = contextAllowList
        self.segmentBytes = segmentBytes
        self.segmentMaxAgeSeconds = segmentMaxAgeSeconds
        self.onFailure = nil
    }
}

/// Why the audit log could not be opened; the message says what to fix.
public struct AuditRecorderError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The daemon's `DecisionRecorder` over the state folder's audit log.
///
/// Fail closed: the first write or sync error stops the writer for good, so every later
/// record throws (the caller gets the not-ready error), `health` reports the reason, and
/// nothing is retried: after a failed fsync the kernel may have dropped the dirty pages, so a
/// retry that "succeeds" would acknowledge entries that are not on disk.
public final class AuditRecorder: Sendable {
    public let writer: AuditWriter
    public let stateDirectory: String
    private let lockFD: Int32
    private let allowList: [String]
    private let recordRequests: Bool
    private let userNames = ReadMostly<[UInt32: String]>([:])
    private let closed = Atomic<Bool>(false)
    private let own: AuditCaller

    /// Name of the lock file in the log folder; held (flock) for as long as the daemon runs.
    public static let lockFile = "daemon.lock"

    private init(writer: AuditWriter, stateDirectory: String, lockFD: Int32, allowList: [String], recordRequests: Bool) {
        self.writer = writer
        self.stateDirectory = stateDirectory
        self.lockFD = lockFD
        self.allowList = allowList
        self.recordRequests = recordRequests
        let uid = getuid()
        own = AuditCaller(uid: uid, gid: getgid(), pid: getpid(), user: AuditRecorder.lookUpUser(uid) ?? "")
    }

    deinit { if lockFD >= 0 { Glibc.close(lockFD) } }

    /// Opens (creating when missing) `<state>/audit`, its signing key and the log, after taking
    /// the log's lock so two daemons can never write one log.
    public static func open(stateDirectory state: String,
                            options: AuditRecorderOptions = AuditRecorderOptions()) throws(AuditRecorderError) -> AuditRecorder {
        let signer: NoteSigner
        do { signer = try AuditState.loadOrCreateSigner(state: state) } catch {
            throw AuditRecorderError("audit signing key in \(AuditState.logDirectory(state: state)): \(error.description)")
        }
        let dir = AuditState.logDirectory(state: state)
        let lockPath = dir + "/" + lockFile
        let fd = Glibc.open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            throw AuditRecorderError("cannot open \(lockPath): \(String(cString: strerror(errno))); check the state folder's permissions")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            Glibc.close(fd)
            if e == EWOULDBLOCK {
                throw AuditRecorderError("another custos serve is writing the audit log in \(dir): stop it or give this one its own --state")
            }
            throw AuditRecorderError("cannot lock \(lockPath): \(String(cString: strerror(e)))")
        }
        let writer: AuditWriter
        do {
            writer = try AuditWriter.open(stateDirectory: dir, mode: options.mode, checkpointEvery: options.checkpoint,
                                          signer: signer, segmentBytes: options.segmentBytes,
                                          segmentMaxAgeMs: options.segmentMaxAgeSeconds.map { Int64($0) * 1000 },
                                          onFailure: options.onFailure.map { report in { @Sendable error in report(error.description) } })
        } catch {
            Glibc.close(fd)
            switch error {
            case .uncoveredEntries, .checkpointsMissing:
                throw AuditRecorderError("audit log in \(dir) cannot be opened: \(error.description) (`custos audit recover --state \(state) --reason \"...\"`); `custos audit verify --state \(state) --pubkey FILE` shows the rest")
            default:
                break
            }
            throw AuditRecorderError("audit log in \(dir) cannot be opened: \(error.description); run `custos audit verify --state \(state)` to see the damage")
        }
        if let last = writer.openReport.lastEntry { DecisionID.continueAfter(last.decisionID) }
        return AuditRecorder(writer: writer, stateDirectory: state, lockFD: fd, allowList: options.contextAllowList,
                             recordRequests: options.recordRequests)
    }

    /// The hook `DaemonOptions.recorder` takes.
    public var recorder: DecisionRecorder {
        var r = DecisionRecorder(record: { [self] records throws(RecorderError) in try self.keep(&records) },
                                 event: { [self] event throws(RecorderError) in try self.keep(event) },
                                 unavailable: { [self] in self.unavailable },
                                 enqueue: { [self] records throws(RecorderError) in try self.enqueue(&records) },
                                 commit: { [self] index throws(RecorderError) in try self.commit(through: index) })
        r.reference = { [self] event throws(RecorderError) in try self.keepReferenced(event) }
        return r
    }

    /// `keep(event)`, returning the entry's decision id and seq.
    public func keepReferenced(_ event: DaemonEvent) throws(RecorderError) -> (decisionID: String, seq: UInt64) {
        var hi: UInt64 = 0, lo: UInt64 = 0
        let seq: UInt64
        do {
            seq = try writer.append(entry(for: event)) { time, id in
                (hi, lo) = DecisionID.next(milliseconds: time.millisecondsSinceEpoch)
                DecisionID.write(hi: hi, lo: lo, into: id)
            }
        } catch {
            throw RecorderError(error.description)
        }
        return (DecisionID.format(hi: hi, lo: lo), seq)
    }

    /// What opening the log cut or found, for the start entry (nil when nothing).
    public var openNotes: [String] {
        var notes: [String] = []
        let r = writer.openReport
        if r.tornBytesCut > 0 { notes.append("cut a torn final record of \(r.tornBytesCut) bytes (never acknowledged)") }
        if r.tornHistoryBytesCut > 0 {
            notes.append("cut a torn final record of checkpoints.log of \(r.tornHistoryBytesCut) bytes (a history checkpoint whose write was interrupted)")
        }
        if let c = r.uncoveredCut {
            notes.append("cut entries \(c.from)..<\(c.to) (\(c.count)) written after the newest checkpoint and never covered by one (never acknowledged); sha256 of their records \(c.sha256 ?? "")")
        }
        return notes
    }

    /// Why nothing can be recorded (nil while healthy).
    public var unavailable: String? {
        if let f = writer.failureReason { return f.description }
        if closed.load(ordering: .acquiring) { return "the audit log is closed (the daemon is stopping)" }
        return nil
    }

    /// Writes what is queued, signs a final checkpoint and releases the lock.
    public func close() throws(AuditError) {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        defer { _ = flock(lockFD, LOCK_UN) }
        try writer.close()
    }

    // MARK: recording

    /// Returns once the records are as durable as the mode promises: in `always` mode, synced
    /// and covered by a checkpoint. Sets each record's decision id (see `enqueue`).
    public func keep(_ records: inout [DecisionRecord]) throws(RecorderError) {
        if let last = try enqueue(&records) { try commit(through: last) }
    }

    public func keep(_ event: DaemonEvent) throws(RecorderError) {
        do { try writer.append(entry(for: event), stamp: Self.stampID) } catch { throw RecorderError(error.description) }
    }

    /// Queues the records; in `always` mode returns the index to pass to `commit` before any
    /// of their answers leaves, otherwise nil (the mode promises nothing more). Each record's
    /// decision id is made when its entry takes its place in the log, and the entry's time is
    /// read then, so both follow log order however many connections decide at once.
    public func enqueue(_ records: inout [DecisionRecord]) throws(RecorderError) -> UInt64? {
        var last: UInt64? = nil
        for i in records.indices {
            var hi: UInt64 = 0, lo: UInt64 = 0
            do {
                last = try writer.enqueue(entry(for: records[i])) { time, id in
                    (hi, lo) = DecisionID.next(milliseconds: time.millisecondsSinceEpoch)
                    DecisionID.write(hi: hi, lo: lo, into: id)
                }
            } catch {
                throw RecorderError(error.description)
            }
            records[i].decisionID = DecisionID.format(hi: hi, lo: lo)
        }
        return writer.durability == .always ? last : nil
    }

    private static func stampID(_ time: AuditTimestamp, _ id: UnsafeMutableRawBufferPointer) {
        let (hi, lo) = DecisionID.next(milliseconds: time.millisecondsSinceEpoch)
        DecisionID.write(hi: hi, lo: lo, into: id)
    }

    /// Waits until every entry up to `index` is synced.
    public func commit(through index: UInt64) throws(RecorderError) {
        do { try writer.waitDurable(through: index) } catch { throw RecorderError(error.description) }
    }

    // MARK: mapping

    /// The entry for one decision: who asked, what, the answer and why, never a payload.
    public func entry(for r: DecisionRecord) -> AuditEntry {
        let ctx = r.request.context
        // Why: the Cedar policies, then the guardrail codes (a guardrail denial must be as visible
        // in the trail as a forbid), then policies that failed to evaluate.
        var reasons = r.reasons
        for c in r.guardrailCodes { reasons.append("guardrail: " + c) }
        for e in r.errors { reasons.append("error: " + e) }
        for f in r.forbidErrors { reasons.append(CedarVerdict.forbidErrorCode + ": " + f) }
        // Obligations beyond the legal basis (in `basis`): what the allow rests on or requires.
        for o in r.obligations { if let text = Self.obligationReason(o) { reasons.append(text) } }
        // Time and id are set by the writer when the entry takes its place in the log.
        var entry = AuditEntry(onBehalfOf: r.caller.onBehalfOf, AuditEntry(time: AuditTimestamp(millisecondsSinceEpoch: r.decidedAt.milliseconds),
                          decisionID: DecisionID.placeholder, caller: caller(r.caller), method: r.method,
                          principal: r.request.principal.description, action: r.request.action.description,
                          resource: r.request.resource.description,
                          purpose: r.purpose ?? Self.string(ctx, "purpose"),
                          basis: r.basis ?? Self.string(ctx, "legal_basis") ?? Self.string(ctx, "transfer_basis") ?? Self.string(ctx, "basis"),
                          decision: r.decision == .allow ? .allow : .deny, reasons: reasons,
                          policyRevision: r.policyRevision, requestSHA256: Self.requestHash(r.request),
                          context: Self.withPod(allowedContext(ctx), r.pod)))
        if recordRequests { entry.request = ReplayInput.make(r, allowList: allowList) }
        return entry
    }

    /// `obligation: transfer_basis <dataset> -> <destination>: <basis>`, `obligation: dispose
    /// <dataset> expired_at <date>`; nil for `legal_basis`, which is the entry's `basis`.
    static func obligationReason(_ o: Obligation) -> String? {
        switch o {
        case .legalBasis: nil
        case .transferBasis(let d, let dest, let b): "obligation: transfer_basis \(d) -> \(dest): \(b)"
        case .dispose(let d, let at): "obligation: dispose \(d) expired_at \(at)"
        }
    }

    /// The context with the pod of a `place` (`{namespace, name, uid}`) under `pod`.
    static func withPod(_ context: JSONObject?, _ pod: PlacementJob.Pod?) -> JSONObject? {
        guard let pod else { return context }
        var c = context ?? JSONObject()
        c.append("pod", .object(JSONObject([JSONObject.Member(key: "namespace", value: .string(pod.namespace)),
                                            JSONObject.Member(key: "name", value: .string(pod.name)),
                                            JSONObject.Member(key: "uid", value: .string(pod.uid))])))
        return c
    }

    /// The entry for a daemon event. Events have no principal or resource in the Cedar sense:
    /// `principal` names the operating-system caller, `resource` what the event is about.
    public func entry(for event: DaemonEvent) -> AuditEntry {
        // Time and id are set by the writer when the entry takes its place in the log.
        let time = AuditTimestamp.now()
        let id = DecisionID.placeholder
        func make(_ method: String, _ who: AuditCaller, action: String, resource: String, decision: AuditDecision,
                  reasons: [String], revision: String?, hashOf: String, context: JSONObject? = nil) -> AuditEntry {
            AuditEntry(time: time, decisionID: id, caller: who, method: method, principal: Self.principal(who),
                       action: action, resource: resource, decision: decision, reasons: reasons,
                       policyRevision: revision ?? "", requestSHA256: SHA256Digest.hash(hashOf).hex, context: context)
        }
        switch event {
        case .started(let revision):
            return make("daemon.start", own, action: "start", resource: "daemon", decision: .allow,
                        reasons: ["revision " + (revision ?? "none")] + openNotes, revision: revision, hashOf: "daemon.start")
        case .stopped:
            return make("daemon.stop", own, action: "stop", resource: "daemon", decision: .allow,
                        reasons: [], revision: nil, hashOf: "daemon.stop")
        case .policyLoaded(let previous, let revision, let c, let guardrails):
            let who = c.map(caller) ?? own
            var reasons = ["previous " + (previous ?? "none"), "loaded " + revision]
            if !guardrails.isEmpty { reasons.append("guardrails " + guardrails) }
            return make(c == nil ? "policy.load" : "policy.reload", who, action: "load", resource: "policies",
                        decision: .allow, reasons: reasons,
                        revision: revision, hashOf: "policy.load\n" + revision)
        case .guardrailsSwitchedOff(let lost, let reason, let revision, let c):
            let who = c.map(caller) ?? own
            return make(c == nil ? "policy.load" : "policy.reload", who, action: "switch_off", resource: "guardrails",
                        decision: .allow, reasons: lost.map { "switched off " + $0 } + ["reason: " + reason],
                        revision: revision, hashOf: "guardrails.switch_off\n" + revision + "\n" + lost.joined(separator: "\n"))
        case .policyLoadFailed(let kept, let error, let c):
            let who = c.map(caller) ?? own
            return make(c == nil ? "policy.load" : "policy.reload", who, action: "load", resource: "policies",
                        decision: .deny, reasons: ["failed: " + error, "kept " + (kept ?? "none")],
                        revision: kept, hashOf: "policy.load\n" + error)
        case .bundleActivated(let b, let revision, let c):
            var reasons = ["sequence \(b.sequence)", "file \(b.file)", "manifest sha256:\(b.manifestSHA256)",
                           "author " + b.author.label]
            reasons += b.approvers.map { "approved by " + $0.label }
            reasons += ["change ticket " + b.changeTicket, "change reason: " + b.changeReason, "created " + b.created]
            if let r = b.rollbackOf { reasons.append("rollback of sequence \(r)") }
            reasons.append("approvers file sha256:" + b.trustSHA256)
            return make(c == nil ? "policy.load" : "policy.reload", c.map(caller) ?? own, action: "activate",
                        resource: "bundle \(b.sequence)", decision: .allow, reasons: reasons, revision: revision,
                        hashOf: "bundle.activate\n" + b.manifestSHA256)
        case .bundleRejected(let r, let kept, let c):
            var reasons = ["refused: " + r.reason]
            if let s = r.sequence { reasons.append("sequence \(s)") }
            reasons.append("kept " + (kept ?? "none"))
            return make(c == nil ? "policy.load" : "policy.reload", c.map(caller) ?? own, action: "activate",
                        resource: "bundle " + r.file, decision: .deny, reasons: reasons, revision: kept,
                        hashOf: "bundle.reject\n" + r.file + "\n" + r.reason)
        case .refused(let method, let c):
            return make(method, caller(c), action: "call", resource: "method " + method, decision: .deny,
                        reasons: ["refused by the access rules"], revision: nil, hashOf: "refused\n" + method)
        case .refusedPrivilege(let method, let privilege, let c):
            return make(method, caller(c), action: "call", resource: "privilege " + privilege, decision: .deny,
                        reasons: ["refused by the access rules: privilege \(privilege) not granted"], revision: nil,
                        hashOf: "refused\n" + method + "\n" + privilege)
        case .change(let method, let c, let subject, let details):
            var w = JSONWriter()
            w.value(details)
            let detailObject: JSONObject? = if case .object(let o) = details { o } else { nil }
            return make(method, caller(c), action: "change", resource: subject, decision: .allow,
                        reasons: detailObject == nil ? [w.text] : [], revision: nil,
                        hashOf: method + "\n" + subject + "\n" + w.text, context: detailObject)
        }
    }

    private func caller(_ c: CallContext) -> AuditCaller {
        AuditCaller(uid: c.uid, gid: c.gid, pid: c.pid, user: userName(c.uid))
    }

    private static func principal(_ c: AuditCaller) -> String {
        c.user.isEmpty ? "uid \(c.uid)" : "user \(c.user)"
    }

    /// Names are cached per uid: a lookup may read /etc/passwd or ask NSS over the network.
    private func userName(_ uid: UInt32) -> String {
        if let n = userNames.read()[uid] { return n }
        let n = Self.lookUpUser(uid) ?? ""
        userNames.update { $0[uid] = n }
        return n
    }

    private static func lookUpUser(_ uid: UInt32) -> String? {
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buf = [CChar](repeating: 0, count: 4096)
        let rc = getpwuid_r(uid, &pwd, &buf, buf.count, &result)
        guard rc == 0, result != nil, let name = pwd.pw_name else { return nil }
        return String(cString: name)
    }

    private static func string(_ r: CedarRecord, _ key: StaticString) -> String? {
        for f in r.fields where f.key.utf8.elementsEqual(UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)) {
            if case .string(let s) = f.value { return s.description }
            return nil
        }
        return nil
    }

    private func allowedContext(_ r: CedarRecord) -> JSONObject? {
        guard !allowList.isEmpty, !r.fields.isEmpty else { return nil }
        var members: [JSONObject.Member] = []
        for f in r.fields where allowList.contains(where: { $0.utf8.elementsEqual(f.key.utf8) }) {
            members.append(JSONObject.Member(key: f.key, value: f.value.json))
        }
        return members.isEmpty ? nil : JSONObject(members)
    }

    /// SHA-256 of the request's canonical JSON: `{"action","context","principal","resource"}`
    /// with every object's members sorted by UTF-8 bytes, so the same request always hashes the
    /// same whatever member order the caller sent; set elements are sorted by their canonical
    /// bytes. Request-scoped entities are not included. Written directly, without a tree: this
    /// runs for every decision.
    public static func requestHash(_ r: Request) -> String {
        var w = JSONWriter(capacity: 256)
        w.raw("{\"action\":"); writeUID(r.action, &w)
        w.raw(",\"context\":"); writeCanonical(r.context, &w)
        w.raw(",\"principal\":"); writeUID(r.principal, &w)
        w.raw(",\"resource\":"); writeUID(r.resource, &w)
        w.byte(UInt8(ascii: "}"))
        return SHA256Digest.hash(w.bytes).hex
    }

    /// Record fields are kept sorted by Unicode scalars, which is UTF-8 byte order: already
    /// canonical.
    private static func writeCanonical(_ r: CedarRecord, _ w: inout JSONWriter) {
        w.byte(UInt8(ascii: "{"))
        for (i, f) in r.fields.enumerated() {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            w.string(f.key)
            w.byte(UInt8(ascii: ":"))
            writeCanonical(f.value, &w)
        }
        w.byte(UInt8(ascii: "}"))
    }

    private static func writeCanonical(_ v: Value, _ w: inout JSONWriter) {
        switch v {
        case .bool(let b): w.raw(b ? "true" : "false")
        case .long(let i): w.int(i)
        case .string(let s): w.string(s)
        case .entity(let u):
            w.raw("{\"__entity\":"); writeUID(u, &w); w.byte(UInt8(ascii: "}"))
        case .set(let s):
            // A set's storage order depends on hashing, which is seeded per process: sort the
            // elements by their canonical bytes so equal sets hash equal in every run.
            var items: [[UInt8]] = s.elements.map { e in
                var ew = JSONWriter(capacity: 32)
                writeCanonical(e, &ew)
                return ew.bytes
            }
            items.sort { $0.lexicographicallyPrecedes($1) }
            w.byte(UInt8(ascii: "["))
            for (i, e) in items.enumerated() {
                if i > 0 { w.byte(UInt8(ascii: ",")) }
                w.bytes.append(contentsOf: e)
            }
            w.byte(UInt8(ascii: "]"))
        case .record(let r): writeCanonical(r, &w)
        case .decimal, .ipaddr, .datetime, .duration:
            // Rare in a context; their JSON forms nest objects whose members need sorting.
            w.value(canonical(v.json))
        }
    }

    private static func writeUID(_ u: EntityUID, _ w: inout JSONWriter) {
        w.raw("{\"id\":"); w.string(u.id.value)
        w.raw(",\"type\":"); w.string(u.type.description)
        w.byte(UInt8(ascii: "}"))
    }

    private static func canonical(_ v: JSON) -> JSON {
        switch v {
        case .object(let o):
            return .object(JSONObject(o.members.map { JSONObject.Member(key: $0.key, value: canonical($0.value)) }
                .sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }))
        case .array(let a):
            return .array(a.map(canonical))
        default:
            return v
        }
    }
}
