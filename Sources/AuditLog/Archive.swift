import CustosJSON
#if canImport(Glibc)
import Glibc
#endif

/// Archival and retention of a log folder's sealed segments (`custos audit archive`).
///
/// An archive root holds one folder per archived range, `<first>-<end>` (20 digits each, so
/// name order is log order), laid out like a state folder (`<range>/audit/`) so that every
/// `custos audit` command works on it: its segments as they were, `checkpoints.log` with every
/// history checkpoint of sizes `first...end` (the one at `end` covers exactly the range),
/// `base.json` for a range that does not start at 0, `verifier.key`, and `archive.json`
/// (the manifest: each segment's size and SHA-256, the frontier at `end`, the time of its last
/// entry). Ranges end where the writer sealed a segment, which is also where it put a checkpoint
/// into the history (`AuditWriter.seal`). A range is verified on its own before its folder gets
/// its final name; each next range starts where the last one ended.
///
/// Retention (pruning) removes segments from the live folder only when they belong to an
/// archived range whose copy still hashes to its manifest, whose live files are byte for byte
/// that copy, and whose last entry is older than the retention period. It first writes the live
/// folder's new `base.json` (the frontier and checkpoint at the range's end), then deletes: a
/// crash in between leaves segments the base makes readers skip, removed by the next run.
public enum AuditArchive {
    public static let manifestFile = "archive.json"
    public static let lockFile = "archive.lock"

    public struct Report: Sendable, Equatable {
        /// The range archived by this run, and its folder (nil when nothing new was sealed).
        public var archived: Range<UInt64>?
        public var archiveFolder: String?
        public var archivedSegments: Int = 0
        /// Entries the live folder no longer holds after this run's pruning (nil when none).
        public var pruned: Range<UInt64>?
        public var prunedSegments: Int = 0
        /// Sealed segments still to archive: those after the last sealed boundary that has a
        /// checkpoint (only a log written before segments were sealed with one has any).
        public var pendingSealedSegments: Int = 0
        /// Everything the archive root holds, first to end.
        public var archivedThrough: UInt64 = 0
    }

    /// One archived range, as its manifest describes it.
    public struct Manifest: Sendable {
        public var log: String
        public var first: UInt64
        public var end: UInt64
        public var lastEntryTime: AuditTimestamp?
        public var endFrontier: MerkleFrontier
        public var segments: [(name: String, bytes: Int, sha256: String)]
        public var folder: String
    }

    /// Folder name of a range.
    public static func folderName(_ r: Range<UInt64>) -> String {
        func pad(_ v: UInt64) -> String { let s = String(v); return String(repeating: "0", count: max(0, 20 - s.count)) + s }
        return pad(r.lowerBound) + "-" + pad(r.upperBound)
    }

    /// Archives every sealed segment not yet in `archiveRoot`, then prunes per `pruneOlderThanMs`
    /// (nil: never; 0: as soon as archived). `dir` is the live log folder (`STATE/audit`);
    /// checkpoints are checked with `publicKey`. Safe beside a running daemon: it reads sealed
    /// segments only and takes the folder's archive lock.
    public static func run(logDirectory dir: String, archiveRoot: String, publicKey: NoteVerifierKey,
                           pruneOlderThanMs: Int64? = nil, now: AuditTimestamp = .now()) throws(AuditError) -> Report {
        let lockPath = dir + "/" + lockFile
        let lock = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard lock >= 0 else { throw .io(operation: "open", path: lockPath, errno: errno) }
        defer { close(lock) }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            throw .io(operation: "lock (another custos audit archive is running on this folder)", path: lockPath, errno: errno)
        }
        try FileSystem.makeDirectory(archiveRoot)
        for name in try FileSystem.list(archiveRoot) where name.hasPrefix(".tmp-") {
            try removeTree(archiveRoot + "/" + name)
        }
        var manifests = try readManifests(archiveRoot, log: publicKey.name)
        var report = Report()

        let base = try LogBase.read(dir)
        if let base { _ = try base.verify(publicKey: publicKey) }
        let origin = base?.size ?? 0
        // The history's checkpoints by size, each signature checked.
        var history: [UInt64: String] = [:]
        var historyOrder: [(size: UInt64, note: String)] = []
        for note in try LogReader.checkpoints(dir).notes {
            let cp = try Checkpoint(signedNote: note, verifier: publicKey)
            guard cp.origin.utf8.elementsEqual(publicKey.name.utf8) else {
                throw .checkpoint("a checkpoint in \(dir)/checkpoints.log is for log \"\(cp.origin)\", not \"\(publicKey.name)\"")
            }
            if history[cp.size] == nil { historyOrder.append((cp.size, note)) }
            history[cp.size] = note
        }
        if let base { history[base.size] = history[base.size] ?? base.checkpointNote }

