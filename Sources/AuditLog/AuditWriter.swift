import CustosJSON
import Glibc
import Foundation  // Thread only
import Metrics

/// When `append` returns relative to the fsync that makes the entry durable.
public enum AuditDurability: Sendable, Equatable {
    /// `append` returns after the entry's batch was written and fdatasync'ed (group commit).
    case always
    /// `append` returns once queued; the writer fsyncs at most every `intervalMs`, so a crash
    /// loses at most that window of entries.
    case batch(intervalMs: Int)
    /// No fsync until `close()`: for tests and bulk imports, never for production decisions.
    case off
}

/// When the writer adds a checkpoint to `checkpoints.log`, the log's history: after `entries`
/// new entries or `milliseconds` since the first entry it does not cover, whichever comes
/// first (checked after each write batch), and always at `close()`. Independently of this,
/// every batch is followed by a checkpoint in `checkpoint.head` (see `CheckpointHead`).
public struct CheckpointPolicy: Sendable, Equatable {
    public var entries: Int
    public var milliseconds: Int

    public init(entries: Int = 1024, milliseconds: Int = 1000) {
        self.entries = max(1, entries)
        self.milliseconds = max(1, milliseconds)
    }
}

/// Entries at the end of the log that no checkpoint covered when it was opened.
public struct AuditUncoveredEntries: Sendable, Equatable {
    /// Seq of the first and one past the last of them.
    public var from: UInt64
    public var to: UInt64
    /// The newest checkpoint's size (of `checkpoint.head` and `checkpoints.log`); nil when
    /// there was none.
    public var newestCheckpoint: UInt64?
    /// Whether `checkpoints.log` was missing or held no checkpoint (a log starts with one).
    public var checkpointsLogMissing: Bool
    /// Lowercase hex SHA-256 of their framed records as they were on disk (for entries that
    /// were cut: what an investigator can match a copy against).
    public var sha256: String?

    public init(from: UInt64, to: UInt64, newestCheckpoint: UInt64?, checkpointsLogMissing: Bool = false,
                sha256: String? = nil) {
        self.from = from; self.to = to; self.newestCheckpoint = newestCheckpoint
        self.checkpointsLogMissing = checkpointsLogMissing; self.sha256 = sha256
    }

    public var count: UInt64 { to - from }
}

/// What opening a log found, beyond entries to continue from.
public struct AuditOpenReport: Sendable {
    /// Entries in the log once opened.
    public var entries: UInt64 = 0
    /// Bytes of a torn final record that were cut (never acknowledged).
    public var tornBytesCut = 0
    /// Bytes of a torn final record of `checkpoints.log` that were cut: a history checkpoint
    /// whose write a crash interrupted. No entry loses its cover (the head and the earlier
    /// checkpoints still hold), but the start entry says so, as for a torn entry.
    public var tornHistoryBytesCut = 0
    /// Entries after the newest checkpoint that were cut: written before a crash came between
    /// them and their checkpoint (one batch at most), so none of them was acknowledged in
    /// `always` mode.
    public var uncoveredCut: AuditUncoveredEntries?
    /// Recovery only: entries that no checkpoint covered and that were accepted as they are.
    public var accepted: AuditUncoveredEntries?
    /// The last entry kept, so ids handed out next can continue after it.
    public var lastEntry: AuditEntry?
}

/// The only writer of a state folder's audit log.
///
/// Concurrent `append` calls take consecutive indices under a lock and queue their encoded
/// entry; one thread at a time takes everything queued, writes it with one `write`, fdatasyncs
/// once and wakes every waiter of the batch. That thread is the writer thread, except in
/// `always` mode, where the first appender to wait leads the commit itself (see
/// `waitDurable`). Any write or fsync error stops the writer for
/// good: `append` then throws and `isHealthy` is false, so the daemon can fail closed.
///
/// After every batch the writer signs a checkpoint of the whole tree into `checkpoint.head` and,
/// in `always` mode, syncs it before waking the batch's appenders: an acknowledged entry is
/// always covered by a signed checkpoint on disk, so removing it is detectable with the public
/// key alone. At most `maxBatch` entries go into one batch, so a crash leaves at most that many
/// entries after the newest checkpoint (none of them acknowledged in `always` mode).
///
/// Layout of the state folder: `segment-<first index, 20 digits>.log` files of framed entries
/// (see `RecordFrame`), `checkpoints.log`, framed signed notes (the history), and
/// `checkpoint.head` (the newest). Only one process may own a folder at a time (the daemon
/// holds its own lock file).
public final class AuditWriter: @unchecked Sendable {
    public let stateDirectory: String
    public let durability: AuditDurability
    public let checkpointPolicy: CheckpointPolicy
    /// Sync latency and batch size, for the daemon's metrics.
    public let syncStats = AuditSyncStats()
    private let signer: NoteSigner
    private let segmentBytes: Int
    /// A segment whose first entry is this old (wall clock) is sealed before the next batch.
    private let segmentMaxAgeMs: Int64?
    private let onFailure: (@Sendable (AuditError) -> Void)?

