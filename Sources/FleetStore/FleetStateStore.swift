import Cedar
import CustosJSON
import Dispatch
import Foundation  // Thread only
import Glibc
import Guardrails
import ReadMostly
import Synchronization

/// How a daemon uses the shared store (the `state` member of its `--config`, docs/fleet.md).
public struct FleetOptions: Sendable {
    /// libpq connection string: `postgresql://...` or `key=value` words, never with a password.
    public var conninfo: String
    /// How old the local copy may be before decisions that depend on it deny `state.stale` and
    /// changes are refused.
    public var maxStalenessMs: Int
    /// How often the daemon publishes its newest signed checkpoint to the witness table.
    public var witnessIntervalMs: Int
    /// Who this daemon is in the store: its audit log's name (the checkpoints' origin), else its
    /// host name.
    public var daemon: String
    /// The longest any one statement may take before the connection is given up.
    public var queryTimeoutMs: Int

    public static let defaultMaxStalenessMs = 5000
    public static let defaultWitnessIntervalMs = 1000

    public init(conninfo: String, maxStalenessMs: Int = FleetOptions.defaultMaxStalenessMs,
                witnessIntervalMs: Int = FleetOptions.defaultWitnessIntervalMs, daemon: String,
                queryTimeoutMs: Int = 10_000) {
        self.conninfo = conninfo; self.maxStalenessMs = maxStalenessMs
        self.witnessIntervalMs = witnessIntervalMs; self.daemon = daemon; self.queryTimeoutMs = queryTimeoutMs
    }
}

/// A signed checkpoint as the witness table holds it.
public struct WitnessedCheckpoint: Sendable, Hashable {
    /// The log: its verifier key line (`name+keyid+key`), so two logs of one name (two daemons
    /// on one host keep the default `custos/<hostname>`) never mix.
    public var log: String
    public var size: UInt64
    /// base64 of the root, as the checkpoint body writes it.
    public var root: String
    /// The whole signed note.
    public var note: String
    /// Who published it (`FleetOptions.daemon`) and when (the database's clock).
    public var daemon: String
    public var publishedAt: String

    public init(log: String, size: UInt64, root: String, note: String, daemon: String = "", publishedAt: String = "") {
        self.log = log; self.size = size; self.root = root; self.note = note
        self.daemon = daemon; self.publishedAt = publishedAt
    }

    /// One line of `custos audit witness` output, and of the dump `verify --witness FILE` reads.
    public var json: JSON {
        .object(JSONObject([
            JSONObject.Member(key: "log", value: .string(log)),
            JSONObject.Member(key: "size", value: .int(Int64(clamping: size))),
            JSONObject.Member(key: "root", value: .string(root)),
            JSONObject.Member(key: "daemon", value: .string(daemon)),
            JSONObject.Member(key: "published_at", value: .string(publishedAt)),
            JSONObject.Member(key: "note", value: .string(note)),
        ]))
    }

    public init?(json: JSON) {
        guard let log = json["log"]?.stringValue, let size = json["size"]?.intValue, size >= 0,
              let root = json["root"]?.stringValue, let note = json["note"]?.stringValue else { return nil }
        self.init(log: log, size: UInt64(size), root: root, note: note,
                  daemon: json["daemon"]?.stringValue ?? "", publishedAt: json["published_at"]?.stringValue ?? "")
    }
}

/// What `health` says about the shared store.
public struct FleetStatus: Sendable {
    /// The newest change applied locally.
    public var seq: Int64
    /// Age of the local copy: time since the start of the last complete catch-up with the store.
    public var ageMs: Int64
    public var maxStalenessMs: Int
    public var stale: Bool { ageMs > Int64(maxStalenessMs) }
    /// Whether the listening connection is up.
    public var connected: Bool
    /// The last error met talking to the store, cleared by the next success.
    public var lastError: String?
    /// The size of the newest checkpoint published to the witness table by this daemon.
    public var witnessedSize: UInt64?
    public var witnessError: String?
}

