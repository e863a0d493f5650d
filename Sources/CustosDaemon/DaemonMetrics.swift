import CustosJSON
import CustosServer
import CustosVersion
import Guardrails
import Metrics
import Synchronization

/// The daemon's counters (docs/operations.md, "Metrics"). Decisions are counted where every
/// decision passes, `DaemonServices.keep`, with one relaxed atomic add per record and code: no
/// lock and no allocation on the hot path. Everything else (latency, connections, the audit
/// log's syncs, the HTTP front door) is a source read when `metrics` is called.
public final class DaemonMetrics: Sendable {
    public static let decisionMethods = ["decide", "decide.batch", "place", "transfer"]
    static let outcomes = ["allow", "deny", "error"]
    /// Every guardrail denial code, then a forbid that failed to evaluate.
    static let codes = DenialCode.allCases.map(\.rawValue) + [CedarVerdict.forbidErrorCode]

    public let decisions: CounterFamily
    public let denials: CounterFamily
    public let reloads = CounterFamily(name: "custos_policy_reloads_total", help: "Policy loads and reloads (start, SIGHUP, policy.reload), by result.",
                                       labelNames: ["result"], series: [["ok"], ["failed"]])
    public let refused = CounterFamily(name: "custos_refused_calls_total", help: "Calls the access rules refused (-32001).")
    private let sources = Mutex<[@Sendable () -> [MetricFamily]]>([])

    public init() {
        var d: [[String]] = []
        var c: [[String]] = []
        for m in Self.decisionMethods {
            for o in Self.outcomes { d.append([m, o]) }
            for code in Self.codes { c.append([m, code]) }
        }
        decisions = CounterFamily(name: "custos_decisions_total",
                                  help: "Decisions by method and outcome; error: the call failed and gave no decision (not ready, invalid params, audit log unavailable).",
                                  labelNames: ["method", "outcome"], series: d)
        denials = CounterFamily(name: "custos_decision_denials_total",
                                help: "Reasons of denied decisions by guardrail code (and policy.forbid_error); a decision can count under several.",
                                labelNames: ["method", "code"], series: c)
    }

    /// The position of a decision method in `decisionMethods`, by bytes.
    @inline(__always) static func decisionIndex(_ method: String) -> Int? {
        let m = method.utf8
        for (i, name) in decisionMethods.enumerated() where name.utf8.count == m.count && name.utf8.elementsEqual(m) { return i }
        return nil
    }

    /// Counts decisions that were given (recorded, when there is an audit log).
    func count(_ records: [DecisionRecord]) {
        for r in records {
            guard let m = Self.decisionIndex(r.method) else { continue }
            decisions.add(m * Self.outcomes.count + (r.decision == .allow ? 0 : 1))
            guard r.decision != .allow else { continue }
            for code in r.guardrailCodes { countCode(m, code) }
            if !r.forbidErrors.isEmpty { countCode(m, CedarVerdict.forbidErrorCode) }
        }
    }

    private func countCode(_ method: Int, _ code: String) {
        let u = code.utf8
        for (i, c) in Self.codes.enumerated() where c.utf8.count == u.count && c.utf8.elementsEqual(u) {
            denials.add(method * Self.codes.count + i)
            return
        }
    }

    /// A decision method's call that gave no decision.
    @inline(__always) func countError(decisionMethod m: Int) { decisions.add(m * Self.outcomes.count + 2) }

    /// Adds what a scrape reads besides these counters (latency, connections, the audit log).
    public func addSource(_ source: @escaping @Sendable () -> [MetricFamily]) {
        sources.withLock { $0.append(source) }
    }

