extension BenchResult {
    /// For loads driven by other clients (`custos bench http`), so every figure prints alike.
    public init(measured requests: Int, errors: Int, seconds: Double, requestsPerSecond: Double, p50Micros: Double,
                p99Micros: Double, p999Micros: Double, maxMicros: Double) {
        self.requests = requests
        self.errors = errors
        self.seconds = seconds
        self.requestsPerSecond = requestsPerSecond
        self.p50Micros = p50Micros
        self.p99Micros = p99Micros
        self.p999Micros = p999Micros
        self.maxMicros = maxMicros
    }
}