/// Consent and holds shared by several daemons through PostgreSQL (fleet mode, docs/fleet.md).
///
/// Every daemon keeps the whole state locally, as the embedded store does, and decides from it
/// without a round trip. A background thread owns a listening connection: `LISTEN` wakes it when
/// another daemon commits a change, and it then reads every row after the newest one applied
/// (the catch-up), which also runs on every heartbeat and after every reconnect, so a lost
/// notification or a gap costs latency, never a change. The copy's age is the time since the
/// start of the last catch-up that reached the end; past `maxStalenessMs` the snapshot is marked
/// unavailable (decisions that depend on it deny `state.stale`) and changes are refused.
///
/// Changes go through a second connection, one at a time per daemon: in one transaction each,
/// serialised across daemons by an advisory lock, the change is checked against the state
/// caught up to the newest row, its audit entry written (`StateAuditHook`), and the row inserted
/// with that entry's reference and a `NOTIFY`; the caller hears of it only after the commit.
public final class FleetStateStore: StateStore, @unchecked Sendable {
    public let options: FleetOptions

    private struct Local {
        var seq: Int64 = 0
        var snapshot = ConsentSnapshot()
        var history: [JournalChange] = []
        /// Set when the store holds something this daemon cannot apply (a row that does not
        /// parse, a gap in the numbering): the copy is never fresh again until restarted.
        var broken: String?
    }

    private let local = Mutex(Local())
    private let published = ReadMostly(ConsentSnapshot())
    /// Monotonic milliseconds at the start of the last complete catch-up; 0 before the first.
    private let freshAt = Atomic<Int64>(0)
    private let writer: Mutex<PGConnection?>
    private let lastError = Mutex<String?>(nil)
    private let connected = Atomic<Bool>(false)

    // The listener thread.
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let stopping = Atomic<Bool>(false)
    private let stopped = DispatchSemaphore(value: 0)
    private let witnessSource = Mutex<(@Sendable () -> WitnessedCheckpoint?)?>(nil)
    private let witnessed = Mutex<(size: UInt64?, error: String?)>((nil, nil))

