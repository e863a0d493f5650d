import Cedar
import Testing

@Suite("decimal matches Cedar")
struct CedarDecimalTests {
    @Test("parse gives cedarpy's value or cedarpy's error", arguments: ReferenceDecimal.parse)
    func parse(_ c: ExtParseCase<Int64>) {
        #expect(extensionOutcome { () throws(ExtensionError) in try CedarDecimal.parse(c.input).scaled } == c.expected)
    }

    @Test("description is the shortest literal and reads back to the same value", arguments: ReferenceDecimal.description)
    func description(_ c: ExtRenderCase) throws {
        let value = try CedarDecimal.parse(c.input)
        #expect(value.description == c.rendering)
        #expect(try CedarDecimal.parse(value.description) == value)
    }

    @Test("comparisons and equality answer as Cedar's methods do", arguments: ReferenceDecimal.compare)
    func compare(_ c: DecimalComparisonCase) throws {
        let a = try CedarDecimal.parse(c.left), b = try CedarDecimal.parse(c.right)
        #expect((a < b) == c.lessThan)
        #expect((a <= b) == c.lessThanOrEqual)
        #expect((a > b) == c.greaterThan)
        #expect((a >= b) == c.greaterThanOrEqual)
        #expect((a == b) == c.equal)
        #expect((a.hashValue == b.hashValue) || !c.equal)
    }

    @Test("the extreme scaled values render and read back")
    func extremes() throws {
        for scaled in [Int64.min, Int64.max, 0, -1, 1] {
            let d = CedarDecimal(scaled: scaled)
            #expect(try CedarDecimal.parse(d.description).scaled == scaled)
        }
    }
}