    // Guarded by `monitor`.
    private let monitor = Monitor()
    /// Encoded entries without their `seq` (see `AuditEntry.encodedTail`): the writer adds it,
    /// so appenders never copy an entry twice. The first has index `durableCount + inFlight`.
    private var pending: [[UInt8]] = []
    private var nextIndex: UInt64
    private var durableCount: UInt64
    private var failure: AuditError?
    private var closing = false
    private var finished = false
    /// True while the writer sleeps waiting for entries; only then do `batch` and `off`
    /// appenders wake it. Otherwise it comes back on its own (see `offLingerMs`), so a busy
    /// daemon does not pay a wake-up and a context switch per entry.
    private var writerIdle = false
    /// Appenders sleeping in `waitDurable`, each until its index is durable (see
    /// `Monitor.makeCondition`).
    private var waiters: [(index: UInt64, condition: UnsafeMutablePointer<pthread_cond_t>)] = []
    /// True while a batch is being written, by the writer thread or, in `always` mode, by an
    /// appender leading the commit (see `waitDurable`): one batch at a time.
    private var writing = false

    // Owned by whoever set `writing` (the writer thread or a leading appender), and only
    // while it is set.
    private var segment: AppendFile
    private var checkpointFile: AppendFile
    private var head: HeadFile
    private var frontier: MerkleFrontier
    /// Entries covered by the newest note in `checkpoints.log`, and in `checkpoint.head`.
    private var checkpointedSize: UInt64
    private var headSize: UInt64
    private var uncoveredSinceMs: Int64?
    private var lastSyncMs: Int64 = 0
    /// Wall-clock time of the current segment's first entry (nil while it is empty).
    private var segmentStartedMs: Int64?
    private var latest: String?

    /// Queued entries beyond which `append` waits even in `batch` and `off` modes.
    private static let maxPending = 65_536
    /// In `off` mode, how long the writer lets a batch fill after waking: one write and one
    /// wake-up per few milliseconds instead of per entry. `off` promises nothing before
    /// `close()`, so the delay costs no durability.
    private static let offLingerMs: Int64 = 2
    /// Entries per write, and so per head checkpoint: after a crash at most this many entries
    /// can follow the newest checkpoint. Segment rotation happens between batches, so a batch
    /// never spans two segments.
    public static let maxBatch = 1024

    /// What `open` found and did.
    public let openReport: AuditOpenReport

    private init(stateDirectory: String, durability: AuditDurability, checkpointPolicy: CheckpointPolicy,
                 signer: NoteSigner, segmentBytes: Int, segmentMaxAgeMs: Int64?, onFailure: (@Sendable (AuditError) -> Void)?,
                 segment: AppendFile, checkpointFile: AppendFile, head: HeadFile, frontier: MerkleFrontier,
                 checkpointedSize: UInt64, headSize: UInt64, latest: String?, openReport: AuditOpenReport) {
        self.stateDirectory = stateDirectory
        self.durability = durability
        self.checkpointPolicy = checkpointPolicy
        self.signer = signer
        self.segmentBytes = segmentBytes
        self.segmentMaxAgeMs = segmentMaxAgeMs
        self.onFailure = onFailure
        self.segment = segment
        self.checkpointFile = checkpointFile
        self.head = head
        self.frontier = frontier
        self.checkpointedSize = checkpointedSize
        self.headSize = headSize
        self.latest = latest
        self.openReport = openReport
        nextIndex = frontier.size
        durableCount = frontier.size
    }