    /// Connects, creates the tables when missing, loads every change, and starts the listener.
    /// Throws when the store cannot be reached: a daemon configured for a shared store does not
    /// start without it (docs/fleet.md, "Starting").
    public init(_ options: FleetOptions) throws(PGError) {
        self.options = options
        let c = try PGConnection(conninfo: options.conninfo)
        try FleetSchema.ensure(c, timeoutMs: options.queryTimeoutMs)
        writer = Mutex(c)
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw PGError("cannot create a pipe: \(String(cString: strerror(errno)))") }
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        wakeRead = fds[0]; wakeWrite = fds[1]
        let t0 = PGConnection.monotonicMs()
        try writer.withLock { w throws(PGError) in try catchUp(w!) }
        freshAt.store(max(1, t0), ordering: .releasing)
        let thread = Thread { [self] in listen() }
        thread.name = "custos-fleet-listener"
        thread.start()
    }

    deinit {
        Glibc.close(wakeRead); Glibc.close(wakeWrite)
    }

    public var isShared: Bool { true }

    // MARK: reading

    public var snapshot: ConsentSnapshot {
        let fresh = freshAt.load(ordering: .acquiring)
        var s = published.read()
        let age = PGConnection.monotonicMs() - fresh
        if age > Int64(options.maxStalenessMs) || fresh == 0 { s.unavailable = staleReason(ageMs: age) }
        return s
    }

    public func history(_ id: String?) -> [JournalChange] {
        local.withLock { l in id.map { i in l.history.filter { $0.concerns(i) } } ?? l.history }
    }

    public var status: FleetStatus {
        let fresh = freshAt.load(ordering: .acquiring)
        let w = witnessed.withLock { $0 }
        return FleetStatus(seq: local.withLock { $0.seq }, ageMs: PGConnection.monotonicMs() - fresh,
                           maxStalenessMs: options.maxStalenessMs, connected: connected.load(ordering: .relaxed),
                           lastError: local.withLock { $0.broken } ?? lastError.withLock { $0 },
                           witnessedSize: w.size, witnessError: w.error)
    }

    private func staleReason(ageMs: Int64) -> String {
        let why = local.withLock { $0.broken } ?? lastError.withLock { $0 } ?? "no contact with it since"
        return "the daemon's copy of the shared state store is \(Self.seconds(ageMs)) old, beyond max_staleness \(Self.seconds(Int64(options.maxStalenessMs))) (\(why)); it may miss a withdrawal or a hold made on another daemon"
    }

    static func seconds(_ ms: Int64) -> String {
        let s = Double(ms) / 1000
        return s < 10 ? String(format: "%.1f s", s) : "\(ms / 1000) s"
    }

    // MARK: changes

    public func commit(actor: String, now: CedarDatetime, audit: StateAuditHook,
                       _ make: (ConsentSnapshot) throws(ConsentStoreError) -> JournalChange.Op) throws(ConsentStoreError) -> ConsentSnapshot {
        if let why = snapshot.unavailable { throw .unavailable("the change is refused: \(why)") }
        let timeout = options.queryTimeoutMs
        return try writer.withLock { w throws(ConsentStoreError) -> ConsentSnapshot in
            // A connection the server dropped (a restart) looks open until it is used: one retry
            // on a fresh connection, as long as nothing was audited yet.
            for attempt in 0..<2 {
                do throws(PGError) {
                    if w == nil || !w!.isOpen { w = try PGConnection(conninfo: options.conninfo) }
                } catch {
                    noteError(error.message)
                    throw .unavailable("the change is refused: \(error.message)")
                }
                let c = w!
                var audited: StateAuditReference? = nil
                var auditAttempted = false
                do {
                    try c.query("BEGIN", timeoutMs: timeout)
                    try c.query("SELECT pg_advisory_xact_lock($1)", [String(FleetSchema.writeLock)], timeoutMs: timeout)
                    try catchUp(c)
                    let (seq, snap) = local.withLock { ($0.seq, $0.snapshot) }
                    let op: JournalChange.Op
                    do throws(ConsentStoreError) { op = try make(snap) } catch {
                        _ = try? c.query("ROLLBACK", timeoutMs: timeout)
                        throw error
                    }
                    let change = JournalChange(seq: seq + 1, at: now, actor: actor, op: op)
                    auditAttempted = true
                    do throws(ConsentStoreError) { audited = try audit(change) } catch {
                        _ = try? c.query("ROLLBACK", timeoutMs: timeout)
                        throw error
                    }
                    var line = JSONWriter()
                    line.value(change.json)
                    try c.query("""
                        INSERT INTO custos_state_changes (seq, at_ms, op, actor, change, daemon, audit_decision_id, audit_seq)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                        """, [String(change.seq), String(change.at.millisecondsSinceEpoch), op.name, actor, line.text,
                              options.daemon, audited?.decisionID, audited.map { String($0.seq) }], timeoutMs: timeout)
                    try c.query("SELECT pg_notify($1, $2)", [FleetSchema.channel, String(change.seq)], timeoutMs: timeout)
                    try c.query("COMMIT", timeoutMs: timeout)
                    return local.withLock { l -> ConsentSnapshot in
                        if l.seq + 1 == change.seq {
                            l.snapshot.apply(change)
                            l.history.append(change)
                            l.seq = change.seq
                            published.replace(l.snapshot)
                        }
                        return l.snapshot
                    }
                } catch let e as PGError {
                    if !e.connectionLost { _ = try? c.query("ROLLBACK", timeoutMs: timeout) }
                    if e.connectionLost && !auditAttempted && attempt == 0 {
                        w = nil
                        continue
                    }
                    noteError(e.message)
                    var m = "the shared state store did not take the change: \(e.message)"
                    if let a = audited {
                        m += "; the audit entry \(a.decisionID) (seq \(a.seq)) records a change that is then not committed, unless consent.get shows it"
                    }
                    throw .unavailable(m)
                } catch let e as ConsentStoreError {
                    throw e
                } catch {
                    throw .unavailable("\(error)")
                }
            }
            throw .unavailable("the shared state store did not take the change")
        }
    }

    // MARK: catching up

    /// Reads and applies every row after the newest one applied, until none is left. The caller
    /// owns `c`.
    private func catchUp(_ c: PGConnection) throws(PGError) {
        while true {
            let from = local.withLock { $0.seq }
            let rows = try c.query("SELECT seq, change FROM custos_state_changes WHERE seq > $1 ORDER BY seq LIMIT 10000",
                                   [String(from)], timeoutMs: options.queryTimeoutMs)
            if rows.isEmpty { return }
            apply(rows)
            if let broken = local.withLock({ $0.broken }) { throw PGError(broken) }
            if rows.count < 10000 { return }
        }
    }

    private func apply(_ rows: [[String?]]) {
        local.withLock { l in
            guard l.broken == nil else { return }
            var changed = false
            for row in rows {
                guard row.count == 2, let seqText = row[0], let seq = Int64(seqText), let text = row[1] else { continue }
                if seq <= l.seq { continue }
                guard seq == l.seq + 1 else {
                    l.broken = "the shared journal jumps from change \(l.seq) to \(seq): rows were removed from custos_state_changes"
                    break
                }
                guard let json = try? JSON.parse(Array(text.utf8)), let change = JournalChange(json: json), change.seq == seq else {
                    l.broken = "change \(seq) of custos_state_changes is not a consent or hold change this daemon can read"
                    break
                }
                l.snapshot.apply(change)
                l.history.append(change)
                l.seq = seq
                changed = true
            }
            if changed { published.replace(l.snapshot) }
        }
    }

    private func noteError(_ m: String?) {
        lastError.withLock { $0 = m }
    }

    // MARK: the listener thread

    /// Publishes `source()` to the witness table every `witnessIntervalMs` when it grew.
    public func witness(_ source: @escaping @Sendable () -> WitnessedCheckpoint?) {
        witnessSource.withLock { $0 = source }
        wake()
    }

    /// Stops the listener, publishing the newest checkpoint once more first; returns once it ended.
    public func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        wake()
        stopped.wait()
        writer.withLock { w in w?.close(); w = nil }
    }

    private func wake() {
        var b: UInt8 = 1
        _ = Glibc.write(wakeWrite, &b, 1)
    }

    private var heartbeatMs: Int { max(20, min(1000, options.maxStalenessMs / 4)) }

    private func listen() {
        var conn: PGConnection? = nil
        var backoffMs = 50
        var nextWitnessMs: Int64 = 0
        while true {
            let finishing = stopping.load(ordering: .acquiring)
            if conn == nil {
                do throws(PGError) {
                    let c = try PGConnection(conninfo: options.conninfo)
                    try c.query("LISTEN \(FleetSchema.channel)", timeoutMs: options.queryTimeoutMs)
                    conn = c
                    connected.store(true, ordering: .relaxed)
                    backoffMs = 50
                } catch {
                    noteError(error.message)
                    connected.store(false, ordering: .relaxed)
                    if finishing { break }
                    sleepOrWake(backoffMs)
                    backoffMs = min(1000, backoffMs * 2)
                    continue
                }
            }
            let c = conn!
            let now = PGConnection.monotonicMs()
            if finishing || now >= nextWitnessMs {
                publishWitness(c)
                nextWitnessMs = now + Int64(options.witnessIntervalMs)
            }
            if finishing { break }
            let t0 = PGConnection.monotonicMs()
            do throws(PGError) {
                try catchUp(c)
                freshAt.store(max(1, t0), ordering: .releasing)
                noteError(nil)
            } catch {
                noteError(error.message)
                if error.connectionLost || !c.isOpen {
                    conn = nil
                    connected.store(false, ordering: .relaxed)
                    continue
                }
                sleepOrWake(backoffMs)
                continue
            }
            // Sleep until a notification, a wake-up or the heartbeat.
            var fds = [pollfd(fd: c.socket, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            let wait = Int32(min(Int64(heartbeatMs), max(1, nextWitnessMs - PGConnection.monotonicMs())))
            let r = poll(&fds, 2, wait)
            if r > 0 {
                if fds[1].revents != 0 { drainWake() }
                if fds[0].revents != 0 {
                    do throws(PGError) { _ = try c.drainNotifications() } catch {
                        noteError(error.message)
                        conn = nil
                        connected.store(false, ordering: .relaxed)
                    }
                }
            }
        }
        conn?.close()
        connected.store(false, ordering: .relaxed)
        stopped.signal()
    }

    private func publishWitness(_ c: PGConnection) {
        guard let source = witnessSource.withLock({ $0 }), let cp = source() else { return }
        if let last = witnessed.withLock({ $0.size }), last >= cp.size { return }
        do throws(PGError) {
            try c.query("""
                INSERT INTO custos_witness (log, size, root, note, daemon) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT DO NOTHING
                """, [cp.log, String(cp.size), cp.root, cp.note, options.daemon], timeoutMs: options.queryTimeoutMs)
            witnessed.withLock { $0 = (cp.size, nil) }
        } catch {
            witnessed.withLock { $0.error = error.message }
        }
    }

    private func sleepOrWake(_ ms: Int) {
        var p = pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)
        if poll(&p, 1, Int32(ms)) > 0 { drainWake() }
    }

    private func drainWake() {
        var buf = [UInt8](repeating: 0, count: 64)
        while Glibc.read(wakeRead, &buf, buf.count) > 0 {}
    }

    // MARK: the witness table

    /// Every checkpoint the witness table holds for `log` (every log when nil), smallest first.
    public func witnessed(log: String?) throws(PGError) -> [WitnessedCheckpoint] {
        try writer.withLock { w throws(PGError) -> [WitnessedCheckpoint] in
            if w == nil || !w!.isOpen { w = try PGConnection(conninfo: options.conninfo) }
            return try FleetWitness.read(w!, log: log, timeoutMs: options.queryTimeoutMs)
        }
    }
}

