import Cedar
#if canImport(Glibc)
import Glibc
#endif

extension Placement {
    /// Timing of `place` for a job over `nodeCount` candidates spread round-robin over the
    /// configured regions (some dedicated, all GPU-labelled), `iterations` runs after a warm-up.
    /// Returns the sorted per-call durations in nanoseconds and the answer (the same every
    /// call), so the caller can show what the timed work decided.
    public static func benchmark(config: GuardrailConfig, job: PlacementJob, datasets: [DatasetAttributes],
                                 consent: ConsentSnapshot, now: CedarDatetime,
                                 nodeCount: Int = 1000, iterations: Int = 200) -> (nanoseconds: [UInt64], result: PlacementResult) {
        let regions = config.regions?.regionOrder ?? ["r0"]
        let labels = config.compute?.labels ?? NodeLabelKeys()
        let model = config.compute?.gpuModels.first
        var nodes: [PlacementNode] = []
        nodes.reserveCapacity(nodeCount)
        for i in 0..<nodeCount {
            var l: [String: String] = ["kubernetes.io/hostname": "node-\(i)"]
            if let m = model { l[labels.gpuModel] = m.key; l[labels.gpuDriver] = m.value.first! }
            if i % 7 == 0 { l[labels.study] = "study-\(i % 3)" }
            nodes.append(PlacementNode(name: "node-\(i)", region: regions[i % regions.count], labels: l))
        }
        let byID = Dictionary(datasets.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        func now_ns() -> UInt64 {
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
        }
        var out: [UInt64] = []
        out.reserveCapacity(iterations)
        var last: PlacementResult? = nil
        for k in 0..<(iterations + 20) {
            let t0 = now_ns()
            // The principal is a member of the job's study, as for the daemon's usual callers.
            let r = place(job: job, nodes: nodes, config: config, consent: consent, now: now,
                          principalStudies: job.study.map { [$0] },
                          resolve: { id throws(Denial) in byID[id] }, mayPlace: { _ in true })
            let t1 = now_ns()
            last = r
            if k >= 20 { out.append(t1 &- t0) }
        }
        return (out.sorted(), last!)
    }
}
