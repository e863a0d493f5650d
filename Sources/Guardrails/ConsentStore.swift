import Cedar
import CustosJSON
import ReadMostly
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Why the consent store refused.
public enum ConsentStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// An earlier write or fsync failed; the store refuses every change until restarted, because
    /// after a failed fsync the kernel may have dropped the pages (facts.md §5: never retry).
    case failed(String)
    /// Opening, reading or creating the journal failed.
    case io(String)
    /// A complete journal line (not a torn tail) could not be read: the file needs attention.
    case corrupt(line: Int, message: String)
    /// The change contradicts the current state (withdrawing what is not granted, ...).
    case invalid(String)
    /// The audit log could not record the change (the message says why).
    case audit(String)
    /// A shared store could not be reached or did not confirm the change, or its local view is
    /// older than its bound: the change is refused (it may be retried).
    case unavailable(String)

    public var description: String {
        switch self {
        case .failed(let m): "consent store stopped after an I/O error (\(m)); restart the daemon after fixing the disk"
        case .io(let m): m
        case .corrupt(let line, let m): "consent journal line \(line): \(m)"
        case .invalid(let m): m
        case .audit(let m): m
        case .unavailable(let m): m
        }
    }
}

/// Consent grants and withdrawals, legal holds set and released: durable in an append-only
/// journal (`<state>/consent.journal`, one JSON object per line). Every change is written and
/// fdatasync'ed before the call returns; the journal is replayed at open, and a torn last line
/// left by a crash is cut.
public final class ConsentStore: StateStore {
    public static let fileName = "consent.journal"

    private struct State: Sendable {
        var fd: Int32
        var seq: Int64
        var snapshot: ConsentSnapshot
        var history: [JournalChange]
        var failure: String?
    }

    /// Serialises changes (each holds it across its write and sync).
    private let state: Mutex<State>
    /// What decisions read: never behind a change's sync, never a convoy (see `ReadMostly`).
    private let published: ReadMostly<ConsentSnapshot>
    private let sync: @Sendable (Int32) -> Int32
    public let path: String

    /// Opens (creating if needed) the journal in `directory`. `sync` is the data sync call,
    /// replaceable by tests to simulate a failing disk.
    public init(directory: String, sync: @escaping @Sendable (Int32) -> Int32 = { fdatasync($0) }) throws(ConsentStoreError) {
        self.sync = sync
        if mkdir(directory, 0o700) != 0, errno != EEXIST {
            throw .io("cannot create state directory \(directory): \(String(cString: strerror(errno)))")
        }
        let path = directory + "/" + Self.fileName
        self.path = path
        var st = stat()
        let existed = stat(path, &st) == 0
        let fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        if fd < 0 { throw .io("cannot open \(path): \(String(cString: strerror(errno)))") }
        if !existed {
            // The new name must survive a crash too, not only the file's contents.
            let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            let ok = dfd >= 0 && fsync(dfd) == 0
            if dfd >= 0 { close(dfd) }
            if !ok { close(fd); throw .io("cannot fsync directory \(directory) after creating \(Self.fileName)") }
        }
        do {
            let (changes, snapshot) = try Self.replay(fd: fd, path: path, sync: sync)
            state = Mutex(State(fd: fd, seq: changes.last?.seq ?? 0, snapshot: snapshot, history: changes, failure: nil))
            published = ReadMostly(snapshot)
        } catch {
            close(fd)
            throw error
        }
    }

    deinit { state.withLock { s in if s.fd >= 0 { close(s.fd); s.fd = -1 } } }