/// Reading the witness table without a daemon (`custos audit verify --witness`, `custos audit
/// witness`).
public enum FleetWitness {
    public static func read(conninfo: String, log: String?, timeoutMs: Int = 60_000) throws(PGError) -> [WitnessedCheckpoint] {
        let c = try PGConnection(conninfo: conninfo)
        defer { c.close() }
        return try read(c, log: log, timeoutMs: timeoutMs)
    }

    static func read(_ c: PGConnection, log: String?, timeoutMs: Int) throws(PGError) -> [WitnessedCheckpoint] {
        let exists = try c.query("SELECT to_regclass('custos_witness') IS NOT NULL", timeoutMs: timeoutMs)
        guard exists.first?.first == "t" else { return [] }
        let sql = """
            SELECT log, size, root, note, daemon, to_char(published_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
            FROM custos_witness \(log == nil ? "" : "WHERE log = $1 ") ORDER BY log, size, published_at
            """
        let rows = try c.query(sql, log.map { [$0] } ?? [], timeoutMs: timeoutMs)
        return rows.compactMap { r in
            guard r.count == 6, let l = r[0], let s = r[1].flatMap({ UInt64($0) }), let root = r[2], let note = r[3] else { return nil }
            return WitnessedCheckpoint(log: l, size: s, root: root, note: note, daemon: r[4] ?? "", publishedAt: r[5] ?? "")
        }
    }
}
