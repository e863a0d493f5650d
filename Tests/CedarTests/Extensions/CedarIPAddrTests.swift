import Cedar
import Testing

@Suite("ipaddr matches Cedar")
struct CedarIPAddrTests {
    @Test("parse gives cedarpy's isIpv4/isIpv6/isLoopback/isMulticast or cedarpy's error", arguments: ReferenceIPAddr.parse)
    func parse(_ c: ExtParseCase<IPFacts>) {
        #expect(extensionOutcome { () throws(ExtensionError) in IPFacts(try CedarIPAddr.parse(c.input)) } == c.expected)
    }

    @Test("description is canonical and reads back to an equal value", arguments: ReferenceIPAddr.description)
    func description(_ c: ExtRenderCase) throws {
        let value = try CedarIPAddr.parse(c.input)
        #expect(value.description == c.rendering)
        #expect(try CedarIPAddr.parse(value.description) == value)
    }

    @Test("equality keeps host bits and prefix, as Cedar's == does", arguments: ReferenceIPAddr.equal)
    func equality(_ c: ExtPairCase) throws {
        let a = try CedarIPAddr.parse(c.left), b = try CedarIPAddr.parse(c.right)
        #expect((a == b) == c.expected)
        #expect((a.hashValue == b.hashValue) || !c.expected)
    }

    @Test("isInRange answers as Cedar's does", arguments: ReferenceIPAddr.isInRange)
    func isInRange(_ c: ExtPairCase) throws {
        let a = try CedarIPAddr.parse(c.left), range = try CedarIPAddr.parse(c.right)
        #expect(a.isInRange(range) == c.expected)
    }
}