    /// The dispatcher's call observer for a method table, plus the latency histogram it fills.
    public func observer(methodNames: [String]) -> CallObserver {
        let latency = HistogramFamily(name: "custos_request_duration_seconds",
                                      help: "Time a method's handler took (the decision; without the wait for the audit log's sync), by method.",
                                      labelNames: ["method"], series: methodNames.map { [$0] },
                                      bounds: latencyBucketsNanos, perUnit: 1e9)
        let decisionOf = methodNames.map { Self.decisionIndex($0) ?? -1 }
        addSource { [latency.family] }
        return { [self] method, nanos, failed in
            latency.observe(method, nanos)
            if failed, decisionOf[method] >= 0 { countError(decisionMethod: decisionOf[method]) }
        }
    }

    /// Every family, as a scrape and the `metrics` method report them.
    func families(_ services: DaemonServices) -> [MetricFamily] {
        let snapshot = services.store.snapshot
        let ready = snapshot != nil && services.recorder?.unavailable() == nil
        var out: [MetricFamily] = [
            .gauge("custos_build_info", "The daemon's version.", [MetricSample(labels: [MetricLabel(name: "version", value: CustosVersion.string)], value: .int(1))]),
            .gauge("custos_ready", "1 when the daemon gives decisions (a policy set is loaded and the audit log keeps records), else 0.",
                   [MetricSample(value: .int(ready ? 1 : 0))]),
            .gauge("custos_policy_revision_info", "The policy revision in service (no sample while none is loaded).",
                   snapshot.map { [MetricSample(labels: [MetricLabel(name: "revision", value: $0.revision)], value: .int(1))] } ?? []),
            decisions.family,
        ]
        var d = denials.family
        d.samples.removeAll { $0.value == .int(0) }
        out.append(d)
        out.append(refused.family)
        out.append(reloads.family)
        out.append(.gauge("custos_node_inventory_nodes", "Nodes in the node inventory (nodes.sync).",
                          [MetricSample(value: .int(UInt64(services.inventory.snapshot.count)))]))
        for s in sources.withLock({ $0 }) { out += s() }
        return out
    }
}

/// `metrics`: the numbers of `/metrics` through JSON-RPC. Admin-only by default: it tells how
/// other callers' decisions went, which a caller of decisions has no need to know.
public enum MetricsMethods {
    public static func register(into table: inout MethodTable, _ services: DaemonServices) {
        table.register("metrics") { params, _ throws(RPCError) in
            try params.only(["format"], method: "metrics")
            var prometheus = false
            if let f = try params.optional("format") {
                switch f {
                case .string("json"): prometheus = false
                case .string("prometheus"): prometheus = true
                default: throw .invalidParams(field: "params.format", "expected \"json\" or \"prometheus\", got \(f.serialized)")
                }
            }
            let families = services.metrics.families(services)
            if prometheus {
                return .object(JSONObject(["content_type": .string(PrometheusText.contentType),
                                           "text": .string(PrometheusText.render(families))]))
            }
            return .object(JSONObject(["families": .array(families.map(json))]))
        }
    }

    static func json(_ f: MetricFamily) -> JSON {
        func labels(_ ls: [MetricLabel]) -> JSON { .object(JSONObject(ls.map { JSONObject.Member(key: $0.name, value: .string($0.value)) })) }
        func number(_ v: MetricValue) -> JSON {
            switch v {
            case .int(let i): i <= UInt64(Int64.max) ? .int(Int64(i)) : .double(Double(i))
            case .real(let d): .double(d)
            }
        }
        var o = JSONObject(["name": .string(f.name), "type": .string(f.kind.rawValue), "help": .string(f.help)])
        if f.kind == .histogram {
            o.append("histograms", .array(f.histograms.map { h in
                .object(JSONObject([
                    "labels": labels(h.labels),
                    "buckets": .array(h.buckets.map { b in
                        .object(JSONObject(["le": b.upperBound.isInfinite ? .string("+Inf") : .double(b.upperBound),
                                            "count": number(.int(b.count))]))
                    }),
                    "sum": .double(h.sum),
                    "count": number(.int(h.count)),
                ]))
            }))
        } else {
            o.append("samples", .array(f.samples.map { .object(JSONObject(["labels": labels($0.labels), "value": number($0.value)])) }))
        }
        return .object(o)
    }
}
