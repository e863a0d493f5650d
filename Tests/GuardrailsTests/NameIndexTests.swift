import Guardrails
import Testing

@Suite struct NameIndexTests {
    @Test func everyNameIsFoundAtItsPositionAndOthersAreNot() {
        let names = (0..<5000).map { "gpu-\($0)" } + ["", "fra-gpu-\u{E9}", "ünïcödé-node", String(repeating: "x", count: 300)]
        let index = NameIndex(names)
        #expect(index.count == names.count)
        for (k, n) in names.enumerated() { #expect(index.position(of: n) == k, "\(n)") }
        for miss in ["gpu-5000", "gpu-", "gpu-00", "GPU-1", "gpu-1 ", String(repeating: "x", count: 299)] {
            #expect(index.position(of: miss) == nil, "\(miss)")
        }
    }

    /// Names are bytes: a canonically equivalent spelling (equal as Swift Strings) is another
    /// node, as it is to Kubernetes and to the inventory.
    @Test func aCanonicallyEquivalentNameIsNotFound() {
        let index = NameIndex(["fra-gpu-\u{E9}"])
        #expect("fra-gpu-e\u{301}" == "fra-gpu-\u{E9}")
        #expect(index.position(of: "fra-gpu-e\u{301}") == nil)
        #expect(index.position(of: "fra-gpu-\u{E9}") == 0)
    }

    @Test func anEmptyIndexFindsNothing() {
        let index = NameIndex([])
        #expect(index.count == 0)
        #expect(index.position(of: "a") == nil)
        #expect(index.position(of: "") == nil)
    }
}
