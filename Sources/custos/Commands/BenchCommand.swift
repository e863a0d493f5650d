import Foundation
import Cedar
import CustosJSON

/// `custos bench`: benchmarks that print figures (never asserted by tests).
enum BenchCommand {
    static let spec = CommandSpec(
        name: "bench",
        summary: "Measure decision speed: `bench cedar` (in-process engine).",
        usage: "custos bench cedar [--policies N] [--requests M] [--seed S] [--write DIR]",
        options: [
            OptionSpec(name: "policies", valueName: "N", help: "Policies in the generated set (default 20)."),
            OptionSpec(name: "requests", valueName: "M", help: "Requests to decide (default 100000)."),
            OptionSpec(name: "seed", valueName: "S", help: "Workload seed (default 1)."),
            OptionSpec(name: "write", valueName: "DIR", help: "Also write the workload (policies.cedar, entities.json, requests.jsonl) to DIR."),
        ],
        details: """
        The workload (10,000 entities in 3-level hierarchies, five policy shapes) is described in
        docs/benchmarks.md. Prints decisions/s and p50/p99 microseconds per authorization, timed
        one by one in-process after loading. bench/cedar_vs_cedarpy.sh runs it beside cedarpy.
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        guard args.positionals.first == "cedar" else {
            throw UsageError(message: "usage: \(spec.usage)")
        }
        let n = try args.int("policies", default: 20)
        let m = try args.int("requests", default: 100_000)
        let seed = UInt64(try args.int("seed", default: 1))
        guard n > 0, m > 0 else { throw UsageError(message: "--policies and --requests must be positive") }

        let workload = CedarWorkload(policies: n, requests: m, seed: seed)
        if let dir = args.value("write") {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try workload.policyText.write(toFile: dir + "/policies.cedar", atomically: true, encoding: .utf8)
            try workload.entitiesJSON.serialized.write(toFile: dir + "/entities.json", atomically: true, encoding: .utf8)
            try workload.requests.map(\.serialized).joined(separator: "\n").appending("\n")
                .write(toFile: dir + "/requests.jsonl", atomically: true, encoding: .utf8)
        }
        let policies = try PolicySet.parse(workload.policyText, file: "bench.cedar")
        let entities = try EntityStore.load(json: workload.entitiesJSON)
        let requests = try workload.requests.map { try Request(json: $0) }

        // Warm up caches and the allocator before timing.
        var allows = 0
        for r in requests.prefix(1_000) where policies.authorize(r, entities: entities).decision == .allow { allows += 1 }
        allows = 0
        var samples = [UInt64](repeating: 0, count: requests.count)
        let start = monotonicNanos()
        for (i, r) in requests.enumerated() {
            let t0 = monotonicNanos()
            if policies.authorize(r, entities: entities).decision == .allow { allows += 1 }
            samples[i] = monotonicNanos() - t0
        }
        let total = monotonicNanos() - start
        samples.sort()
        let pct = { (p: Double) in Double(samples[min(samples.count - 1, Int(Double(samples.count) * p))]) / 1000 }
        print(String(format: "cedar in-process: policies=%d entities=%d requests=%d allow=%d", n, entities.count, m, allows))
        print(String(format: "  %.0f decisions/s  mean %.2f us  p50 %.2f us  p99 %.2f us",
                     Double(m) / (Double(total) / 1e9), Double(total) / Double(m) / 1000, pct(0.50), pct(0.99)))
        return 0
    }

    static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
