import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Testing

/// Running the daemon: its log lines, its disk use in `health`, audit archival beside a running
/// daemon and at a million entries, and benchmarks kept out of real logs.
@Suite struct OperationsTests {
    static let timePattern = #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"#

    @Test func theDaemonsLogIsJSONLinesWithTimeLevelEventAndFields() throws {
        let d = try TestDaemon(extraArguments: ["--log-format", "json"]).start()
        try d.write("15-broken.cedar", "permit (principal, action, resource) whn { true };")
        guard case .failure(let e) = try d.call("policy.reload") else { Issue.record("the reload should fail"); return }
        #expect(e.code == -32004)
        d.signal(SIGTERM)
        #expect(d.waitForExit() == 0)
        let lines = d.stderrText().split(separator: "\n").map(String.init)
        var events: [String: JSONObject] = [:]
        for line in lines {
            let o = try #require(try? JSON.parse(line).objectValue, "not a JSON object: \(line)")
            let time = try #require(o["time"]?.stringValue)
            #expect(time.range(of: Self.timePattern, options: .regularExpression) != nil, "\(time)")
            #expect(["debug", "info", "warning", "error"].contains(o["level"]?.stringValue ?? ""), "\(line)")
            #expect(o["message"]?.stringValue?.isEmpty == false, "\(line)")
            events[try #require(o["event"]?.stringValue)] = o
        }
        let loaded = try #require(events["policy.loaded"], "\(lines)")
        #expect(loaded["revision"]?.stringValue?.hasPrefix("sha256:") == true)
        #expect(events["daemon.serving"]?["socket"]?.stringValue == d.socket)
        let failed = try #require(events["policy.load_failed"], "\(lines)")
        #expect(failed["level"]?.stringValue == "error")
        #expect(failed["kept_revision"] == loaded["revision"])
        #expect(failed["error"]?.stringValue?.contains("15-broken.cedar:1:") == true)
        #expect(events["daemon.stopping"]?["signal"] == .int(Int64(SIGTERM)))
        #expect(events["daemon.stopped"] != nil)
    }

    @Test func theTextFormatIsOneLinePerEventWithTimeAndLevel() throws {
        let d = try TestDaemon(extraArguments: ["--log-format", "text"]).start()
        d.signal(SIGTERM)
        #expect(d.waitForExit() == 0)
        let lines = d.stderrText().split(separator: "\n").map(String.init)
        #expect(!lines.isEmpty)
        for line in lines {
            #expect(line.range(of: #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (debug|info|warning|error) [a-z_.]+: "#,
                                options: .regularExpression) != nil, "\(line)")
        }
        #expect(lines.contains { $0.contains(" info daemon.serving: serving on \(d.socket)") }, "\(lines)")
    }

    @Test func aStartThatFailsIsLoggedAsAnErrorLine() throws {
        let d = try TestDaemon(extraArguments: ["--log-format", "json", "--audit-segment-bytes", "12"])
        try d.process.run()
        #expect(d.waitForExit() == 2)
        let line = d.stderrText().trimmingCharacters(in: .whitespacesAndNewlines)
        let o = try #require(try? JSON.parse(line).objectValue, "\(line)")
        #expect(o["event"]?.stringValue == "daemon.start_failed" && o["level"]?.stringValue == "error")
        #expect(o["message"]?.stringValue?.contains("--audit-segment-bytes must be at least 4096") == true, "\(line)")
    }

    static func disk(_ d: TestDaemon) throws -> JSONObject {
        try #require(try d.call("health").get().objectValue?["audit_disk"]?.objectValue)
    }

    @Test func healthReportsTheAuditLogsDiskUseAndHowFarTheArchiveIs() throws {
        // Small segments, so a few decisions seal some.
        let d = try TestDaemon(extraArguments: ["--audit-segment-bytes", "4096"]).start()
        let request = try exampleRequest("allow-scientist-reads-own-study.json")
        for _ in 0..<30 { _ = try d.call("decide", request) }
        let before = try Self.disk(d)
        let segments = try #require(before["segments"]?.intValue)
        #expect(segments >= 3, "\(before)")
        #expect(before["sealed_segments"]?.intValue == segments - 1)
        #expect(before["unarchived_sealed_segments"]?.intValue == segments - 1)
        #expect(before["archived_through"] == .null && before["first_entry"] == .int(0))
        #expect((before["bytes"]?.intValue ?? 0) > 4096 * 2)
        #expect((before["filesystem_available_bytes"]?.intValue ?? 0) > 0)
        #expect((before["filesystem_bytes"]?.intValue ?? 0) >= (before["filesystem_available_bytes"]?.intValue ?? 0))
        // The same numbers as gauges in `metrics` (what /metrics exports).
        let families = try #require(try d.call("metrics").get().objectValue?["families"]?.arrayValue)
        func gauge(_ name: String) -> Int64? {
            families.first { $0.objectValue?["name"]?.stringValue == name }?.objectValue?["samples"]?.arrayValue?.first?.objectValue?["value"]?.intValue
        }
        #expect(gauge("custos_audit_segments") == Int64(segments))
        #expect(gauge("custos_audit_unarchived_sealed_segments") == Int64(segments - 1))
        #expect((gauge("custos_audit_disk_bytes") ?? 0) > 4096 * 2)
        #expect((gauge("custos_audit_filesystem_available_bytes") ?? 0) > 0)
        #expect(gauge("custos_audit_archived_through") == nil, "no archive run yet")

        // Archived and pruned while the daemon writes on.
        let archive = d.dir + "/archive"
        let r = try runCustosCommand(["audit", "archive", "--state", d.dir, "--to", archive, "--prune-after", "0"])
        #expect(r.status == 0, "\(r.out)\(r.err)")
        #expect(r.out.contains("archived entries 0..<") && r.out.contains("pruned entries 0..<"), "\(r.out)")
        for _ in 0..<3 { #expect(decisionOf(try d.call("decide", request)) == "allow") }
        let after = try Self.disk(d)
        let through = try #require(after["archived_through"]?.intValue)
        #expect(through > 0 && after["first_entry"]?.intValue == through)
        #expect(after["segments"]?.intValue == 1 + (after["unarchived_sealed_segments"]?.intValue ?? -1))
        let afterFamilies = try #require(try d.call("metrics").get().objectValue?["families"]?.arrayValue)
        #expect(afterFamilies.first { $0.objectValue?["name"]?.stringValue == "custos_audit_archived_through" }?
            .objectValue?["samples"]?.arrayValue?.first?.objectValue?["value"]?.intValue == through)
        d.signal(SIGTERM)
        #expect(d.waitForExit() == 0)
        // The live folder verifies from its base, the archive on its own, with the log's key.
        let key = d.dir + "/pub"
        try runCustosCommand(["audit", "pubkey", "--state", d.dir]).out.write(toFile: key, atomically: true, encoding: .utf8)
        let live = try runCustosCommand(["audit", "verify", "--state", d.dir, "--pubkey", key])
        #expect(live.status == 0 && live.out.hasPrefix("OK: entries \(through)..<"), "\(live.out)\(live.err)")
        for folder in try FileManager.default.contentsOfDirectory(atPath: archive) where !folder.hasPrefix(".") {
            let v = try runCustosCommand(["audit", "verify", "--state", archive + "/" + folder, "--pubkey", key])
            #expect(v.status == 0, "\(folder): \(v.out)\(v.err)")
        }
    }

    @Test func aMillionEntryLogIsRotatedArchivedAndVerifiedLiveAndInEachArchive() throws {
        let dir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 1,000,000 entries (about 434 MB) in 32 MiB segments, a year ago.
        let gen = try runCustosCommand(["audit", "generate", "--state", dir + "/s", "--entries", "1000000",
                                        "--segment-bytes", "33554432", "--start", "2025-01-01T00:00:00Z"])
        try #require(gen.status == 0, "\(gen.err)")
        let key = dir + "/pub"
        try runCustosCommand(["audit", "pubkey", "--state", dir + "/s"]).out.write(toFile: key, atomically: true, encoding: .utf8)
        let segments = try FileManager.default.contentsOfDirectory(atPath: dir + "/s/audit").filter { $0.hasPrefix("segment-") }
        #expect(segments.count >= 12, "\(segments.count) segments")

        let archived = try runCustosCommand(["audit", "archive", "--state", dir + "/s", "--to", dir + "/archive", "--prune-after", "30", "--pubkey", key])
        #expect(archived.status == 0, "\(archived.out)\(archived.err)")
        let live = try runCustosCommand(["audit", "verify", "--state", dir + "/s", "--pubkey", key])
        #expect(live.status == 0, "\(live.out)\(live.err)")
        let remaining = try FileManager.default.contentsOfDirectory(atPath: dir + "/s/audit").filter { $0.hasPrefix("segment-") }
        #expect(remaining.count == 1, "only the segment being written stays: \(remaining)")

        // Each archive verifies alone; together with the live folder they hold every entry once.
        var covered: [(UInt64, UInt64)] = []
        for folder in try FileManager.default.contentsOfDirectory(atPath: dir + "/archive").sorted() where !folder.hasPrefix(".") {
            let v = try runCustosCommand(["audit", "verify", "--state", dir + "/archive/" + folder, "--pubkey", key])
            #expect(v.status == 0, "\(folder): \(v.out)\(v.err)")
            let bounds = folder.split(separator: "-").compactMap { UInt64($0) }
            try #require(bounds.count == 2)
            covered.append((bounds[0], bounds[1]))
        }
        let liveStart = try #require(live.out.firstMatch(of: /OK: entries (\d+)\.\.<1000000/).flatMap { UInt64($0.1) }, "\(live.out)")
        covered.append((liveStart, 1_000_000))
        #expect(covered.first?.0 == 0)
        for (a, b) in zip(covered, covered.dropFirst()) { #expect(a.1 == b.0, "gap or overlap: \(covered)") }
    }

    @Test func benchSocketMeasuresAScratchDaemonAndLeavesNoLogBehind() throws {
        let dir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runCustosCommand(["bench", "socket", "--requests", "200", "--folder", daemonExamplePolicies])
        #expect(r.status == 0, "\(r.out)\(r.err)")
        let state = try #require(r.out.firstMatch(of: /state (\/tmp\/custos-bench-[A-Za-z0-9]+)/).map { String($0.1) }, "\(r.out)")
        #expect(!FileManager.default.fileExists(atPath: state), "the scratch folder, audit log included, is removed")
        #expect(r.out.contains("daemon "), "\(r.out)")
    }

    @Test func benchFsyncTimesEachPatternOfACommitAndRemovesItsScratchFiles() throws {
        let dir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runCustosCommand(["bench", "fsync", "--dir", dir, "--rounds", "2", "--syncs", "3", "--bytes", "100"])
        #expect(r.status == 0, "\(r.out)\(r.err)")
        for pattern in ["append", "head", "commit", "preallocated"] {
            #expect(r.out.contains("median \(pattern): p50 "), "\(pattern): \(r.out)")
        }
        #expect(r.out.contains("round 2: "), "\(r.out)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty, "the scratch folder is removed")
    }

    @Test(arguments: [["--syncs", "2000000", "--bytes", "1024"], ["--syncs", "200000", "--bytes", "8192"],
                      ["--bytes", "2000000"], ["--syncs", "0"]])
    func benchFsyncRefusesSizesThatWouldFillTheDiskBeforeWritingAnything(args: [String]) throws {
        let dir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runCustosCommand(["bench", "fsync", "--dir", dir] + args)
        #expect(r.status != 0)
        #expect(r.err.contains("--syncs") || r.err.contains("--bytes"), "\(r.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty, "nothing was written")
    }

    @Test func benchFsyncInAFolderThatDoesNotExistSaysWhichFolderToGive() throws {
        let r = try runCustosCommand(["bench", "fsync", "--dir", "/nonexistent/custos", "--syncs", "1"])
        #expect(r.status != 0)
        #expect(r.err.contains("/nonexistent/custos") && r.err.contains("--dir"), "\(r.err)")
    }
}

