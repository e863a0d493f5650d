import Testing

@Test func CustosDaemonTestsTargetBuilds() { #expect(Bool(true)) }
