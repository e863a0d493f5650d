import Cedar
import Testing

@Suite("ExtensionError")
struct ExtensionErrorTests {
    @Test("message is the reason of either kind, without the kind")
    func message() {
        #expect(ExtensionError.invalidLiteral("invalid duration pattern").message == "invalid duration pattern")
        #expect(ExtensionError.overflow("overflow when converting to decimal").message == "overflow when converting to decimal")
    }

    @Test("errors with the same reason but a different kind are different")
    func kindMatters() {
        #expect(ExtensionError.invalidLiteral("x") != ExtensionError.overflow("x"))
    }
}
