import Foundation
import Testing

/// Tests/, from this file's path (Tests/RepositoryTests/TestRulesTests.swift).
let testsFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()

@Suite struct TestRulesTests {
    @Test func noTestInTheProjectBoundsTimeOrSleeps() throws {
        let files = FileManager.default.enumerator(at: testsFolder, includingPropertiesForKeys: nil)!
            .compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }
        #expect(files.count > 50, "the scan found the test sources")
        var found: [TestRules.Violation] = []
        for url in files {
            // The one place that sleeps between polls, and the one that makes scratch folders.
            if url.path.hasSuffix("/TestSupport/Eventually.swift") || url.path.hasSuffix("/TestSupport/Scratch.swift") { continue }
            let rel = String(url.path.dropFirst(testsFolder.path.count + 1))
            found += TestRules.check(file: "Tests/" + rel, text: try String(contentsOf: url, encoding: .utf8))
        }
        #expect(found.isEmpty, "\(found.map(\.description).joined(separator: "\n"))")
    }

    @Test("an upper bound on a measured time is found", arguments: [
        "#expect(p50 < 10_000, \"p50 \\(p50) us\")",
        "#expect(ContinuousClock.now - t0 < .milliseconds(100))",
        "#expect(elapsed <= 2.0)",
        "#expect(.seconds(1) > elapsed)",
        "#expect(Date().timeIntervalSince(start) < 5)",
        "#expect(r.ok && r.p99Micros < 900)",
        "try #require(DispatchTime.now().uptimeNanoseconds - begin < 1_000_000)",
        "XCTAssertTrue(tookNanos < limit)",
    ])
    func upperBoundsAreFound(_ line: String) {
        #expect(TestRules.check(file: "x.swift", text: line).map(\.rule) == [TestRules.upperBoundRule])
    }

    @Test func aNameBoundToAClockReadingIsAMeasuredTime() {
        let text = """
        let begin = ContinuousClock.now
        let spent = ContinuousClock.now - begin
        let doubled = spent * 2
        #expect(doubled < .seconds(1))
        #expect(spent >= .milliseconds(100))
        """
        #expect(TestRules.check(file: "x.swift", text: text).map(\.line) == [4])
    }

    @Test("lower bounds, orderings and counts are not time bounds", arguments: [
        "#expect(ContinuousClock.now - t0 >= .milliseconds(100))",
        "#expect(Date().timeIntervalSince(t0) >= 0.9)",
        "#expect(r.p50Micros > 0 && r.p50Micros <= r.p99Micros && r.p99Micros <= r.p999Micros)",
        "#expect(ledger.barrierCalls.load(ordering: .relaxed) <= 2)",
        "#expect(found.count < 3, \"p50 < 10 ms\")",
        "// #expect(p50 < 10_000)",
        "let text = #\"#expect(elapsed < 1)\"#",
    ])
    func otherComparisonsAreNotFound(_ line: String) {
        #expect(TestRules.check(file: "x.swift", text: line).isEmpty)
    }

    @Test("fixed sleeps are found", arguments: [
        "usleep(200_000)", "sleep(1)", "Thread.sleep(forTimeInterval: 0.2)", "try await Task.sleep(for: .seconds(1))",
        "_ = nanosleep(&ts, nil)",
    ])
    func sleepsAreFound(_ line: String) {
        #expect(TestRules.check(file: "x.swift", text: line).map(\.rule) == [TestRules.sleepRule])
    }

    @Test("scratch folders made outside Scratch are found", arguments: [
        #"let dir = NSTemporaryDirectory() + "custos-x-" + UUID().uuidString"#,
        #"let u = FileManager.default.temporaryDirectory.appendingPathComponent("x")"#,
        "let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }",
    ])
    func scratchFoldersOutsideScratchAreFound(_ line: String) {
        #expect(TestRules.check(file: "x.swift", text: line).map(\.rule) == [TestRules.scratchRule])
    }

    @Test func stringsAndCommentsAreNotCode() {
        let text = """
        t.register("sleep") { _, _ in .null }  // usleep(1) in a comment
        let s = \"\"\"
            usleep(5)
            #expect(elapsed < 1)
            \"\"\"
        let raw = #"usleep(5) "quoted" \\(x)"#
        let hint = "use NSTemporaryDirectory() or mkdtemp(3)"  // not FileManager.default.temporaryDirectory
        """
        #expect(TestRules.check(file: "x.swift", text: text).isEmpty)
    }
}