    /// Opens (creating if needed) the log in `stateDirectory`, recovering from a crash: a torn
    /// final record is cut, and so are entries after the newest checkpoint (of `checkpoint.head`
    /// and `checkpoints.log`) when they are one batch at most, all in the last segment, and the
    /// head exists: a crash between their write and their checkpoint, so none was acknowledged in
    /// `always` mode. Anything else that does not add up throws rather than being repaired:
    /// damaged records mid-file, missing segments, fewer entries than a checkpoint covers,
    /// entries that do not hash to a checkpoint's root, a history (`checkpoints.log`) without a
    /// checkpoint while entries exist (`checkpointsMissing`), and uncovered entries beyond that
    /// one batch (`uncoveredEntries`); only `recover` accepts those two. A new log starts with
    /// the empty tree's checkpoint in both files.
    public static func open(stateDirectory: String, mode: AuditDurability = .always,
                            checkpointEvery: CheckpointPolicy = CheckpointPolicy(),
                            signer: NoteSigner, segmentBytes: Int = 64 << 20, segmentMaxAgeMs: Int64? = nil,
                            onFailure: (@Sendable (AuditError) -> Void)? = nil) throws(AuditError) -> AuditWriter {
        try open(stateDirectory: stateDirectory, mode: mode, checkpointEvery: checkpointEvery, signer: signer,
                 segmentBytes: segmentBytes, segmentMaxAgeMs: segmentMaxAgeMs, onFailure: onFailure, acceptingUncovered: false)
    }

    /// The explicit recovery (`custos audit recover`): accepts every entry that no checkpoint
    /// covers, as it is, and records that in the log itself. `makeEntry` builds the entry that
    /// says what was accepted and why; it is appended and a checkpoint signed over everything,
    /// so a verifier sees the break. Returns nil, writing nothing, when there is nothing to
    /// accept (a torn or unacknowledged tail is not: a normal open cuts it).
    public static func recover(stateDirectory: String, signer: NoteSigner,
                               makeEntry: (AuditOpenReport) -> AuditEntry) throws(AuditError) -> AuditUncoveredEntries? {
        let w = try open(stateDirectory: stateDirectory, mode: .always, checkpointEvery: CheckpointPolicy(), signer: signer,
                         segmentBytes: 64 << 20, segmentMaxAgeMs: nil, onFailure: nil, acceptingUncovered: true)
        guard let accepted = w.openReport.accepted else {
            try w.close()
            return nil
        }
        do {
            try w.append(makeEntry(w.openReport))
        } catch {
            try? w.close()
            throw error
        }
        try w.close()
        return accepted
    }

