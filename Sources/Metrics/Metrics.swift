import Glibc
import Synchronization

/// A fixed number of atomic counters in one allocation: the storage of every instrument here.
/// The hot path only adds to a slot it already knows the index of (no lock, no allocation);
/// reading happens at scrape time.
final class AtomicSlots: @unchecked Sendable {
    private let base: UnsafeMutablePointer<Atomic<UInt64>>
    let count: Int

    init(count: Int) {
        self.count = count
        base = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: max(1, count))
        for i in 0..<count { (base + i).initialize(to: Atomic<UInt64>(0)) }
    }

    deinit {
        base.deinitialize(count: count)
        base.deallocate()
    }

    @inline(__always) func add(_ i: Int, _ n: UInt64) { base[i].wrappingAdd(n, ordering: .relaxed) }
    @inline(__always) func load(_ i: Int) -> UInt64 { base[i].load(ordering: .relaxed) }
}

/// Monotonic nanoseconds, the clock every latency here is measured with.
@inline(__always) public func metricsNow() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(truncatingIfNeeded: ts.tv_sec) &* 1_000_000_000 &+ UInt64(truncatingIfNeeded: ts.tv_nsec)
}

/// Counters with a fixed set of label values, chosen when the family is built: a sample is
/// addressed by its index, so counting costs one relaxed atomic add.
public final class CounterFamily: Sendable {
    public let name: String
    public let help: String
    public let labelNames: [String]
    /// One entry per series, each with one value per label name.
    public let series: [[String]]
    private let slots: AtomicSlots

    public init(name: String, help: String, labelNames: [String], series: [[String]]) {
        precondition(series.allSatisfy { $0.count == labelNames.count }, "every series of \(name) needs a value per label")
        self.name = name
        self.help = help
        self.labelNames = labelNames
        self.series = series
        slots = AtomicSlots(count: series.count)
    }

    /// A family without labels: one series, index 0.
    public convenience init(name: String, help: String) {
        self.init(name: name, help: help, labelNames: [], series: [[]])
    }

    @inline(__always) public func add(_ index: Int, _ n: UInt64 = 1) { slots.add(index, n) }
    public func value(_ index: Int) -> UInt64 { slots.load(index) }

    /// The index of the series with these label values (for building the hot path's tables).
    public func index(of values: [String]) -> Int? {
        series.firstIndex { s in s.count == values.count && zip(s, values).allSatisfy { $0.utf8.elementsEqual($1.utf8) } }
    }

    public var family: MetricFamily {
        MetricFamily(name: name, help: help, kind: .counter,
                     samples: series.indices.map { i in
                         MetricSample(labels: Array(zip(labelNames, series[i])).map { MetricLabel(name: $0.0, value: $0.1) },
                                      value: .int(slots.load(i)))
                     })
    }
}

/// Histograms with fixed buckets and a fixed set of label values. Observations are raw
/// integers (nanoseconds, entries); `perUnit` raw units make one exposed unit (1e9 nanoseconds
/// a second), divided at exposition so `10_000` ns shows as exactly `1e-05`.
public final class HistogramFamily: Sendable {
    public let name: String
    public let help: String
    public let labelNames: [String]
    public let series: [[String]]
    /// Upper bounds, in raw units, ascending; +Inf is implied.
    public let bounds: [UInt64]
    public let perUnit: Double
    /// Per series: one slot per bound, one for +Inf, then the sum and the count.
    private let slots: AtomicSlots
    private let stride: Int

    public init(name: String, help: String, labelNames: [String] = [], series: [[String]] = [[]],
                bounds: [UInt64], perUnit: Double = 1) {
        precondition(series.allSatisfy { $0.count == labelNames.count }, "every series of \(name) needs a value per label")
        precondition(zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 }, "bounds of \(name) must ascend")
        self.name = name
        self.help = help
        self.labelNames = labelNames
        self.series = series
        self.bounds = bounds
        self.perUnit = perUnit
        stride = bounds.count + 3
        slots = AtomicSlots(count: stride * series.count)
    }

    /// Records one observation of series `index`. The bucket count is not cumulative here (one
    /// add per observation); the exposition sums the buckets.
    @inline(__always) public func observe(_ index: Int, _ value: UInt64) {
        var b = 0
        while b < bounds.count && value > bounds[b] { b += 1 }
        let base = index * stride
        slots.add(base + b, 1)
        slots.add(base + bounds.count + 1, value)
        slots.add(base + bounds.count + 2, 1)
    }

    public func index(of values: [String]) -> Int? {
        series.firstIndex { s in s.count == values.count && zip(s, values).allSatisfy { $0.utf8.elementsEqual($1.utf8) } }
    }

    /// Observations of series `index` so far.
    public func count(_ index: Int) -> UInt64 { slots.load(index * stride + bounds.count + 2) }

    public var family: MetricFamily {
        var out = MetricFamily(name: name, help: help, kind: .histogram, samples: [])
        for i in series.indices {
            let base = i * stride
            var cumulative: UInt64 = 0
            var buckets: [HistogramBucket] = []
            for b in 0...bounds.count {
                cumulative &+= slots.load(base + b)
                buckets.append(HistogramBucket(upperBound: b < bounds.count ? Double(bounds[b]) / perUnit : .infinity,
                                               count: cumulative))
            }
            out.histograms.append(HistogramSample(
                labels: Array(zip(labelNames, series[i])).map { MetricLabel(name: $0.0, value: $0.1) },
                buckets: buckets, sum: Double(slots.load(base + bounds.count + 1)) / perUnit,
                count: slots.load(base + bounds.count + 2)))
        }
        return out
    }
}

