import CustosJSON

/// Where a log folder starts once its oldest segments were archived and pruned: `base.json`,
/// holding the Merkle frontier of the entries before it (one hash per perfect subtree) and the
/// signed checkpoint at exactly that size. The frontier is all the tree needs to go on from
/// there; it proves itself, since it must hash to the root the checkpoint signs.
///
/// An archive of a range that does not start at entry 0 carries the same file for its start,
/// so it verifies on its own.
public struct LogBase: Sendable {
    public static let fileName = "base.json"

    public let frontier: MerkleFrontier
    /// The signed note at `size`, as stored.
    public let checkpointNote: String
    /// The note's checkpoint, its signature not yet checked (see `verify`).
    public let checkpoint: Checkpoint

    public var size: UInt64 { frontier.size }

    public init(frontier: MerkleFrontier, checkpointNote: String) throws(AuditError) {
        let cp = try Checkpoint(unsignedNote: checkpointNote)
        guard cp.size == frontier.size else {
            throw .checkpoint("\(LogBase.fileName): the checkpoint is at size \(cp.size) but the frontier is at \(frontier.size)")
        }
        guard cp.root == frontier.root else {
            throw .checkpoint("\(LogBase.fileName): the frontier does not hash to the root its checkpoint signs at size \(cp.size)")
        }
        self.frontier = frontier
        self.checkpointNote = checkpointNote
        self.checkpoint = cp
    }

    /// Checks the checkpoint's signature with the log's key.
    public func verify(publicKey: NoteVerifierKey) throws(AuditError) -> Checkpoint {
        let cp = try Checkpoint(signedNote: checkpointNote, verifier: publicKey)
        guard cp.origin.utf8.elementsEqual(publicKey.name.utf8) else {
            throw .checkpoint("\(LogBase.fileName): the checkpoint is for log \"\(cp.origin)\", not \"\(publicKey.name)\"")
        }
        return cp
    }

    public var json: [UInt8] {
        var w = JSONWriter(capacity: 4096)
        w.raw("{\"size\":")
        w.int(Int64(clamping: size))
        w.raw(",\"frontier\":[")
        for (i, n) in frontier.nodes.enumerated() {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            w.string(n.hash.base64)
        }
        w.raw("],\"checkpoint\":")
        w.string(checkpointNote)
        w.raw("}\n")
        return w.bytes
    }

    public init(json bytes: [UInt8], path: String) throws(AuditError) {
        func bad(_ why: String) -> AuditError { .corruptLog(path: path, offset: 0, reason: why) }
        guard bytes.count <= 64 * 1024 else { throw bad("larger than a base file can be") }
        let j: JSON
        do { j = try JSON.parse(bytes) } catch { throw bad("not JSON: \(error.message)") }
        guard let o = j.objectValue, case .int(let size)? = o["size"], size >= 0,
              let hashes = o["frontier"]?.arrayValue, let note = o["checkpoint"]?.stringValue else {
            throw bad("expected {\"size\", \"frontier\", \"checkpoint\"}")
        }
        var digests: [SHA256Digest] = []
        for h in hashes {
            guard let text = h.stringValue, let raw = Base64.decode(Array(text.utf8)), let d = SHA256Digest(bytes: raw) else {
                throw bad("a frontier hash is not base64 of 32 bytes")
            }
            digests.append(d)
        }
        guard let frontier = MerkleFrontier(size: UInt64(size), hashes: digests) else {
            throw bad("a frontier at size \(size) has \(UInt64(size).nonzeroBitCount) hashes, not \(digests.count)")
        }
        try self.init(frontier: frontier, checkpointNote: note)
    }

    /// The folder's base, nil when it starts at entry 0.
    public static func read(_ dir: String) throws(AuditError) -> LogBase? {
        let path = dir + "/" + fileName
        guard FileSystem.exists(path) else { return nil }
        return try LogBase(json: try FileSystem.readAll(path), path: path)
    }

    public func write(to dir: String) throws(AuditError) {
        try FileSystem.writeAtomically(dir + "/" + LogBase.fileName, json, mode: 0o644)
    }
}

extension Checkpoint {
    /// The checkpoint a signed note carries, its signatures unchecked.
    public init(unsignedNote note: String) throws(AuditError) {
        let u = Array(note.utf8)
        var i = u.count - 2
        while i >= 0, !(u[i] == 0x0A && u[i + 1] == 0x0A) { i -= 1 }
        guard i >= 0 else { throw .checkpoint("a stored checkpoint has no signature block") }
        try self.init(body: String(decoding: u[...i], as: UTF8.self))
    }
}

/// `archived.json` in a log folder: what the last `custos audit archive` copied, so `health`
/// can say how far behind the archive is without reading it.
public struct ArchiveMarker: Sendable, Equatable {
    public static let fileName = "archived.json"
    public var archiveDirectory: String
    /// Entries before this are in the archive.
    public var archivedThrough: UInt64
    public var time: AuditTimestamp

    public init(archiveDirectory: String, archivedThrough: UInt64, time: AuditTimestamp) {
        self.archiveDirectory = archiveDirectory; self.archivedThrough = archivedThrough; self.time = time
    }

    public static func read(_ dir: String) throws(AuditError) -> ArchiveMarker? {
        let path = dir + "/" + fileName
        guard FileSystem.exists(path) else { return nil }
        let bytes = try FileSystem.readAll(path)
        guard let j = try? JSON.parse(bytes), let o = j.objectValue, let a = o["archive"]?.stringValue,
              case .int(let n)? = o["archived_through"], n >= 0, let t = o["time"]?.stringValue,
              let time = AuditTimestamp(rfc3339: t) else {
            throw .corruptLog(path: path, offset: 0, reason: "expected {\"archive\", \"archived_through\", \"time\"}")
        }
        return ArchiveMarker(archiveDirectory: a, archivedThrough: UInt64(n), time: time)
    }

    public func write(to dir: String) throws(AuditError) {
        var w = JSONWriter(capacity: 256)
        w.raw("{\"archive\":")
        w.string(archiveDirectory)
        w.raw(",\"archived_through\":")
        w.int(Int64(clamping: archivedThrough))
        w.raw(",\"time\":")
        w.string(time.rfc3339)
        w.raw("}\n")
        try FileSystem.writeAtomically(dir + "/" + ArchiveMarker.fileName, w.bytes, mode: 0o644)
    }
}
