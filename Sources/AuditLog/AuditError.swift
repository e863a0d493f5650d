#if canImport(Glibc)
import Glibc
#endif

/// Everything that can go wrong with the audit log. A daemon that gets any of these from
/// `AuditWriter.append` must fail closed: the decision was not recorded.
public enum AuditError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A system call failed on a file of the log.
    case io(operation: String, path: String, errno: Int32)
    /// A segment holds bytes that are neither valid records nor a torn final record.
    case corruptLog(path: String, offset: Int, reason: String)
    /// The segments hold fewer entries than the newest signed checkpoint covers.
    case truncatedBelowCheckpoint(entries: UInt64, checkpointSize: UInt64)
    /// `checkpoints.log` is missing or holds no checkpoint while the log has entries: the
    /// history was removed (a log starts with the empty tree's checkpoint).
    case checkpointsMissing(entries: UInt64)
    /// Entries after the newest checkpoint beyond what a crash leaves (one batch of at most
    /// `AuditWriter.maxBatch` entries in the last segment, with `checkpoint.head` present).
    case uncoveredEntries(entries: UInt64, newestCheckpoint: UInt64, headMissing: Bool)
    /// An earlier write or fsync failed; the writer stopped for good (retrying could report
    /// data as durable that the kernel already dropped).
    case writerFailed(reason: String)
    /// `append` after `close()`.
    case closed
    /// A signing or verifying key could not be made, read or stored.
    case key(String)
    /// A checkpoint could not be parsed, signed or verified.
    case checkpoint(String)
    /// A stored entry is not a well-formed audit record.
    case malformedEntry(String)
    /// One encoded entry exceeds the record limit.
    case entryTooLarge(bytes: Int, limit: Int)

    public var description: String {
        switch self {
        case let .io(op, path, e):
            "audit log: \(op) failed for \(path): \(String(cString: strerror(e))) (errno \(e))"
        case let .corruptLog(path, offset, reason):
            "audit log: \(path) is corrupt at byte \(offset): \(reason); run the offline verifier and restore the segment from a replica before restarting"
        case let .truncatedBelowCheckpoint(entries, size):
            "audit log: the segments hold \(entries) entries but a signed checkpoint covers \(size); entries were deleted, restore them before restarting"
        case let .checkpointsMissing(entries):
            "audit log: the segments hold \(entries) entries but checkpoints.log is missing or holds no checkpoint (a log starts with one): it was deleted or emptied. Restore checkpoints.log from a backup or replica, or accept the entries as they are with `custos audit recover`, which records that in the log"
        case let .uncoveredEntries(entries, newest, headMissing):
            "audit log: entries \(newest)..<\(entries) follow the newest signed checkpoint (size \(newest))\(headMissing ? " and checkpoint.head is missing" : ""), more than a crash leaves (one batch of at most \(AuditWriter.maxBatch) entries in the last segment): checkpoints were removed, or a custos that signed less often wrote the log and stopped without its final checkpoint. Restore the checkpoint files from a backup, or accept the entries as they are with `custos audit recover`, which records that in the log"
        case let .writerFailed(reason):
            "audit log: the writer stopped after an unrecoverable error (\(reason)); restart the daemon once the storage is healthy"
        case .closed:
            "audit log: the writer is closed"
        case let .key(m):
            "audit log key: \(m)"
        case let .checkpoint(m):
            "audit checkpoint: \(m)"
        case let .malformedEntry(m):
            "audit entry: \(m)"
        case let .entryTooLarge(bytes, limit):
            "audit log: an entry of \(bytes) bytes exceeds the limit of \(limit) bytes; shorten its reasons or context"
        }
    }
}
