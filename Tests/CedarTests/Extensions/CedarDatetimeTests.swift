import Cedar
import Testing

@Suite("datetime matches Cedar")
struct CedarDatetimeTests {
    @Test("parse gives cedarpy's instant or cedarpy's error", arguments: ReferenceDatetime.parse)
    func parse(_ c: ExtParseCase<Int64>) {
        #expect(extensionOutcome { () throws(ExtensionError) in try CedarDatetime.parse(c.input).millisecondsSinceEpoch } == c.expected)
    }

    @Test("description is a literal that reads back, or Cedar's display outside years 0000-9999", arguments: ReferenceDatetime.description)
    func description(_ c: ExtInstantRenderCase) throws {
        let d = CedarDatetime(millisecondsSinceEpoch: c.milliseconds)
        #expect(d.description == c.rendering)
        if !c.rendering.hasPrefix("(") {
            #expect(try CedarDatetime.parse(d.description) == d)
        }
    }

    @Test("toDate floors to midnight (overflowing near Int64.min) and toTime is the rest", arguments: ReferenceDatetime.day)
    func day(_ c: DatetimeDayCase) {
        let d = CedarDatetime(millisecondsSinceEpoch: c.instant)
        #expect(extensionOutcome { () throws(ExtensionError) in try d.toDate().millisecondsSinceEpoch } == c.toDate)
        #expect(d.toTime().milliseconds == c.toTime)
    }

    @Test("offset adds a duration or reports Cedar's overflow", arguments: ReferenceDatetime.offset)
    func offset(_ c: DatetimeArithmeticCase) {
        let d = CedarDatetime(millisecondsSinceEpoch: c.left)
        let by = CedarDuration(milliseconds: c.right)
        #expect(extensionOutcome { () throws(ExtensionError) in try d.offset(by).millisecondsSinceEpoch } == c.expected)
    }

    @Test("durationSince subtracts or reports Cedar's overflow", arguments: ReferenceDatetime.durationSince)
    func durationSince(_ c: DatetimeArithmeticCase) {
        let a = CedarDatetime(millisecondsSinceEpoch: c.left)
        let b = CedarDatetime(millisecondsSinceEpoch: c.right)
        #expect(extensionOutcome { () throws(ExtensionError) in try a.durationSince(b).milliseconds } == c.expected)
    }

    @Test("< and == answer as Cedar's do", arguments: ReferenceDatetime.compare)
    func compare(_ c: ExtOrderCase) throws {
        let a = try CedarDatetime.parse(c.left), b = try CedarDatetime.parse(c.right)
        #expect((a < b) == c.less)
        #expect((a == b) == c.equal)
    }
}