    private static func replay(fd: Int32, path: String, sync: (Int32) -> Int32) throws(ConsentStoreError) -> ([JournalChange], ConsentSnapshot) {
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        var offset: off_t = 0
        while true {
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io("cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            bytes.append(contentsOf: buf[0..<n])
            offset += off_t(n)
        }
        // A line is acknowledged only once it and its newline were synced, so bytes after the
        // last newline are a write the crash interrupted: never acknowledged, safe to cut.
        let end = (bytes.lastIndex(of: 0x0A).map { $0 + 1 }) ?? 0
        if end < bytes.count {
            if ftruncate(fd, off_t(end)) != 0 || sync(fd) != 0 {
                throw .io("cannot cut the torn last line of \(path): \(String(cString: strerror(errno)))")
            }
            bytes.removeSubrange(end...)
        }
        var changes: [JournalChange] = []
        var snapshot = ConsentSnapshot()
        var lineNo = 0
        var start = 0
        while start < bytes.count {
            let nl = bytes[start...].firstIndex(of: 0x0A)!
            lineNo += 1
            let line = Array(bytes[start..<nl])
            start = nl + 1
            let json: JSON
            do { json = try JSON.parse(line) } catch { throw .corrupt(line: lineNo, message: "\(error)") }
            guard let change = JournalChange(json: json) else {
                throw .corrupt(line: lineNo, message: "not a consent or hold change")
            }
            if let last = changes.last, change.seq != last.seq + 1 {
                throw .corrupt(line: lineNo, message: "sequence \(change.seq) follows \(last.seq)")
            }
            snapshot.apply(change)
            changes.append(change)
        }
        return (changes, snapshot)
    }

    /// The current consents and holds, as a value for the checks.
    @inline(__always) public var snapshot: ConsentSnapshot { published.read() }

    /// True once a write or sync failed; every change is refused from then on.
    public var isFailed: Bool { state.withLock { $0.failure != nil } }

    /// Every change, oldest first; with `id`, only those about that dataset or cohort.
    public func history(_ id: String?) -> [JournalChange] {
        historyOf(id)
    }

    public func history() -> [JournalChange] { historyOf(nil) }

    private func historyOf(_ id: String?) -> [JournalChange] {
        state.withLock { s in id.map { i in s.history.filter { $0.concerns(i) } } ?? s.history }
    }

    /// Records consent of `subject` for `purpose` (see `StateStore.grant`), without an audit hook.
    @discardableResult
    public func grant(_ subject: ConsentSubject, purpose: String, evidence: String, actor: String,
                      now: CedarDatetime, grantedAt: CedarDatetime? = nil) throws(ConsentStoreError) -> ConsentRecord {
        try grant(subject, purpose: purpose, evidence: evidence, actor: actor, now: now, grantedAt: grantedAt, audit: Self.noAudit)
    }

    /// Withdraws the open consent as of `now` (see `StateStore.withdraw`), without an audit hook.
    @discardableResult
    public func withdraw(_ subject: ConsentSubject, purpose: String, actor: String,
                         now: CedarDatetime) throws(ConsentStoreError) -> ConsentRecord {
        try withdraw(subject, purpose: purpose, actor: actor, now: now, audit: Self.noAudit)
    }

    /// Places a legal hold (see `StateStore.setHold`), without an audit hook.
    @discardableResult
    public func setHold(dataset: String, matter: String, reason: String, actor: String,
                        now: CedarDatetime) throws(ConsentStoreError) -> HoldRecord {
        try setHold(dataset: dataset, matter: matter, reason: reason, actor: actor, now: now, audit: Self.noAudit)
    }

    /// Releases a legal hold (see `StateStore.releaseHold`), without an audit hook.
    public func releaseHold(dataset: String, matter: String, reason: String, actor: String,
                            now: CedarDatetime) throws(ConsentStoreError) {
        try releaseHold(dataset: dataset, matter: matter, reason: reason, actor: actor, now: now, audit: Self.noAudit)
    }

    private static func noAudit(_ change: JournalChange) throws(ConsentStoreError) -> StateAuditReference? { nil }

    public var isShared: Bool { false }

    /// Writes and syncs the change, applies it, and only then calls `audit`: the journal is
    /// itself a record of the change (seq, time, actor), so a change whose audit entry cannot be
    /// written stays in force and the caller hears that the audit log failed.
    public func commit(actor: String, now: CedarDatetime, audit: StateAuditHook,
                       _ make: (ConsentSnapshot) throws(ConsentStoreError) -> JournalChange.Op) throws(ConsentStoreError) -> ConsentSnapshot {
        let (snapshot, change) = try commitLocked(actor: actor, now: now, make)
        _ = try audit(change)
        return snapshot
    }

    /// Validates, writes and syncs one change, then applies it; returns the new snapshot.
    private func commitLocked(actor: String, now: CedarDatetime,
                              _ make: (ConsentSnapshot) throws(ConsentStoreError) -> JournalChange.Op) throws(ConsentStoreError) -> (ConsentSnapshot, JournalChange) {
        let result: Result<(ConsentSnapshot, JournalChange), ConsentStoreError> = state.withLock { s in
            if let f = s.failure { return .failure(.failed(f)) }
            let op: JournalChange.Op
            do throws(ConsentStoreError) { op = try make(s.snapshot) } catch { return .failure(error) }
            let change = JournalChange(seq: s.seq + 1, at: now, actor: actor, op: op)
            var w = JSONWriter()
            w.value(change.json)
            w.byte(0x0A)
            let bytes = w.bytes
            var done = 0
            while done < bytes.count {
                let n = bytes.withUnsafeBytes { write(s.fd, $0.baseAddress! + done, $0.count - done) }
                if n < 0 {
                    if errno == EINTR { continue }
                    s.failure = "write: \(String(cString: strerror(errno)))"
                    return .failure(.failed(s.failure!))
                }
                done += n
            }
            if sync(s.fd) != 0 {
                s.failure = "fdatasync: \(String(cString: strerror(errno)))"
                return .failure(.failed(s.failure!))
            }
            s.seq += 1
            s.snapshot.apply(change)
            s.history.append(change)
            published.replace(s.snapshot)
            return .success((s.snapshot, change))
        }
        return try result.get()
    }
}
