import Cedar
import Guardrails

extension BenchCommand {
    /// `custos bench place`: the scheduler hook's cost. A GxP job of the example EU oncology
    /// trial over three pseudonymised datasets (DE clinical, FR clinical, DE genomic) against N
    /// candidate nodes spread over every configured region, some dedicated to studies.
    static func runPlace(_ args: ParsedArguments) throws -> Int32 {
        let folder = args.value("folder") ?? "policies"
        let n = try args.int("nodes", default: 1000)
        let k = try args.int("iterations", default: 500)
        guard n > 0, k > 0 else { throw UsageError(message: "--nodes and --iterations must be positive") }
        let config: GuardrailConfig
        do { config = try GuardrailConfig.load(policiesFolder: folder) } catch { throw UsageError(message: "\(error)") }
        guard let image = config.compute?.imageDigests.sorted().first else {
            throw UsageError(message: "\(folder)/guardrails has no qualified images (compute.json); nothing to place")
        }
        let datasets = [
            DatasetAttributes(id: "onc-de", residency: "DE", state: .pseudonymised, dataClass: "clinical", study: "ONC-301"),
            DatasetAttributes(id: "onc-fr", residency: "FR", state: .pseudonymised, dataClass: "clinical", study: "ONC-301"),
            DatasetAttributes(id: "onc-genomic", residency: "DE", state: .pseudonymised, dataClass: "genomic", study: "ONC-301"),
        ]
        let job = PlacementJob(id: "bench", principal: "User::\"bench\"", study: "ONC-301", purpose: "primary_research",
                               datasets: datasets.map(\.id), gxp: true, image: "registry.example/bench@" + image)
        let now = try CedarDatetime.parse("2026-06-01")
        let (times, result) = Placement.benchmark(config: config, job: job, datasets: datasets, consent: .empty, now: now,
                                        nodeCount: n, iterations: k)
        let pct = { (p: Double) in Double(times[min(times.count - 1, Int(Double(times.count) * p))]) / 1000 }
        print("place: \(n) candidate nodes, 3 datasets (DE, FR, DE genomic), GxP job, \(k) calls")
        print(String(format: "  p50 %.1f us  p99 %.1f us", pct(0.5), pct(0.99)))
        var codes: [String: Int] = [:]
        for (_, reasons) in result.rejected { for r in reasons { codes[r.code.rawValue, default: 0] += 1 } }
        print("  answer: \(result.allowed.count) allowed, \(result.rejected.count) rejected "
              + codes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        return 0
    }
}
