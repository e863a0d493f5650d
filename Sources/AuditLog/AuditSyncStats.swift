import Metrics

/// What the writer's syncs cost, for the daemon's metrics: how long each fdatasync of a batch
/// took and how many entries it made durable. Recorded by the writer thread, read at scrape.
public final class AuditSyncStats: Sendable {
    public let duration = HistogramFamily(name: "custos_audit_sync_duration_seconds",
                                          help: "Time of one fdatasync of the audit log's segment, covering one batch of entries.",
                                          bounds: latencyBucketsNanos, perUnit: 1e9)
    public let batchEntries = HistogramFamily(name: "custos_audit_sync_batch_entries",
                                              help: "Entries made durable by one audit log sync.",
                                              bounds: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024])

    public init() {}

    @inline(__always) public func record(entries: Int, since start: UInt64) {
        duration.observe(0, metricsNow() &- start)
        batchEntries.observe(0, UInt64(entries))
    }

    public var families: [MetricFamily] { [duration.family, batchEntries.family] }
}