    private static func open(stateDirectory dir: String, mode: AuditDurability, checkpointEvery: CheckpointPolicy,
                             signer: NoteSigner, segmentBytes: Int, segmentMaxAgeMs: Int64?, onFailure: (@Sendable (AuditError) -> Void)?,
                             acceptingUncovered: Bool) throws(AuditError) -> AuditWriter {
        try FileSystem.makeDirectory(dir)
        // A folder whose oldest segments were archived and pruned starts at its base.
        let base = try LogBase.read(dir)
        let origin = base?.size ?? 0
        // Checkpoints first, so the scan can take the tree at each one's size. They are parsed,
        // not verified: after a key rotation the old key signed them. The verifier checks.
        let cps = try LogReader.checkpoints(dir)
        let cpPath = dir + "/" + LogReader.checkpointFile
        if let corrupt = cps.corrupt { throw .corruptLog(path: cpPath, offset: cps.validLength, reason: corrupt) }
        let headRead = try CheckpointHead.read(dir)
        let headPath = dir + "/" + CheckpointHead.fileName
        let logNewest = try cps.notes.last.map { note throws(AuditError) in try parse(note, path: cpPath) }
        var headNotes: [(slot: Int, checkpoint: Checkpoint)] = []
        for h in headRead.notes { headNotes.append((h.slot, try parse(h.note, path: headPath))) }
        let headNewest = headNotes.max { $0.checkpoint.size < $1.checkpoint.size }
        let candidates = ([logNewest].compactMap { $0 } + headNotes.map(\.checkpoint) + [base?.checkpoint].compactMap { $0 })
        if let stale = candidates.first(where: { $0.size < origin }) {
            throw .corruptLog(path: dir, offset: 0, reason: "a checkpoint at size \(stale.size) is newer on disk than the folder's base at \(origin): the checkpoint files were rolled back")
        }
        let newest = candidates.max { $0.size < $1.size }

        var frontier = base?.frontier ?? MerkleFrontier()
        var roots: [UInt64: SHA256Digest] = [origin: frontier.root]
        var atNewest: MerkleFrontier? = newest?.size == origin ? frontier : nil
        var last: [UInt8] = [], lastAtNewest: [UInt8] = []
        var badSeq: (UInt64, UInt64?)? = nil
        let summary = try LogReader.scan(dir, origin: origin) { index, payload in
            let seq = LogReader.seq(of: payload)
            guard seq == index else { badSeq = (index, seq); return false }
            frontier.append(leafHash: MerkleHash.leaf(payload))
            last.removeAll(keepingCapacity: true)
            last.append(contentsOf: payload)
            if candidates.contains(where: { $0.size == frontier.size }) { roots[frontier.size] = frontier.root }
            if frontier.size == newest?.size {
                atNewest = frontier
                lastAtNewest = last
            }
            return true
        }
        if let (index, seq) = badSeq {
            throw .corruptLog(path: dir, offset: 0, reason: "entry \(index) carries seq \(seq.map(String.init) ?? "none"): entries are missing or out of order")
        }
        switch summary.issue {
        case .segmentGap(let name, let expected, let found)?:
            throw .corruptLog(path: dir + "/" + name, offset: 0, reason: "segment starts at entry \(found) but \(expected) entries precede it")
        case .corrupt(let name, let offset, _, let reason)?:
            throw .corruptLog(path: dir + "/" + name, offset: offset, reason: reason)
        case nil:
            break
        }

        let entries = frontier.size
        var report = AuditOpenReport()
        report.tornBytesCut = summary.tornBytes
        var historyStat = stat()
        if stat(cpPath, &historyStat) == 0 { report.tornHistoryBytesCut = max(0, Int(historyStat.st_size) - cps.validLength) }
        for cp in candidates.sorted(by: { $0.size > $1.size }) {
            if cp.size > entries { throw .truncatedBelowCheckpoint(entries: entries, checkpointSize: cp.size) }
            guard roots[cp.size] == cp.root else {
                throw .corruptLog(path: dir, offset: 0, reason: "the first \(cp.size) entries do not match the root of the signed checkpoint at that size")
            }
        }
        // checkpoints.log starts with the empty tree's checkpoint, so without one the history
        // was removed, whatever checkpoint.head says.
        let historyMissing = entries > 0 && cps.notes.isEmpty
        if historyMissing && !acceptingUncovered { throw .checkpointsMissing(entries: entries) }
        var keepLength = summary.lastSegment?.validLength ?? 0
        let covered = newest?.size ?? 0
        if entries > covered || historyMissing {
            var range = AuditUncoveredEntries(from: covered, to: entries, newestCheckpoint: newest?.size,
                                              checkpointsLogMissing: historyMissing)
            let lastFirst = summary.lastSegment.flatMap { SegmentName.firstIndex(of: $0.name) } ?? 0
            if acceptingUncovered {
                report.accepted = range
            } else if headRead.exists, entries - covered <= UInt64(maxBatch), covered >= lastFirst,
                      let seg = summary.lastSegment {
                // One batch written but not yet covered when the writer stopped: never
                // acknowledged. Cut it, and say what was cut.
                let cut = try recordOffset(path: dir + "/" + seg.name, record: Int(covered - lastFirst), end: seg.validLength)
                range.sha256 = cut.sha256
                report.uncoveredCut = range
                keepLength = cut.offset
                frontier = atNewest ?? base?.frontier ?? MerkleFrontier()
                last = lastAtNewest
            } else {
                throw .uncoveredEntries(entries: entries, newestCheckpoint: covered, headMissing: !headRead.exists)
            }
        }
        report.entries = frontier.size
        if !last.isEmpty { report.lastEntry = try? AuditEntry(canonicalJSON: last) }

        let segment: AppendFile
        if let lastSegment = summary.lastSegment {
            segment = try AppendFile.reopen(path: dir + "/" + lastSegment.name, validLength: keepLength)
        } else {
            segment = try AppendFile.createNew(path: dir + "/" + SegmentName.name(firstIndex: frontier.size))
        }
        let checkpointFile = FileSystem.exists(cpPath)
            ? try AppendFile.reopen(path: cpPath, validLength: cps.validLength)
            : try AppendFile.createNew(path: cpPath)
        var latest = cps.notes.last
        var checkpointed = logNewest?.size ?? 0
        if cps.notes.isEmpty && frontier.size == 0 {
            // The empty tree's checkpoint: from now on, a log with entries and no checkpoint in
            // its history had its checkpoints removed; a crash never leaves that.
            let note = try signer.sign(Checkpoint(origin: signer.name, size: 0, root: frontier.root))
            var framed: [UInt8] = []
            RecordFrame.append(Array(note.utf8), to: &framed)
            try checkpointFile.append(framed)
            try checkpointFile.sync()
            latest = note
            checkpointed = 0
        }
        let head = try HeadFile.open(path: headPath, newestSlot: headNewest?.slot)
        var headSize = min(headNewest?.checkpoint.size ?? 0, frontier.size)
        if headNewest == nil && report.accepted == nil {
            // A new log, or one a custos without the head wrote: everything is covered already,
            // so this vouches for nothing new.
            let note = try signer.sign(Checkpoint(origin: signer.name, size: frontier.size, root: frontier.root))
            try head.write(note, sync: true)
            headSize = frontier.size
            latest = note
        } else if let h = headRead.notes.first(where: { $0.slot == headNewest?.slot }), headSize >= checkpointed {
            latest = h.note
        }

        let w = AuditWriter(stateDirectory: dir, durability: mode, checkpointPolicy: checkpointEvery, signer: signer,
                            segmentBytes: max(4096, segmentBytes), segmentMaxAgeMs: segmentMaxAgeMs, onFailure: onFailure, segment: segment,
                            checkpointFile: checkpointFile, head: head, frontier: frontier,
                            checkpointedSize: min(checkpointed, frontier.size), headSize: headSize,
                            latest: latest, openReport: report)
        if checkpointed < frontier.size { w.uncoveredSinceMs = Monitor.monotonicMs() }
        if let last = summary.lastSegment, keepLength > 0 {
            w.segmentStartedMs = firstEntryTime(path: dir + "/" + last.name)
        }
        let thread = Thread { [w] in w.run() }
        thread.name = "custos-audit-writer"
        thread.start()
        return w
    }

