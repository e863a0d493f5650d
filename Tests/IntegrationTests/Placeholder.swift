import Testing

@Test func IntegrationTestsTargetBuilds() { #expect(Bool(true)) }
