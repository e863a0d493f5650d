import CustosJSON
import CustosLog
import Glibc
import Testing

@Suite struct LogLineTests {
    static let fixed: @Sendable () -> Int64 = { 1_772_355_600_123 }  // 2026-03-01T09:00:00.123Z

    @Test func aJSONLineCarriesTimeLevelEventMessageAndFields() throws {
        let log = Logger(format: .json, capture: true, clock: Self.fixed)
        log.info("policy.loaded", "loaded 3 policies", ["revision": "sha256:ab", "policies": 3, "ok": .bool(true)])
        let line = try #require(log.captured.first)
        let o = try #require(try JSON.parse(line).objectValue)
        #expect(o["time"]?.stringValue == "2026-03-01T09:00:00.123Z")
        #expect(o["level"]?.stringValue == "info")
        #expect(o["event"]?.stringValue == "policy.loaded")
        #expect(o["message"]?.stringValue == "loaded 3 policies")
        #expect(o["revision"]?.stringValue == "sha256:ab")
        #expect(o["policies"] == .int(3))
        #expect(o["ok"] == .bool(true))
        #expect(!line.contains("\n"))
    }

    @Test func aFieldNamedLikeTheFixedMembersCannotReplaceThem() throws {
        let log = Logger(format: .json, capture: true, clock: Self.fixed)
        log.warning("call.refused", "refused", ["level": "debug", "time": "then", "method": "x"])
        let line = try #require(log.captured.first)
        let o = try #require(try JSON.parse(line).objectValue)
        #expect(o["level"]?.stringValue == "warning")
        #expect(o["time"]?.stringValue == "2026-03-01T09:00:00.123Z")
        #expect(o["method"]?.stringValue == "x")
    }

    @Test(arguments: [
        ("a \"quoted\" path\nwith a newline", "a \"quoted\" path\nwith a newline"),
        ("tab\there", "tab\there"),
        ("ünïcode €", "ünïcode €"),
    ])
    func messagesSurviveJSONEscapingOnOneLine(message: String, expected: String) throws {
        let log = Logger(format: .json, capture: true, clock: Self.fixed)
        log.error("policy.load_failed", message)
        let line = try #require(log.captured.first)
        #expect(!line.contains("\n"))
        #expect(try JSON.parse(line).objectValue?["message"]?.stringValue == expected)
    }

    @Test func theTextFormatIsOneReadableLine() throws {
        let log = Logger(format: .text, capture: true, clock: Self.fixed)
        log.error("policy.load_failed", "reload failed:\nsecond line")
        #expect(log.captured == ["2026-03-01T09:00:00.123Z error policy.load_failed: reload failed:\\nsecond line"])
    }

    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (Int64(951_782_400_999), "2000-02-29T00:00:00.999Z"),
        (Int64(-1), "1969-12-31T23:59:59.999Z"),
        (Int64(253_402_300_799_000), "9999-12-31T23:59:59.000Z"),
    ])
    func timesAreRFC3339UTCWithMilliseconds(ms: Int64, text: String) {
        #expect(Logger.rfc3339(milliseconds: ms) == text)
    }

    @Test func autoPicksJSONWhenTheOutputIsNotATerminal() {
        // A test runner's stderr, or /dev/null, is not a terminal.
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        #expect(Logger(format: .auto, fd: fds[1]).format == .json)
    }
}