    private static func parse(_ note: String, path: String) throws(AuditError) -> Checkpoint {
        guard let split = note.range(of: "\n\n") else {
            throw .corruptLog(path: path, offset: 0, reason: "a checkpoint has no signature block")
        }
        return try Checkpoint(body: String(note[..<split.lowerBound]) + "\n")
    }

    /// The byte offset of the `record`-th record of a segment, and the SHA-256 of the bytes from
    /// there to `end`.
    private static func recordOffset(path: String, record: Int, end: Int) throws(AuditError) -> (offset: Int, sha256: String) {
        let file = try MappedFile(path: path)
        var offset = end
        var seen = 0
        _ = RecordFrame.scan(file.bytes) { at, _ in
            if seen == record { offset = at; return false }
            seen += 1
            return true
        }
        let hash = SHA256Digest.hash(UnsafeRawBufferPointer(rebasing: file.bytes[offset..<end])).hex
        return (offset, hash)
    }

    /// Appends `entry` (its `seq` is replaced by its index) and returns the index. In `always`
    /// mode it returns only after the entry and a checkpoint covering it are on disk. Throws when
    /// the writer has failed or is closed; the entry is then not in the log.
    @discardableResult
    public func append(_ entry: AuditEntry) throws(AuditError) -> UInt64 {
        let index = try enqueue(entry)
        if durability == .always { try waitDurable(through: index) }
        return index
    }

    /// `append` with the entry's time and decision id set in log order (see `enqueue(_:stamp:)`).
    @discardableResult
    public func append(_ entry: AuditEntry, stamp: AuditStamp) throws(AuditError) -> UInt64 {
        let index = try enqueue(entry, stamp: stamp)
        if durability == .always { try waitDurable(through: index) }
        return index
    }

    /// Writes an entry's decision id when the entry takes its place in the log: gets the time
    /// just written into the entry and the id's bytes, as many as the entry's placeholder id.
    public typealias AuditStamp = (_ time: AuditTimestamp, _ decisionID: UnsafeMutableRawBufferPointer) -> Void

    /// Queues `entry` without waiting for its sync, whatever the mode, and returns its index.
    /// A caller answering several requests at once queues all their entries, then calls
    /// `waitDurable` once for the highest index, so one fdatasync can cover them all instead
    /// of each request paying its own. Nothing queued may be acknowledged before that wait.
    public func enqueue(_ entry: AuditEntry) throws(AuditError) -> UInt64 {
        try enqueue(tail: entry.encodedTail()) { _ in }
    }

