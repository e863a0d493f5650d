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

/// When the writer signs a checkpoint: after `entries` new entries or `milliseconds` after the
/// first entry not yet covered, whichever comes first, and always at `close()`.
public struct CheckpointPolicy: Sendable, Equatable {
    public var entries: Int
    public var milliseconds: Int

    public init(entries: Int = 1024, milliseconds: Int = 1000) {
        self.entries = max(1, entries)
        self.milliseconds = max(1, milliseconds)
    }
}

/// The only writer of a state folder's audit log.
///
/// Concurrent `append` calls take consecutive indices under a lock and queue their encoded
/// entry; one writer thread takes everything queued, writes it with one `write`, fdatasyncs
/// once and wakes every waiter of the batch. Any write or fsync error stops the writer for
/// good: `append` then throws and `isHealthy` is false, so the daemon can fail closed.
///
/// Layout of the state folder: `segment-<first index, 20 digits>.log` files of framed entries
/// (see `RecordFrame`) and `checkpoints.log`, framed signed notes. Only one process may own a
/// folder at a time (the daemon holds its own lock file).
public final class AuditWriter: @unchecked Sendable {
    public let stateDirectory: String
    public let durability: AuditDurability
    public let checkpointPolicy: CheckpointPolicy
    /// Sync latency and batch size, for the daemon's metrics.
    public let syncStats = AuditSyncStats()
    private let signer: NoteSigner
    private let segmentBytes: Int
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

    // Owned by the writer thread once it runs.
    private var segment: AppendFile
    private var checkpointFile: AppendFile
    private var frontier: MerkleFrontier
    private var checkpointedSize: UInt64
    private var uncoveredSinceMs: Int64?
    private var lastSyncMs: Int64 = 0
    private var latest: String?

    /// Queued entries beyond which `append` waits even in `batch` and `off` modes.
    private static let maxPending = 65_536
    /// In `off` mode, how long the writer lets a batch fill after waking: one write and one
    /// wake-up per few milliseconds instead of per entry. `off` promises nothing before
    /// `close()`, so the delay costs no durability.
    private static let offLingerMs: Int64 = 2
    /// Entries per write: bounds one write's size, and checkpoints and segment rotation happen
    /// between batches, so they stay near their targets even when appends outrun the disk.
    private static let maxBatch = 1024

    private init(stateDirectory: String, durability: AuditDurability, checkpointPolicy: CheckpointPolicy,
                 signer: NoteSigner, segmentBytes: Int, onFailure: (@Sendable (AuditError) -> Void)?,
                 segment: AppendFile, checkpointFile: AppendFile, frontier: MerkleFrontier,
                 checkpointedSize: UInt64, latest: String?) {
        self.stateDirectory = stateDirectory
        self.durability = durability
        self.checkpointPolicy = checkpointPolicy
        self.signer = signer
        self.segmentBytes = segmentBytes
        self.onFailure = onFailure
        self.segment = segment
        self.checkpointFile = checkpointFile
        self.frontier = frontier
        self.checkpointedSize = checkpointedSize
        self.latest = latest
        nextIndex = frontier.size
        durableCount = frontier.size
    }

