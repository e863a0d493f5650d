import CustosJSON
import CustosServer
import Testing

@Test func benchAgainstTheEchoServerCountsEveryRequestWithoutErrors() throws {
    let path = tempSocketPath("echo")
    let echo = EchoServer(configuration: ServerConfiguration(socketPath: path))
    try echo.start()
    defer { echo.stop() }
    var o = BenchOptions(socketPath: path, request: #"{"jsonrpc":"2.0","method":"x","id":1}"#)
    o.clients = 2
    o.requestsPerClient = 300
    o.pipelineDepth = 4
    o.warmupPerClient = 10
    let r = try Bench.run(o)
    #expect(r.requests == 600)
    #expect(r.errors == 0)
    #expect(r.p50Micros > 0 && r.p50Micros <= r.p99Micros && r.p99Micros <= r.p999Micros)
}

@Test func benchCountsErrorRepliesFromTheRealServer() throws {
    try withServer("bench") { s in
        var o = BenchOptions(socketPath: s.path, request: #"{"jsonrpc":"2.0","method":"nope","id":1}"#)
        o.requestsPerClient = 50
        o.warmupPerClient = 0
        let r = try Bench.run(o)
        #expect(r.requests == 50)
        #expect(r.errors == 50)
    }
}
