import Cedar
import Testing

@Suite("duration matches Cedar")
struct CedarDurationTests {
    @Test("parse gives cedarpy's milliseconds or cedarpy's error", arguments: ReferenceDuration.parse)
    func parse(_ c: ExtParseCase<Int64>) {
        #expect(extensionOutcome { () throws(ExtensionError) in try CedarDuration.parse(c.input).milliseconds } == c.expected)
    }

    @Test("conversions truncate toward zero as Cedar's do", arguments: ReferenceDuration.conversions)
    func conversions(_ c: DurationConversionCase) throws {
        let d = try CedarDuration.parse(c.input)
        #expect(d.toMilliseconds == c.milliseconds)
        #expect(d.toSeconds == c.seconds)
        #expect(d.toMinutes == c.minutes)
        #expect(d.toHours == c.hours)
        #expect(d.toDays == c.days)
    }

    @Test("description is Cedar's rendering of a computed duration and reads back", arguments: ReferenceDuration.description)
    func description(_ c: ExtInstantRenderCase) throws {
        let d = CedarDuration(milliseconds: c.milliseconds)
        #expect(d.description == c.rendering)
        #expect(try CedarDuration.parse(d.description) == d)
    }

    @Test("< and == answer as Cedar's do", arguments: ReferenceDuration.compare)
    func compare(_ c: ExtOrderCase) throws {
        let a = try CedarDuration.parse(c.left), b = try CedarDuration.parse(c.right)
        #expect((a < b) == c.less)
        #expect((a == b) == c.equal)
    }
}