    /// `enqueue`, with the entry's time and decision id set at the moment it takes its place in
    /// the log, under the writer's lock: the time is read then, and `stamp` writes the id. So
    /// times never decrease and ids follow the order of the log, however many threads append
    /// (unless the host clock steps back: the time is the clock's). `entry.decisionID` is a
    /// placeholder of the id's length, without characters JSON escapes.
    public func enqueue(_ entry: AuditEntry, stamp: AuditStamp) throws(AuditError) -> UInt64 {
        // The tail starts `,"time":"<24>","decision_id":"<id>"`, the id written as is when it
        // holds nothing JSON escapes.
        let id = entry.decisionID.utf8
        guard id.count <= AuditBound.maxBytes, id.allSatisfy({ $0 >= 0x20 && $0 != 0x22 && $0 != 0x5C && $0 != 0x7F }) else {
            throw .malformedEntry("a stamped entry's decision id placeholder must need no escaping")
        }
        let tail = entry.encodedTail()
        let timeAt = 9, idAt = timeAt + AuditTimestamp.textLength + 17, idLength = id.count
        return try enqueue(tail: tail) { tail in
            let now = AuditTimestamp.now()
            tail.withUnsafeMutableBytes { raw in
                now.write(into: UnsafeMutableRawBufferPointer(rebasing: raw[timeAt..<(timeAt + AuditTimestamp.textLength)]))
                stamp(now, UnsafeMutableRawBufferPointer(rebasing: raw[idAt..<(idAt + idLength)]))
            }
        }
    }

    /// Takes the next index and queues `tail`; `atIndex` runs under the lock once the index is
    /// taken, so what it writes into the entry follows log order.
    @inline(__always)
    private func enqueue(tail: consuming [UInt8], atIndex: (inout [UInt8]) -> Void) throws(AuditError) -> UInt64 {
        var tail = tail
        let limit = RecordFrame.maxPayload - 32
        guard tail.count <= limit else { throw .entryTooLarge(bytes: tail.count, limit: limit) }
        monitor.lock()
        defer { monitor.unlock() }
        while failure == nil && !closing && pending.count >= Self.maxPending {
            monitor.signalWork()
            monitor.waitForProgress()
        }
        if let failure { throw failure }
        if closing { throw .closed }
        let index = nextIndex
        nextIndex += 1
        atIndex(&tail)
        pending.append(tail)
        // In `always` mode the writer is woken by the first waiter instead: a connection queues
        // the entries of every request it read before it waits, and they then share one sync.
        // Waking the writer at the first entry makes it sync entries one or two at a time while
        // the rest are still being decided, which costs a sync and a wake-up per entry.
        if durability != .always && writerIdle {
            writerIdle = false
            monitor.signalWork()
        }
        return index
    }

    /// Returns once every entry up to and including `index` has been written and synced (in
    /// `batch` and `off` modes: written, as far as the mode promises anything). Throws when the
    /// writer failed before getting there: those entries must be treated as never logged.
    ///
    /// In `always` mode an appender that finds nobody else waiting and nothing being written
    /// writes the queued entries itself, so a lone request's commit costs no hand-off to the
    /// writer thread and back. Appenders arriving meanwhile wait, and the writer thread takes
    /// the batches after it: under load it keeps committing without a wake-up per batch.
    public func waitDurable(through index: UInt64) throws(AuditError) {
        monitor.lock()
        defer { monitor.unlock() }
        let mayLead = durability == .always
        guard durableCount <= index else { return }
        var condition: UnsafeMutablePointer<pthread_cond_t>? = nil
        defer {
            if let condition {
                // Still listed when leaving for a failure or a close.
                if let i = waiters.firstIndex(where: { $0.condition == condition }) { waiters.remove(at: i) }
                monitor.destroy(condition)
            }
        }
        while durableCount <= index {
            if let failure { throw failure }
            if finished { throw .closed }
            if mayLead && !writing && writerIdle && waiters.isEmpty && !closing && !pending.isEmpty {
                writing = true
                _ = commitBatch(final: false)
                writing = false
                continue
            }
            // Whoever is writing takes what is queued next (a leader hands it to the writer
            // thread when it is done), so only an idle log needs the writer woken.
            if !writing && !pending.isEmpty { monitor.signalWork() }
            if condition == nil {
                let c = monitor.makeCondition()
                waiters.append((index, c))
                condition = c
            }
            monitor.wait(on: condition!)
        }
    }

    /// Under the lock: wakes the appenders whose entries are now durable, or all of them when
    /// the writer failed or finished.
    private func wakeWaiters(all: Bool) {
        var kept = 0
        for w in waiters {
            if all || w.index < durableCount {
                monitor.signal(w.condition)
            } else {
                waiters[kept] = w
                kept += 1
            }
        }
        if all { return }  // each removes itself when it leaves
        waiters.removeLast(waiters.count - kept)
    }

