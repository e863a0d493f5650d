import Metrics
#if canImport(Glibc)
import Glibc
#endif

/// How much room the audit log takes and has left: what an operator watches to archive and
/// prune in time (docs/operations.md). The daemon reports it in `health`; a metrics exporter
/// can read the same values (`AuditDiskUsage.measure`).
public struct AuditDiskUsage: Sendable, Equatable {
    /// Bytes of every file in the log folder (segments, checkpoints, keys).
    public var bytes: UInt64 = 0
    /// Segment files in the folder, and how many of them are sealed (all but the newest).
    public var segments: Int = 0
    public var sealedSegments: Int = 0
    /// The first entry the folder holds (above 0 once archived segments were pruned).
    public var firstEntry: UInt64 = 0
    /// What the last `custos audit archive` recorded: entries before this are archived (nil
    /// when nothing was archived yet), and sealed segments after it, waiting for the next run.
    public var archivedThrough: UInt64? = nil
    public var unarchivedSealedSegments: Int = 0
    /// The file system holding the folder: its size and what an unprivileged writer may still use.
    public var filesystemBytes: UInt64 = 0
    public var filesystemAvailableBytes: UInt64 = 0

    public init() {}

    /// Lists the folder and asks the file system; reads no segment.
    public static func measure(logDirectory dir: String) throws(AuditError) -> AuditDiskUsage {
        var u = AuditDiskUsage()
        var firsts: [UInt64] = []
        for name in try FileSystem.list(dir) {
            var st = stat()
            guard lstat(dir + "/" + name, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { continue }
            u.bytes &+= UInt64(max(0, st.st_size))
            if let first = SegmentName.firstIndex(of: name) { firsts.append(first) }
        }
        firsts.sort()
        u.segments = firsts.count
        u.sealedSegments = max(0, firsts.count - 1)
        let base = try? LogBase.read(dir)
        u.firstEntry = base?.size ?? 0
        u.archivedThrough = (try? ArchiveMarker.read(dir))?.archivedThrough
        let sealed = firsts.dropLast().filter { $0 >= u.firstEntry }
        u.unarchivedSealedSegments = sealed.filter { $0 >= (u.archivedThrough ?? 0) }.count
        var fs = statvfs()
        if statvfs(dir, &fs) == 0 {
            u.filesystemBytes = UInt64(fs.f_blocks).multipliedReportingOverflow(by: UInt64(fs.f_frsize)).partialValue
            u.filesystemAvailableBytes = UInt64(fs.f_bavail).multipliedReportingOverflow(by: UInt64(fs.f_frsize)).partialValue
        }
        return u
    }
}

extension AuditDiskUsage {
    /// The same numbers as gauges, for `metrics` and `/metrics` (docs/operations.md, "Metrics"):
    /// an alert on `custos_audit_filesystem_available_bytes` comes before the log fails closed.
    public var metricFamilies: [MetricFamily] {
        func gauge(_ name: String, _ help: String, _ v: UInt64) -> MetricFamily {
            .gauge(name, help, [MetricSample(value: .int(v))])
        }
        var families = [
            gauge("custos_audit_disk_bytes", "Bytes of every file in the audit log folder.", bytes),
            gauge("custos_audit_segments", "Segment files in the audit log folder.", UInt64(max(0, segments))),
            gauge("custos_audit_sealed_segments", "Sealed segment files (all but the newest).", UInt64(max(0, sealedSegments))),
            gauge("custos_audit_unarchived_sealed_segments", "Sealed segments the archive does not hold yet.", UInt64(max(0, unarchivedSealedSegments))),
            gauge("custos_audit_first_entry", "The first entry the live folder holds (above 0 once archived segments were pruned).", firstEntry),
            gauge("custos_audit_filesystem_bytes", "Size of the file system holding the audit log.", filesystemBytes),
            gauge("custos_audit_filesystem_available_bytes", "Bytes the daemon's user may still write on that file system.", filesystemAvailableBytes),
        ]
        if let archivedThrough {
            families.append(gauge("custos_audit_archived_through", "Entries before this are archived (absent before the first archive run).", archivedThrough))
        }
        return families
    }
}
