import CustosJSON
import Glibc
import Foundation  // Thread only

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

/// How many entries one checkpoint may cover at most. The writer signs a checkpoint after every
/// write batch (in `always` mode before any answer of the batch leaves) and never writes more
/// than `entries` entries in one batch, so a crash can leave at most that many entries at the
/// end of the log without a checkpoint.
public struct CheckpointPolicy: Sendable, Equatable {
    /// The most a batch may hold, whatever is configured: after a crash, the open rule and the
    /// verifier accept at most this many entries after the newest checkpoint.
    public static let maxEntries = 1024

    public var entries: Int

    public init(entries: Int = CheckpointPolicy.maxEntries) {
        self.entries = min(max(1, entries), Self.maxEntries)
    }
}

/// Entries at the end of the log that no checkpoint covered when it was opened.
public struct AuditUncoveredEntries: Sendable, Equatable {
    /// Seq of the first and one past the last of them.
    public var from: UInt64
    public var to: UInt64
    /// The newest checkpoint's size; nil when checkpoints.log held no checkpoint (or was missing).
    public var newestCheckpoint: UInt64?
    /// Lowercase hex SHA-256 of their framed records as they were on disk (for entries that
    /// were cut: what an investigator can match a copy against).
    public var sha256: String?

    public init(from: UInt64, to: UInt64, newestCheckpoint: UInt64?, sha256: String? = nil) {
        self.from = from; self.to = to; self.newestCheckpoint = newestCheckpoint; self.sha256 = sha256
    }

    public var count: UInt64 { to - from }
}

/// What opening a log found, beyond entries to continue from.
public struct AuditOpenReport: Sendable {
    /// Entries in the log once opened.
    public var entries: UInt64 = 0
    /// Bytes of a torn final record that were cut (never acknowledged).
    public var tornBytesCut = 0
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
    private var lastSyncMs: Int64 = 0
    private var latest: String?

    /// Queued entries beyond which `append` waits even in `batch` and `off` modes.
    private static let maxPending = 65_536
    /// In `off` mode, how long the writer lets a batch fill after waking: one write and one
    /// wake-up per few milliseconds instead of per entry. `off` promises nothing before
    /// `close()`, so the delay costs no durability.
    private static let offLingerMs: Int64 = 2
    /// Entries per write (and per checkpoint): `checkpointPolicy.entries`. Segment rotation
    /// happens between batches, so a batch never spans two segments.
    private var maxBatch: Int { checkpointPolicy.entries }

    /// What `open` found and did.
    public let openReport: AuditOpenReport

    private init(stateDirectory: String, durability: AuditDurability, checkpointPolicy: CheckpointPolicy,
                 signer: NoteSigner, segmentBytes: Int, onFailure: (@Sendable (AuditError) -> Void)?,
                 segment: AppendFile, checkpointFile: AppendFile, frontier: MerkleFrontier,
                 checkpointedSize: UInt64, latest: String?, openReport: AuditOpenReport) {
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
        self.openReport = openReport
        nextIndex = frontier.size
        durableCount = frontier.size
    }

    /// Opens (creating if needed) the log in `stateDirectory`, recovering from a crash: a torn
    /// final record is cut, and so are entries after the newest checkpoint when they are one
    /// batch at most, all in the last segment (a crash between their write and their
    /// checkpoint: never acknowledged in `always` mode). Anything else that does not add up
    /// throws rather than being repaired: damaged records mid-file, missing segments, fewer
    /// entries than the newest checkpoint covers, entries that do not hash to its root, and
    /// entries no checkpoint covers beyond that one batch (`uncoveredEntries`, which only
    /// `recover` accepts). A new log starts with a checkpoint of the empty tree, so a log with
    /// entries and no checkpoint at all is never a state a crash leaves.
    public static func open(stateDirectory: String, mode: AuditDurability = .always,
                            checkpointEvery: CheckpointPolicy = CheckpointPolicy(),
                            signer: NoteSigner, segmentBytes: Int = 64 << 20,
                            onFailure: (@Sendable (AuditError) -> Void)? = nil) throws(AuditError) -> AuditWriter {
        try open(stateDirectory: stateDirectory, mode: mode, checkpointEvery: checkpointEvery, signer: signer,
                 segmentBytes: segmentBytes, onFailure: onFailure, acceptingUncovered: false)
    }