    /// False once a write or fsync failed (permanently) or after `close()`.
    public var isHealthy: Bool {
        monitor.lock(); defer { monitor.unlock() }
        return failure == nil && !closing
    }

    /// The error that stopped the writer, if any.
    public var failureReason: AuditError? {
        monitor.lock(); defer { monitor.unlock() }
        return failure
    }

    /// Entries appended so far (durable or queued).
    public var count: UInt64 {
        monitor.lock(); defer { monitor.unlock() }
        return nextIndex
    }

    /// The newest signed checkpoint note, for copying off the machine (external anchoring).
    public var latestCheckpoint: String? {
        monitor.lock(); defer { monitor.unlock() }
        return latest
    }

    /// Writes everything queued, signs a final checkpoint, fsyncs and stops the writer thread.
    /// Throws the writer's failure, if it had one.
    public func close() throws(AuditError) {
        monitor.lock()
        closing = true
        monitor.signalWork()
        while !finished { monitor.waitForProgress() }
        let f = failure
        monitor.unlock()
        if let f { throw f }
    }

    // MARK: writer thread

    private func run() {
        monitor.lock()
        while true {
            // Sleep until there is something to write, or close(), or a leading appender failed.
            while (pending.isEmpty || writing) && !closing && failure == nil {
                writerIdle = true
                monitor.waitForWork()
            }
            writerIdle = false
            if failure != nil { break }
            if writing {
                // close() while an appender leads: let it finish its batch first.
                monitor.waitForProgress()
                continue
            }
            if !closing {
                // Let the batch fill; appenders do not wait on it. In `batch` mode for the rest
                // of the interval, in `off` mode briefly (see `offLingerMs`).
                let due: Int64? = switch durability {
                case .batch(let interval): lastSyncMs + Int64(interval)
                case .off: pending.count >= Self.maxBatch ? nil : Monitor.monotonicMs() + Self.offLingerMs
                case .always: nil
                }
                if let due {
                    while !closing && pending.count < Self.maxPending / 2 && Monitor.monotonicMs() < due {
                        monitor.waitForWork(untilMs: due)
                    }
                }
            }
            writing = true
            let outcome = commitBatch(final: closing)
            writing = false
            if outcome != .written { break }
        }
        let f = failure
        monitor.unlock()
        segment.closeFile()
        checkpointFile.closeFile()
        head.closeFile()
        // Reported before close() returns, so a daemon shutting down still hears of it.
        if let f, let onFailure { onFailure(f) }
        monitor.lock()
        finished = true
        wakeWaiters(all: true)
        monitor.broadcastProgress()
        monitor.unlock()
    }

    enum BatchOutcome { case written, wroteLast, failed }

    /// Under the lock, with `writing` set by the caller: takes up to `maxBatch` queued entries,
    /// writes them with the lock released, then marks them durable and wakes their appenders,
    /// or records the failure and wakes everyone. `final` (the writer thread at close): the
    /// last batch also syncs and checkpoints everything.
    private func commitBatch(final: Bool) -> BatchOutcome {
        let batch: [[UInt8]]
        if pending.count <= Self.maxBatch {
            batch = pending
            pending.removeAll(keepingCapacity: true)
        } else {
            batch = Array(pending[..<Self.maxBatch])
            pending.removeFirst(Self.maxBatch)
        }
        let isLast = final && pending.isEmpty
        monitor.unlock()
        var error: AuditError? = nil
        do throws(AuditError) {
            try write(batch, final: isLast)
        } catch let e {
            error = e
        }
        monitor.lock()
        if let error {
            failure = .writerFailed(reason: error.description)
            wakeWaiters(all: true)
            monitor.broadcastProgress()
            // The writer thread closes the files and reports the failure.
            monitor.signalWork()
            return .failed
        }
        durableCount += UInt64(batch.count)
        wakeWaiters(all: false)
        monitor.broadcastProgress()
        // Entries queued while an appender led: the writer thread takes them on.
        if !pending.isEmpty { monitor.signalWork() }
        return isLast ? .wroteLast : .written
    }

