import Testing

@Test func GuardrailsTestsTargetBuilds() { #expect(Bool(true)) }