        let last = manifests.last
        let start = last?.end ?? origin
        guard start >= origin else {
            throw .corruptLog(path: dir, offset: 0, reason: "the folder starts at entry \(origin) but \(archiveRoot) ends at \(start): entries \(start)..<\(origin) are in no archive here; archive to the root that holds them")
        }
        let startFrontier = last?.endFrontier ?? base?.frontier ?? MerkleFrontier()
        let segments = try SegmentName.list(dir).filter { $0.first >= origin }
        let sealed = segments.dropLast()
        let sealedEnds = Set(segments.dropFirst().map(\.first))

        // Scan the sealed segments from `start`, noting the tree at each sealed end that the
        // history has a checkpoint for.
        var candidate: (end: UInt64, frontier: MerkleFrontier, lastTime: AuditTimestamp?)? = nil
        if let firstSealed = sealed.first(where: { $0.first >= start }), let stop = segments.last?.first {
            guard firstSealed.first == start else {
                throw .corruptLog(path: dir + "/" + firstSealed.name, offset: 0, reason: "the archive ends at entry \(start) but the next segment starts at \(firstSealed.first)")
            }
            var frontier = startFrontier
            var lastTime: AuditTimestamp? = nil
            var failure: AuditError? = nil
            let summary = try LogReader.scan(dir, origin: origin, from: start) { index, payload in
                if index >= stop { return false }
                guard LogReader.seq(of: payload) == index else {
                    failure = .corruptLog(path: dir, offset: 0, reason: "entry \(index) does not carry seq \(index)")
                    return false
                }
                frontier.append(leafHash: MerkleHash.leaf(payload))
                lastTime = Self.time(of: payload)
                if sealedEnds.contains(frontier.size), let note = history[frontier.size] {
                    guard let cp = try? Checkpoint(unsignedNote: note), cp.root == frontier.root else {
                        failure = .corruptLog(path: dir, offset: 0, reason: "entries before \(frontier.size) do not hash to the checkpoint signed at that size")
                        return false
                    }
                    candidate = (frontier.size, frontier, lastTime)
                }
                return true
            }
            if let failure { throw failure }
            switch summary.issue {
            case .corrupt(let name, let offset, _, let reason)?: throw .corruptLog(path: dir + "/" + name, offset: offset, reason: reason)
            case .segmentGap(let name, let expected, let found)?:
                throw .corruptLog(path: dir + "/" + name, offset: 0, reason: "segment starts at entry \(found) but \(expected) entries precede it")
            case nil: break
            }
        }
        if let c = candidate {
            let range = start..<c.end
            guard let startNote = start == 0 ? "" : history[start] else {
                throw .checkpoint("no signed checkpoint at entry \(start), where this archive would start")
            }
            let files = sealed.filter { range.contains($0.first) }
            let m = try write(range: range, files: files, from: dir, to: archiveRoot, publicKey: publicKey,
                              startFrontier: startFrontier, startNote: startNote,
                              history: historyOrder.filter { $0.size >= range.lowerBound && $0.size <= range.upperBound }.map(\.note),
                              endFrontier: c.frontier, lastTime: c.lastTime, now: now)
            manifests.append(m)
            report.archived = range
            report.archiveFolder = m.folder
            report.archivedSegments = files.count
        }
        let archivedThrough = manifests.last?.end ?? origin
        report.archivedThrough = archivedThrough
        report.pendingSealedSegments = sealed.filter { $0.first >= archivedThrough }.count
        if !manifests.isEmpty {
            try ArchiveMarker(archiveDirectory: archiveRoot, archivedThrough: archivedThrough, time: now).write(to: dir)
        }
        if let keep = pruneOlderThanMs {
            try prune(dir, origin: origin, manifests: manifests, history: history, olderThan: now.millisecondsSinceEpoch - keep, report: &report)
        }
        return report
    }

    /// Copies a range into `<root>/.tmp-<range>/audit`, verifies that folder on its own, then
    /// gives it its final name.
    private static func write(range: Range<UInt64>, files: [(first: UInt64, name: String)], from dir: String,
                              to root: String, publicKey: NoteVerifierKey, startFrontier: MerkleFrontier, startNote: String,
                              history: [String], endFrontier: MerkleFrontier, lastTime: AuditTimestamp?,
                              now: AuditTimestamp) throws(AuditError) -> Manifest {
        let name = folderName(range)
        let tmp = root + "/.tmp-" + name
        let tmpLog = tmp + "/audit"
        try FileSystem.makeDirectory(tmp)
        try FileSystem.makeDirectory(tmpLog)
        var segments: [(name: String, bytes: Int, sha256: String)] = []
        for f in files {
            let src = try MappedFile(path: dir + "/" + f.name)
            let bytes = Array(src.bytes)
            try FileSystem.writeAtomically(tmpLog + "/" + f.name, bytes, mode: 0o644)
            segments.append((f.name, bytes.count, SHA256Digest.hash(bytes).hex))
        }
        var framed: [UInt8] = []
        for note in history { RecordFrame.append(Array(note.utf8), to: &framed) }
        try FileSystem.writeAtomically(tmpLog + "/" + LogReader.checkpointFile, framed, mode: 0o644)
        if range.lowerBound > 0 {
            try LogBase(frontier: startFrontier, checkpointNote: startNote).write(to: tmpLog)
        }
        try FileSystem.writeAtomically(tmpLog + "/verifier.key", Array((publicKey.text + "\n").utf8), mode: 0o644)
        let manifest = Manifest(log: publicKey.name, first: range.lowerBound, end: range.upperBound, lastEntryTime: lastTime,
                                endFrontier: endFrontier, segments: segments, folder: root + "/" + name)
        try FileSystem.writeAtomically(tmpLog + "/" + manifestFile, json(manifest, archivedAt: now), mode: 0o644)
        let check = AuditVerifier.verify(stateDirectory: tmpLog, publicKey: publicKey)
        guard check.isValid, check.origin == range.lowerBound, check.entries == range.upperBound,
              check.latestCheckpoint?.size == range.upperBound else {
            try? removeTree(tmp)
            throw .corruptLog(path: tmpLog, offset: 0, reason: "the archive of entries \(range.lowerBound)..<\(range.upperBound) does not verify on its own: \(check.failure?.description ?? "it ends at \(check.entries)"); nothing was archived")
        }
        guard rename(tmp, root + "/" + name) == 0 else { throw .io(operation: "rename to \(root)/\(name)", path: tmp, errno: errno) }
        try FileSystem.syncDirectory(root)
        return manifest
    }

    /// Moves the live folder's base forward over archived ranges old enough, then deletes
    /// their segments. Nothing that is not archived, and verified in its archive, is removed.
    private static func prune(_ dir: String, origin: UInt64, manifests: [Manifest], history: [UInt64: String],
                              olderThan cutoffMs: Int64, report: inout Report) throws(AuditError) {
        let live = try SegmentName.list(dir)
        guard let newest = live.last?.first else { return }
        var newBase: (end: UInt64, frontier: MerkleFrontier, note: String)? = nil
        var at = origin
        for m in manifests where m.first <= at && m.end > at {
            guard m.first == at, m.end <= newest, let t = m.lastEntryTime, t.millisecondsSinceEpoch <= cutoffMs,
                  let note = history[m.end] else { break }
            // The archived copy must still be what the manifest says, and the live files the same bytes.
            for s in m.segments {
                let copy = try MappedFile(path: m.folder + "/audit/" + s.name)
                guard copy.bytes.count == s.bytes, SHA256Digest.hash(copy.bytes).hex == s.sha256 else {
                    throw .corruptLog(path: m.folder + "/audit/" + s.name, offset: 0, reason: "the archived copy no longer matches its manifest; nothing was pruned")
                }
                let path = dir + "/" + s.name
                if FileSystem.exists(path) {
                    let original = try MappedFile(path: path)
                    guard original.bytes.count == s.bytes, SHA256Digest.hash(original.bytes).hex == s.sha256 else {
                        throw .corruptLog(path: path, offset: 0, reason: "differs from its archived copy in \(m.folder); nothing was pruned")
                    }
                }
            }
            newBase = (m.end, m.endFrontier, note)
            at = m.end
        }
        guard let b = newBase else { return }
        try LogBase(frontier: b.frontier, checkpointNote: b.note).write(to: dir)
        var removed = 0
        for s in live where s.first < b.end {
            let path = dir + "/" + s.name
            guard unlink(path) == 0 || errno == ENOENT else { throw .io(operation: "remove", path: path, errno: errno) }
            removed += 1
        }
        try FileSystem.syncDirectory(dir)
        report.pruned = origin..<b.end
        report.prunedSegments = removed
    }

    /// The manifests under `root`, first to last; they must be one log's and follow each other.
    public static func readManifests(_ root: String, log: String) throws(AuditError) -> [Manifest] {
        var out: [Manifest] = []
        guard FileSystem.exists(root) else { return out }
        for name in try FileSystem.list(root) where !name.hasPrefix(".") {
            let path = root + "/" + name + "/audit/" + manifestFile
            guard FileSystem.exists(path) else { continue }
            let m = try manifest(path: path, folder: root + "/" + name)
            guard m.log.utf8.elementsEqual(log.utf8) else {
                throw .corruptLog(path: path, offset: 0, reason: "archives log \"\(m.log)\", not \"\(log)\": give each log its own archive folder")
            }
            out.append(m)
        }
        out.sort { $0.first < $1.first }
        for (a, b) in zip(out, out.dropFirst()) where a.end != b.first {
            throw .corruptLog(path: b.folder, offset: 0, reason: "starts at entry \(b.first) but the archive before it ends at \(a.end)")
        }
        return out
    }

    private static func json(_ m: Manifest, archivedAt: AuditTimestamp) -> [UInt8] {
        var w = JSONWriter(capacity: 2048)
        w.raw("{\"log\":"); w.string(m.log)
        w.raw(",\"first\":"); w.int(Int64(clamping: m.first))
        w.raw(",\"end\":"); w.int(Int64(clamping: m.end))
        w.raw(",\"last_entry_time\":")
        if let t = m.lastEntryTime { w.string(t.rfc3339) } else { w.null() }
        w.raw(",\"end_frontier\":[")
        for (i, n) in m.endFrontier.nodes.enumerated() {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            w.string(n.hash.base64)
        }
        w.raw("],\"segments\":[")
        for (i, s) in m.segments.enumerated() {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            w.raw("{\"name\":"); w.string(s.name)
            w.raw(",\"bytes\":"); w.int(Int64(s.bytes))
            w.raw(",\"sha256\":"); w.string(s.sha256)
            w.byte(UInt8(ascii: "}"))
        }
        w.raw("],\"archived_at\":"); w.string(archivedAt.rfc3339)
        w.raw("}\n")
        return w.bytes
    }

    private static func manifest(path: String, folder: String) throws(AuditError) -> Manifest {
        func bad(_ why: String) -> AuditError { .corruptLog(path: path, offset: 0, reason: why) }
        let bytes = try FileSystem.readAll(path)
        guard let j = try? JSON.parse(bytes), let o = j.objectValue, let log = o["log"]?.stringValue,
              case .int(let first)? = o["first"], case .int(let end)? = o["end"], first >= 0, end > first,
              let hashes = o["end_frontier"]?.arrayValue, let segs = o["segments"]?.arrayValue else {
            throw bad("not an archive manifest")
        }
        var digests: [SHA256Digest] = []
        for h in hashes {
            guard let t = h.stringValue, let raw = Base64.decode(Array(t.utf8)), let d = SHA256Digest(bytes: raw) else { throw bad("a frontier hash is not base64 of 32 bytes") }
            digests.append(d)
        }
        guard let frontier = MerkleFrontier(size: UInt64(end), hashes: digests) else { throw bad("the frontier does not fit size \(end)") }
        var segments: [(name: String, bytes: Int, sha256: String)] = []
        for s in segs {
            guard let so = s.objectValue, let n = so["name"]?.stringValue, SegmentName.firstIndex(of: n) != nil,
                  case .int(let b)? = so["bytes"], b >= 0, let h = so["sha256"]?.stringValue else { throw bad("a segment entry is malformed") }
            segments.append((n, Int(b), h))
        }
        let time = o["last_entry_time"]?.stringValue.flatMap { AuditTimestamp(rfc3339: $0) }
        return Manifest(log: log, first: UInt64(first), end: UInt64(end), lastEntryTime: time, endFrontier: frontier,
                        segments: segments, folder: folder)
    }

    /// The time of an entry, read from its fixed place (`{"seq":N,"time":"...`).
    static func time(of payload: UnsafeRawBufferPointer) -> AuditTimestamp? {
        guard let comma = payload.firstIndex(of: UInt8(ascii: ",")) else { return nil }
        let start = comma + 9  // `,"time":"`
        let end = start + AuditTimestamp.textLength
        guard end <= payload.count else { return nil }
        return AuditTimestamp(rfc3339: String(decoding: UnsafeRawBufferPointer(rebasing: payload[start..<end]), as: UTF8.self))
    }

    /// Removes a folder this code made (no links followed).
    private static func removeTree(_ path: String) throws(AuditError) {
        for name in (try? FileSystem.list(path)) ?? [] {
            let p = path + "/" + name
            var st = stat()
            guard lstat(p, &st) == 0 else { continue }
            if st.st_mode & S_IFMT == S_IFDIR { try removeTree(p) } else { _ = unlink(p) }
        }
        guard rmdir(path) == 0 || errno == ENOENT else { throw .io(operation: "remove", path: path, errno: errno) }
    }
}