public struct MetricLabel: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(name: String, value: String) { self.name = name; self.value = value }
}

public enum MetricValue: Sendable, Equatable {
    case int(UInt64)
    case real(Double)
}

public struct MetricSample: Sendable, Equatable {
    public var labels: [MetricLabel]
    public var value: MetricValue
    public init(labels: [MetricLabel] = [], value: MetricValue) { self.labels = labels; self.value = value }
}

public struct HistogramBucket: Sendable, Equatable {
    /// Inclusive upper bound in the exposed unit; `.infinity` for the last.
    public var upperBound: Double
    /// Observations at or below the bound (cumulative).
    public var count: UInt64
}

public struct HistogramSample: Sendable, Equatable {
    public var labels: [MetricLabel]
    public var buckets: [HistogramBucket]
    public var sum: Double
    public var count: UInt64
}

/// One metric as exposed: what a scrape and the `metrics` method both report.
public struct MetricFamily: Sendable, Equatable {
    public enum Kind: String, Sendable { case counter, gauge, histogram }
    public var name: String
    public var help: String
    public var kind: Kind
    public var samples: [MetricSample]
    public var histograms: [HistogramSample] = []

    public init(name: String, help: String, kind: Kind, samples: [MetricSample]) {
        self.name = name; self.help = help; self.kind = kind; self.samples = samples
    }

    /// A gauge read at scrape time.
    public static func gauge(_ name: String, _ help: String, _ samples: [MetricSample]) -> MetricFamily {
        MetricFamily(name: name, help: help, kind: .gauge, samples: samples)
    }
}

/// The Prometheus text exposition format, version 0.0.4
/// (https://prometheus.io/docs/instrumenting/exposition_formats/).
public enum PrometheusText {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public static func render(_ families: [MetricFamily]) -> String {
        var out = ""
        out.reserveCapacity(4096)
        for f in families {
            out += "# HELP \(f.name) \(escapeHelp(f.help))\n# TYPE \(f.name) \(f.kind.rawValue)\n"
            for s in f.samples {
                out += f.name + labels(s.labels) + " " + number(s.value) + "\n"
            }
            for h in f.histograms {
                for b in h.buckets {
                    let le = MetricLabel(name: "le", value: b.upperBound.isInfinite ? "+Inf" : real(b.upperBound))
                    out += f.name + "_bucket" + labels(h.labels + [le]) + " " + String(b.count) + "\n"
                }
                out += f.name + "_sum" + labels(h.labels) + " " + real(h.sum) + "\n"
                out += f.name + "_count" + labels(h.labels) + " " + String(h.count) + "\n"
            }
        }
        return out
    }

    static func labels(_ ls: [MetricLabel]) -> String {
        if ls.isEmpty { return "" }
        return "{" + ls.map { "\($0.name)=\"\(escapeValue($0.value))\"" }.joined(separator: ",") + "}"
    }

    static func number(_ v: MetricValue) -> String {
        switch v {
        case .int(let i): String(i)
        case .real(let d): real(d)
        }
    }

    /// Shortest round-trip form; whole numbers without a fraction (`1`, not `1.0`).
    public static func real(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d > 0 ? "+Inf" : "-Inf" }
        if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        return "\(d)"
    }

    /// Label values escape backslash, double quote and line feed.
    static func escapeValue(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// HELP text escapes backslash and line feed.
    static func escapeHelp(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}

/// Latency buckets in nanoseconds, 5 µs to 1 s: a decision takes tens of microseconds, an
/// audit sync hundreds, a `place` over a thousand nodes a few milliseconds.
public let latencyBucketsNanos: [UInt64] = [
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000, 100_000_000, 250_000_000, 1_000_000_000,
]
