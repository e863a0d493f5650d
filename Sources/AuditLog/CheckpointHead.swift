#if canImport(Glibc)
import Glibc
#endif

/// `checkpoint.head`: the newest signed checkpoint, rewritten after every write batch so that
/// in `always` mode an answer leaves only once a checkpoint covering its entry is on disk.
///
/// `checkpoints.log` keeps the history (a checkpoint every N entries or second); signing a
/// checkpoint per batch into it would grow it with every batch, and `verify` checks every one
/// of its signatures. The head instead holds two slots of `slotSize` bytes, written in turn,
/// each one framed record (`RecordFrame`) of a signed note: a torn write damages only the slot
/// being written, whose checksum then fails, and the other still holds the previous checkpoint.
package enum CheckpointHead {
    package static let fileName = "checkpoint.head"
    package static let slotSize = 4096

    /// The notes in the head's valid slots (damaged or empty slots are left out), and whether
    /// the file exists.
    package static func read(_ dir: String) throws(AuditError) -> (exists: Bool, notes: [(slot: Int, note: String)]) {
        let path = dir + "/" + fileName
        guard FileSystem.exists(path) else { return (false, []) }
        let file = try MappedFile(path: path)
        var notes: [(Int, String)] = []
        for slot in 0..<2 {
            let start = slot * slotSize
            guard file.bytes.count > start else { break }
            let bytes = UnsafeRawBufferPointer(rebasing: file.bytes[start..<min(file.bytes.count, start + slotSize)])
            var found: String? = nil
            // Only the slot's first record counts; bytes after it are left from longer notes.
            _ = RecordFrame.scan(bytes) { _, payload in
                found = String(decoding: payload, as: UTF8.self)
                return false
            }
            if let found { notes.append((slot, found)) }
        }
        return (true, notes)
    }
}

/// The writer's handle on `checkpoint.head`.
final class HeadFile {
    let path: String
    private var fd: Int32
    /// The slot the next note goes to: never the one holding the newest note.
    private var nextSlot: Int

    private init(path: String, fd: Int32, nextSlot: Int) {
        self.path = path
        self.fd = fd
        self.nextSlot = nextSlot
    }

    /// Opens the head, creating it (empty, its name made durable) when missing. `newestSlot`
    /// is the slot holding the newest valid note, if any.
    static func open(path: String, newestSlot: Int?) throws(AuditError) -> HeadFile {
        let existed = FileSystem.exists(path)
        let fd = Glibc.open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (existed ? 0 : O_CREAT | O_EXCL), 0o600)
        guard fd >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        if !existed {
            do throws(AuditError) { try FileSystem.syncDirectory(containing: path) } catch {
                Glibc.close(fd)
                throw error
            }
        }
        return HeadFile(path: path, fd: fd, nextSlot: newestSlot.map { 1 - $0 } ?? 0)
    }

    /// Writes `note` into the next slot; `sync` makes it durable before returning.
    func write(_ note: String, sync: Bool) throws(AuditError) {
        var framed: [UInt8] = []
        RecordFrame.append(Array(note.utf8), to: &framed)
        guard framed.count <= CheckpointHead.slotSize else {
            throw .checkpoint("a signed checkpoint of \(framed.count) bytes does not fit a \(CheckpointHead.slotSize)-byte head slot: use a shorter key name")
        }
        let offset = off_t(nextSlot * CheckpointHead.slotSize)
        var done = 0
        while done < framed.count {
            let n = framed.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, framed.count - done, offset + off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .io(operation: "write", path: path, errno: n < 0 ? errno : EIO) }
            done += n
        }
        if sync {
            guard fdatasync(fd) == 0 else { throw .io(operation: "fdatasync", path: path, errno: errno) }
        }
        nextSlot = 1 - nextSlot
    }

    func sync() throws(AuditError) {
        guard fdatasync(fd) == 0 else { throw .io(operation: "fdatasync", path: path, errno: errno) }
    }

    func closeFile() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    deinit { closeFile() }
}
