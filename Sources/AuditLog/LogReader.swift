/// Reads a state folder's segments in log order. Shared by the writer's recovery, the offline
/// verifier, queries and proof generation, so they all agree on what the log holds.
package enum LogReader {
    package static let checkpointFile = "checkpoints.log"

    /// Why a scan stopped before the end of the data.
    package enum Issue: Equatable, Sendable {
        /// A segment starts at `found` where `expected` entries precede it.
        case segmentGap(segment: String, expected: UInt64, found: UInt64)
        /// Damaged bytes at `offset` in `segment`, where entry `index` should start.
        case corrupt(segment: String, offset: Int, index: UInt64, reason: String)
    }

    package struct Summary: Sendable {
        /// The first entry the folder holds: 0, or the size of its `base.json`.
        package var origin: UInt64 = 0
        /// One past the last whole entry (its count when the folder starts at 0).
        package var entries: UInt64 = 0
        package var issue: Issue?
        /// The last segment and the length of its valid prefix (shorter than the file when a
        /// torn record follows).
        package var lastSegment: (name: String, validLength: Int, fileLength: Int)?
        package var tornBytes: Int { lastSegment.map { $0.fileLength - $0.validLength } ?? 0 }
    }

    /// Calls `body(index, payload)` for every whole record, in order, stopping at the first
    /// damaged record or when `body` returns false. With `from`, records before that index are
    /// not passed to `body` and segments that end before it are not read: for reading on where
    /// an earlier scan of a growing log stopped.
    ///
    /// The log starts at `origin`, by default the size of the folder's `base.json` (0 without
    /// one): segments wholly before it, which a prune that stopped between writing the base and
    /// deleting them leaves, are not read.
    package static func scan(_ dir: String, origin: UInt64? = nil, from start: UInt64 = 0,
                             _ body: (UInt64, UnsafeRawBufferPointer) -> Bool) throws(AuditError) -> Summary {
        var summary = Summary()
        let first: UInt64
        if let origin { first = origin } else { first = try LogBase.read(dir)?.size ?? 0 }
        summary.origin = first
        summary.entries = first
        var segments = try SegmentName.list(dir)
        while segments.count > 1, segments[1].first <= first { segments.removeFirst() }
        for (i, seg) in segments.enumerated() {
            if i + 1 < segments.count, segments[i + 1].first <= start, seg.first == summary.entries {
                summary.entries = segments[i + 1].first
                continue
            }
            if seg.first != summary.entries {
                summary.issue = .segmentGap(segment: seg.name, expected: summary.entries, found: seg.first)
                return summary
            }
            let file = try MappedFile(path: dir + "/" + seg.name)
            var stopped = false
            var index = summary.entries
            let end = RecordFrame.scan(file.bytes) { _, payload in
                if index >= start, !body(index, payload) { stopped = true; return false }
                index += 1
                return true
            }
            summary.entries = index
            if stopped { return summary }
            switch end {
            case .clean:
                summary.lastSegment = (seg.name, file.bytes.count, file.bytes.count)
            case .torn(let offset) where i == segments.count - 1:
                summary.lastSegment = (seg.name, offset, file.bytes.count)
            case .torn(let offset):
                summary.issue = .corrupt(segment: seg.name, offset: offset, index: index,
                                         reason: "a record is cut short but later segments follow")
                return summary
            case .corrupt(let offset, let reason):
                summary.issue = .corrupt(segment: seg.name, offset: offset, index: index, reason: reason)
                return summary
            }
        }
        return summary
    }

    /// The signed checkpoint notes in the order they were written, and the valid length of
    /// the file (a torn final note is left out).
    package static func checkpoints(_ dir: String) throws(AuditError) -> (notes: [String], validLength: Int, corrupt: String?) {
        let path = dir + "/" + checkpointFile
        guard FileSystem.exists(path) else { return ([], 0, nil) }
        let file = try MappedFile(path: path)
        var notes: [String] = []
        let end = RecordFrame.scan(file.bytes) { _, payload in
            notes.append(String(decoding: payload, as: UTF8.self))
            return true
        }
        switch end {
        case .clean: return (notes, file.bytes.count, nil)
        case .torn(let offset): return (notes, offset, nil)
        case .corrupt(let offset, let reason): return (notes, offset, "\(path) at byte \(offset): \(reason)")
        }
    }

    /// The newest checkpoint note, of `checkpoint.head` and `checkpoints.log` (the one with the
    /// largest size), as stored; nil when there is none. Not verified.
    package static func newestCheckpoint(_ dir: String) throws(AuditError) -> (note: String, checkpoint: Checkpoint)? {
        var best: (note: String, checkpoint: Checkpoint)? = nil
        let notes = Array(try checkpoints(dir).notes.suffix(1)) + (try CheckpointHead.read(dir)).notes.map(\.note)
        for note in notes {
            let u = Array(note.utf8)
            var i = u.count - 2
            while i >= 0, !(u[i] == 0x0A && u[i + 1] == 0x0A) { i -= 1 }
            guard i >= 0 else { throw .checkpoint("a stored checkpoint has no signature block") }
            let cp = try Checkpoint(body: String(decoding: u[...i], as: UTF8.self))
            if best == nil || cp.size > best!.checkpoint.size { best = (note, cp) }
        }
        return best
    }

    /// The seq member of an entry's canonical JSON, read without a JSON parse: canonical entries
    /// begin `{"seq":<digits>,`.
    package static func seq(of payload: UnsafeRawBufferPointer) -> UInt64? {
        let prefix: StaticString = "{\"seq\":"
        let n = prefix.utf8CodeUnitCount
        guard payload.count > n + 1 else { return nil }
        for i in 0..<n where payload[i] != prefix.utf8Start[i] { return nil }
        var j = n
        while j < payload.count, payload[j] >= 0x30, payload[j] <= 0x39 { j += 1 }
        guard j < payload.count, payload[j] == UInt8(ascii: ",") else { return nil }
        return parseCanonicalDecimal(UnsafeRawBufferPointer(rebasing: payload[n..<j]))
    }
}
