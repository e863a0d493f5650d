import Cedar
import CustosTestSupport
import Foundation
import Testing

/// Every policy file of the upstream Cedar integration tests must parse. The archive lives in
/// ../shared (never copied into the repository) and is unpacked into a scratch folder.
@Suite struct CorpusParsingTests {
    static let integrationTests: URL = TestPaths.shared.appendingPathComponent("cedar-integration-tests")
    static let archive = integrationTests.appendingPathComponent("corpus-tests.tar.gz")
    static let available = FileManager.default.fileExists(atPath: archive.path)

    static func cedarFiles(under dir: URL) -> [URL] {
        guard let walker = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil) else { return [] }
        return walker.compactMap { $0 as? URL }.filter { $0.pathExtension == "cedar" }
            .sorted { $0.path < $1.path }
    }

    static func parseAll(_ files: [URL]) throws -> (policies: Int, failures: [String]) {
        var policies = 0
        var failures: [String] = []
        for f in files {
            let text = try String(contentsOf: f, encoding: .utf8)
            do {
                policies += try CedarParser.parsePolicies(text, file: f.lastPathComponent).count
            } catch {
                failures.append(error.description)
            }
        }
        return (policies, failures)
    }

    @Test(.enabled(if: available, "../shared/cedar-integration-tests is absent: corpus parsing skipped"))
    func everyCorpusPolicyFileParses() throws {
        let scratch = Scratch.url("custos-parser-corpus")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        tar.arguments = ["tar", "-xzf", Self.archive.path, "-C", scratch.path, "--wildcards", "*.cedar"]
        try tar.run()
        tar.waitUntilExit()
        try #require(tar.terminationStatus == 0, "tar could not extract \(Self.archive.path)")

        let files = Self.cedarFiles(under: scratch)
        #expect(files.count == 7_809)
        let (policies, failures) = try Self.parseAll(files)
        for f in failures.prefix(20) { Issue.record("\(f)") }
        #expect(failures.isEmpty)
        // Each corpus file holds one policy (cedarpy agrees: scripts/cedarpy_compare.py).
        #expect(policies == 7_809)
    }

    @Test(.enabled(if: available, "../shared/cedar-integration-tests is absent: sample policy parsing skipped"))
    func everyHandWrittenIntegrationPolicyParses() throws {
        let files = Self.cedarFiles(under: Self.integrationTests.appendingPathComponent("tests"))
        #expect(!files.isEmpty)
        let (_, failures) = try Self.parseAll(files)
        for f in failures { Issue.record("\(f)") }
    }
}