    /// Closes the current segment for good and starts the next. The history first gets a
    /// checkpoint at exactly the segment's end, so the segments up to here can be archived with
    /// the checkpoint that covers them and nothing after (`AuditArchive`). Only between batches.
    private func seal() throws(AuditError) {
        if checkpointedSize < frontier.size {
            let note = try signer.sign(Checkpoint(origin: signer.name, size: frontier.size, root: frontier.root))
            var framed: [UInt8] = []
            RecordFrame.append(Array(note.utf8), to: &framed)
            try checkpointFile.append(framed)
            checkpointedSize = frontier.size
            uncoveredSinceMs = nil
        }
        if durability != .off {
            try segment.sync()
            try checkpointFile.sync()
        }
        segment.closeFile()
        segment = try AppendFile.createNew(path: stateDirectory + "/" + SegmentName.name(firstIndex: frontier.size))
        segmentStartedMs = nil
    }

    /// The time of a segment's first entry, read from its fixed place in the canonical JSON.
    private static func firstEntryTime(path: String) -> Int64? {
        guard let file = try? MappedFile(path: path) else { return nil }
        var time: Int64? = nil
        _ = RecordFrame.scan(file.bytes) { _, payload in
            if let e = try? AuditEntry(canonicalJSON: payload) { time = e.time.millisecondsSinceEpoch }
            return false
        }
        return time
    }

    /// Writes one batch, makes it durable per the mode, then signs a checkpoint over the whole
    /// tree into `checkpoint.head` and makes that durable too: in `always` mode the batch's
    /// answers wait for both, so every answered entry is covered by a checkpoint on disk. The
    /// same note goes to `checkpoints.log` when the policy says the history is due one. The
    /// entries are synced before any checkpoint is written, so a checkpoint never vouches for
    /// entries a crash could lose.
    private func write(_ batch: [[UInt8]], final: Bool) throws(AuditError) {
        let sync = durability != .off || final
        var signedEarly: String? = nil
        if !batch.isEmpty {
            let aged = segmentMaxAgeMs.map { max in segmentStartedMs.map { AuditTimestamp.now().millisecondsSinceEpoch - $0 >= max } ?? false } ?? false
            if segment.length > 0 && (segment.length >= segmentBytes || aged) {
                try seal()
            }
            if segment.length == 0 { segmentStartedMs = AuditTimestamp.now().millisecondsSinceEpoch }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(batch.reduce(0) { $0 + $1.count + RecordFrame.headerSize + 32 })
            // Entries are written in index order, so the next index is the tree's size.
            var payload = JSONWriter(capacity: 1024)
            for tail in batch {
                payload.bytes.removeAll(keepingCapacity: true)
                AuditEntry.assemble(seq: frontier.size, tail: tail, into: &payload)
                payload.bytes.withUnsafeBytes { p in
                    RecordFrame.append(p, to: &bytes)
                    frontier.append(leafHash: MerkleHash.leaf(p))
                }
            }
            try segment.append(bytes)
            if uncoveredSinceMs == nil { uncoveredSinceMs = Monitor.monotonicMs() }
            if sync {
                // Sign the checkpoint over the new tree while the batch's data goes to the disk:
                // the signature (tens of µs) then costs a commit nothing. The head is still
                // written only after the entries are synced.
                segment.startWriteback(lastBytes: bytes.count)
                signedEarly = try signer.sign(Checkpoint(origin: signer.name, size: frontier.size, root: frontier.root))
            }
        }
        if sync {
            let syncStart = metricsNow()
            try segment.sync()
            syncStats.record(entries: batch.count, since: syncStart)
            lastSyncMs = Monitor.monotonicMs()
        }
        let uncovered = frontier.size - checkpointedSize
        let timeDue = uncoveredSinceMs.map { Monitor.monotonicMs() - $0 >= Int64(checkpointPolicy.milliseconds) } ?? false
        let historyDue = uncovered > 0 && (final || uncovered >= UInt64(checkpointPolicy.entries) || timeDue)
        guard frontier.size > headSize || historyDue else {
            if final { try head.sync() }
            return
        }
        let note: String
        if let signedEarly { note = signedEarly } else {
            note = try signer.sign(Checkpoint(origin: signer.name, size: frontier.size, root: frontier.root))
        }
        if historyDue {
            var framed: [UInt8] = []
            RecordFrame.append(Array(note.utf8), to: &framed)
            try checkpointFile.append(framed)
            // The head carries the promise; the history is synced at close.
            if final { try checkpointFile.sync() }
            checkpointedSize = frontier.size
            uncoveredSinceMs = nil
        }
        if frontier.size > headSize {
            try head.write(note, sync: sync)
            headSize = frontier.size
        } else if final {
            try head.sync()
        }
        monitor.lock(); latest = note; monitor.unlock()
    }
}