    /// The explicit recovery (`custos audit recover`): accepts every entry that no checkpoint
    /// covers, as it is, and records that in the log itself. `makeEntry` builds the entry that
    /// says what was accepted and why; it is appended and a checkpoint signed over everything,
    /// so a verifier sees the break. Returns nil, writing nothing, when every entry was already
    /// covered (or only a torn or unacknowledged tail was, which a normal open cuts).
    public static func recover(stateDirectory: String, signer: NoteSigner,
                               makeEntry: (AuditOpenReport) -> AuditEntry) throws(AuditError) -> AuditUncoveredEntries? {
        let w = try open(stateDirectory: stateDirectory, mode: .always, checkpointEvery: CheckpointPolicy(), signer: signer,
                         segmentBytes: 64 << 20, onFailure: nil, acceptingUncovered: true)
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
                             signer: NoteSigner, segmentBytes: Int, onFailure: (@Sendable (AuditError) -> Void)?,
                             acceptingUncovered: Bool) throws(AuditError) -> AuditWriter {
        try FileSystem.makeDirectory(dir)
        // Checkpoints first, so the scan can take the tree as it was at the newest one's size.
        let cps = try LogReader.checkpoints(dir)
        let cpPath = dir + "/" + LogReader.checkpointFile
        if let corrupt = cps.corrupt { throw .corruptLog(path: cpPath, offset: cps.validLength, reason: corrupt) }
        var newest: Checkpoint? = nil
        if let note = cps.notes.last {
            // Parsed, not verified: after a key rotation the old key signed it. The verifier checks.
            guard let split = note.range(of: "\n\n") else {
                throw .corruptLog(path: cpPath, offset: 0, reason: "the newest checkpoint has no signature block")
            }
            newest = try Checkpoint(body: String(note[..<split.lowerBound]) + "\n")
        }

        var frontier = MerkleFrontier()
        var atNewest: MerkleFrontier? = newest?.size == 0 ? frontier : nil
        var last: [UInt8] = [], lastAtNewest: [UInt8] = []
        var badSeq: (UInt64, UInt64?)? = nil
        let summary = try LogReader.scan(dir) { index, payload in
            let seq = LogReader.seq(of: payload)
            guard seq == index else { badSeq = (index, seq); return false }
            frontier.append(leafHash: MerkleHash.leaf(payload))
            last.removeAll(keepingCapacity: true)
            last.append(contentsOf: payload)
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
        if let newest {
            if newest.size > entries { throw .truncatedBelowCheckpoint(entries: entries, checkpointSize: newest.size) }
            guard let atNewest, atNewest.root == newest.root else {
                throw .corruptLog(path: dir, offset: 0, reason: "the first \(newest.size) entries do not match the root of the newest checkpoint")
            }
        }
        var keepLength = summary.lastSegment?.validLength ?? 0
        let covered = newest?.size ?? 0
        if entries > covered {
            var range = AuditUncoveredEntries(from: covered, to: entries, newestCheckpoint: newest?.size)
            let lastFirst = summary.lastSegment.flatMap { SegmentName.firstIndex(of: $0.name) } ?? 0
            if acceptingUncovered {
                report.accepted = range
            } else if newest != nil, entries - covered <= UInt64(CheckpointPolicy.maxEntries), covered >= lastFirst,
                      let seg = summary.lastSegment {
                // One unacknowledged batch: cut it, and say what was cut.
                let cut = try recordOffset(path: dir + "/" + seg.name, record: Int(covered - lastFirst), end: seg.validLength)
                range.sha256 = cut.sha256
                report.uncoveredCut = range
                keepLength = cut.offset
                frontier = atNewest ?? MerkleFrontier()
                last = lastAtNewest
            } else {
                throw .uncoveredEntries(entries: entries, newestCheckpoint: newest?.size)
            }
        }
        report.entries = frontier.size
        if !last.isEmpty { report.lastEntry = try? AuditEntry(canonicalJSON: last) }

        let segment: AppendFile
        if let lastSegment = summary.lastSegment {
            segment = try AppendFile.reopen(path: dir + "/" + lastSegment.name, validLength: keepLength)
        } else {
            segment = try AppendFile.createNew(path: dir + "/" + SegmentName.name(firstIndex: 0))
        }
        let checkpointFile = FileSystem.exists(cpPath)
            ? try AppendFile.reopen(path: cpPath, validLength: cps.validLength)
            : try AppendFile.createNew(path: cpPath)
        var latest = cps.notes.last
        if newest == nil && frontier.size == 0 {
            // The empty tree's checkpoint: from now on, entries without any checkpoint mean the
            // checkpoints were removed, never that a crash came too early.
            let note = try signer.sign(Checkpoint(origin: signer.name, size: 0, root: frontier.root))
            var framed: [UInt8] = []
            RecordFrame.append(Array(note.utf8), to: &framed)
            try checkpointFile.append(framed)
            try checkpointFile.sync()
            latest = note
        }

        let w = AuditWriter(stateDirectory: dir, durability: mode, checkpointPolicy: checkpointEvery, signer: signer,
                            segmentBytes: max(4096, segmentBytes), onFailure: onFailure, segment: segment,
                            checkpointFile: checkpointFile, frontier: frontier, checkpointedSize: covered,
                            latest: latest, openReport: report)
        let thread = Thread { [w] in w.run() }
        thread.name = "custos-audit-writer"
        thread.start()
        return w
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
            // Sleep until there is something to write, or close().
            while pending.isEmpty && !closing {
                writerIdle = true
                monitor.waitForWork()
            }
            writerIdle = false
            if !closing {
                // Let the batch fill; appenders do not wait on it. In `batch` mode for the rest
                // of the interval, in `off` mode briefly (see `offLingerMs`).
                let due: Int64? = switch durability {
                case .batch(let interval): lastSyncMs + Int64(interval)
                case .off: pending.count >= maxBatch ? nil : Monitor.monotonicMs() + Self.offLingerMs
                case .always: nil
                }
                if let due {
                    while !closing && pending.count < Self.maxPending / 2 && Monitor.monotonicMs() < due {
                        monitor.waitForWork(untilMs: due)
                    }
                }
            }
            let batch: [[UInt8]]
            if pending.count <= maxBatch {
                batch = pending
                pending.removeAll(keepingCapacity: true)
            } else {
                batch = Array(pending[..<maxBatch])
                pending.removeFirst(maxBatch)
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

    /// Writes one batch, makes it durable per the mode, then signs a checkpoint over it and makes
    /// that durable too: in `always` mode the batch's answers wait for both, so every answered
    /// entry is covered by a checkpoint on disk. The entries are synced before the checkpoint is
    /// written, so a checkpoint never vouches for entries a crash could lose.
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
        }
        if sync {
            try segment.sync()
            lastSyncMs = Monitor.monotonicMs()
        }
        if frontier.size > checkpointedSize {
            let note = try signer.sign(Checkpoint(origin: signer.name, size: frontier.size, root: frontier.root))
            var framed: [UInt8] = []
            RecordFrame.append(Array(note.utf8), to: &framed)
            try checkpointFile.append(framed)
            if sync { try checkpointFile.sync() }
            checkpointedSize = frontier.size
            monitor.lock(); latest = note; monitor.unlock()
        }
    }
}
