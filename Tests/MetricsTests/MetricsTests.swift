import Dispatch
import Metrics
import Testing

@Suite struct MetricsTests {
    @Test func countersAndHistogramsRenderInThePrometheusTextFormat() {
        let c = CounterFamily(name: "custos_decisions_total", help: "Decisions.", labelNames: ["method", "outcome"],
                              series: [["decide", "allow"], ["decide", "deny"]])
        c.add(0, 3)
        c.add(1)
        let h = HistogramFamily(name: "custos_request_duration_seconds", help: "Handler time.", labelNames: ["method"],
                                series: [["decide"]], bounds: [10_000, 100_000], perUnit: 1e9)
        h.observe(0, 5_000)
        h.observe(0, 10_000)
        h.observe(0, 2_000_000)
        let g = MetricFamily.gauge("custos_policy_revision_info", "The revision\nin service.",
                                   [MetricSample(labels: [MetricLabel(name: "revision", value: "sha\"256\\x")], value: .int(1))])
        #expect(PrometheusText.render([c.family, h.family, g]) == """
        # HELP custos_decisions_total Decisions.
        # TYPE custos_decisions_total counter
        custos_decisions_total{method="decide",outcome="allow"} 3
        custos_decisions_total{method="decide",outcome="deny"} 1
        # HELP custos_request_duration_seconds Handler time.
        # TYPE custos_request_duration_seconds histogram
        custos_request_duration_seconds_bucket{method="decide",le="1e-05"} 2
        custos_request_duration_seconds_bucket{method="decide",le="0.0001"} 2
        custos_request_duration_seconds_bucket{method="decide",le="+Inf"} 3
        custos_request_duration_seconds_sum{method="decide"} 0.002015
        custos_request_duration_seconds_count{method="decide"} 3
        # HELP custos_policy_revision_info The revision\\nin service.
        # TYPE custos_policy_revision_info gauge
        custos_policy_revision_info{revision="sha\\"256\\\\x"} 1

        """)
    }

    @Test func concurrentAddsAreAllCounted() {
        let c = CounterFamily(name: "n", help: "h")
        let h = HistogramFamily(name: "h", help: "h", bounds: [1, 2])
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for i in 0..<10_000 {
                c.add(0)
                h.observe(0, UInt64(i % 3))
            }
        }
        #expect(c.value(0) == 80_000)
        #expect(h.count(0) == 80_000)
        // Per thread: 3,334 zeros, 3,333 ones and 3,333 twos.
        #expect(h.family.histograms[0].buckets.map(\.count) == [53_336, 80_000, 80_000])
        #expect(h.family.histograms[0].sum == Double(8 * (3_333 + 2 * 3_333)))
    }

    @Test func indexLooksUpSeriesByExactLabelValues() {
        let c = CounterFamily(name: "n", help: "h", labelNames: ["m"], series: [["decide"], ["place"]])
        #expect(c.index(of: ["place"]) == 1)
        #expect(c.index(of: ["Place"]) == nil)
    }
}