    /// Opens (creating if needed) the log in `stateDirectory`, recovering from a crash: a torn
    /// final record is cut and the tree continues from the entries before it. Anything else
    /// that does not add up (damaged records mid-file, missing segments, fewer entries than the
    /// newest checkpoint covers) throws rather than being repaired.
    public static func open(stateDirectory: String, mode: AuditDurability = .always,
                            checkpointEvery: CheckpointPolicy = CheckpointPolicy(),
                            signer: NoteSigner, segmentBytes: Int = 64 << 20,
                            onFailure: (@Sendable (AuditError) -> Void)? = nil) throws(AuditError) -> AuditWriter {
        let dir = stateDirectory
        try FileSystem.makeDirectory(dir)
        var frontier = MerkleFrontier()
        var badSeq: (UInt64, UInt64?)? = nil
        let summary = try LogReader.scan(dir) { index, payload in
            let seq = LogReader.seq(of: payload)
            guard seq == index else { badSeq = (index, seq); return false }
            frontier.append(leafHash: MerkleHash.leaf(payload))
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

        let segment: AppendFile
        if let last = summary.lastSegment {
            segment = try AppendFile.reopen(path: dir + "/" + last.name, validLength: last.validLength)
        } else {
            segment = try AppendFile.createNew(path: dir + "/" + SegmentName.name(firstIndex: 0))
        }

        let cps = try LogReader.checkpoints(dir)
        if let corrupt = cps.corrupt { throw .corruptLog(path: dir + "/" + LogReader.checkpointFile, offset: cps.validLength, reason: corrupt) }
        let cpPath = dir + "/" + LogReader.checkpointFile
        let checkpointFile = FileSystem.exists(cpPath)
            ? try AppendFile.reopen(path: cpPath, validLength: cps.validLength)
            : try AppendFile.createNew(path: cpPath)
        var checkpointed: UInt64 = 0
        if let note = cps.notes.last {
            // Parsed, not verified: after a key rotation the old key signed it. The verifier checks.
            guard let split = note.range(of: "\n\n") else {
                throw .corruptLog(path: cpPath, offset: 0, reason: "the newest checkpoint has no signature block")
            }
            let cp = try Checkpoint(body: String(note[..<split.lowerBound]) + "\n")
            if cp.size > frontier.size { throw .truncatedBelowCheckpoint(entries: frontier.size, checkpointSize: cp.size) }
            if cp.size == frontier.size && cp.root != frontier.root {
                throw .corruptLog(path: dir, offset: 0, reason: "the entries do not match the root of the newest checkpoint")
            }
            checkpointed = cp.size
        }

        let w = AuditWriter(stateDirectory: dir, durability: mode, checkpointPolicy: checkpointEvery, signer: signer,
                            segmentBytes: max(4096, segmentBytes), onFailure: onFailure, segment: segment,
                            checkpointFile: checkpointFile, frontier: frontier, checkpointedSize: checkpointed,
                            latest: cps.notes.last)
        if checkpointed < frontier.size { w.uncoveredSinceMs = Monitor.monotonicMs() }
        let thread = Thread { [w] in w.run() }
        thread.name = "custos-audit-writer"
        thread.start()
        return w
    }

    /// Appends `entry` (its `seq` is replaced by its index) and returns the index. In `always`
    /// mode it returns only after the entry is on disk. Throws when the writer has failed or is
    /// closed; the entry is then not in the log.
    @discardableResult
    public func append(_ entry: AuditEntry) throws(AuditError) -> UInt64 {
        let index = try enqueue(entry)
        if durability == .always { try waitDurable(through: index) }
        return index
    }

    /// Queues `entry` without waiting for its sync, whatever the mode, and returns its index.
    /// A caller answering several requests at once queues all their entries, then calls
    /// `waitDurable` once for the highest index, so one fdatasync can cover them all instead
    /// of each request paying its own. Nothing queued may be acknowledged before that wait.
    public func enqueue(_ entry: AuditEntry) throws(AuditError) -> UInt64 {
        let tail = entry.encodedTail()
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
    public func waitDurable(through index: UInt64) throws(AuditError) {
        monitor.lock()
        defer { monitor.unlock() }
        if durableCount <= index && !pending.isEmpty { monitor.signalWork() }
        guard durableCount <= index else { return }
        let condition = monitor.makeCondition()
        waiters.append((index, condition))
        defer {
            // Still listed when leaving for a failure or a close.
            if let i = waiters.firstIndex(where: { $0.condition == condition }) { waiters.remove(at: i) }
            monitor.destroy(condition)
        }
        while durableCount <= index {
            if let failure { throw failure }
            if finished { throw .closed }
            monitor.wait(on: condition)
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
            // Sleep until there is something to write, a checkpoint falls due, or close().
            while pending.isEmpty && !closing {
                writerIdle = true
                if let since = uncoveredSinceMs {
                    let due = since + Int64(checkpointPolicy.milliseconds)
                    if Monitor.monotonicMs() >= due { break }
                    monitor.waitForWork(untilMs: due)
                } else {
                    monitor.waitForWork()
                }
            }
            writerIdle = false
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
            let batch: [[UInt8]]
            if pending.count <= Self.maxBatch {
                batch = pending
                pending.removeAll(keepingCapacity: true)
            } else {
                batch = Array(pending[..<Self.maxBatch])
                pending.removeFirst(Self.maxBatch)
            }
            let isLast = closing && pending.isEmpty
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
                break
            }
            durableCount += UInt64(batch.count)
            wakeWaiters(all: false)
            monitor.broadcastProgress()
            if isLast { break }
        }
        let f = failure
        monitor.unlock()
        segment.closeFile()
        checkpointFile.closeFile()
        // Reported before close() returns, so a daemon shutting down still hears of it.
        if let f, let onFailure { onFailure(f) }
        monitor.lock()
        finished = true
        wakeWaiters(all: true)
        monitor.broadcastProgress()
        monitor.unlock()
    }

    /// Writes one batch, makes it durable per the mode, then signs a checkpoint if one is due.
    /// Entries are synced before the checkpoint that covers them is written.
    private func write(_ batch: [[UInt8]], final: Bool) throws(AuditError) {
        let sync = durability != .off || final
        if !batch.isEmpty {
            if segment.length >= segmentBytes {
                if durability != .off { try segment.sync() }
                segment.closeFile()
                segment = try AppendFile.createNew(path: stateDirectory + "/" + SegmentName.name(firstIndex: frontier.size))
            }
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
        }
        if sync {
            let syncStart = metricsNow()
            try segment.sync()
            syncStats.record(entries: batch.count, since: syncStart)
            lastSyncMs = Monitor.monotonicMs()
        }
        let uncovered = frontier.size - checkpointedSize
        let timeDue = uncoveredSinceMs.map { Monitor.monotonicMs() - $0 >= Int64(checkpointPolicy.milliseconds) } ?? false
        if uncovered > 0 && (final || uncovered >= UInt64(checkpointPolicy.entries) || timeDue) {
            let note = try signer.sign(Checkpoint(origin: signer.name, size: frontier.size, root: frontier.root))
            var framed: [UInt8] = []
            RecordFrame.append(Array(note.utf8), to: &framed)
            try checkpointFile.append(framed)
            if sync { try checkpointFile.sync() }
            checkpointedSize = frontier.size
            uncoveredSinceMs = nil
            monitor.lock(); latest = note; monitor.unlock()
        }
    }
}
