import Testing
import Foundation

/// `custos authorize` and `custos cedar-test` as a user runs them: malformed input gives a
/// readable error with a location and a non-zero exit, never a crash.
@Suite struct AuthorizeCommandTests {
    static let policies = """
    // Study leads read their study's datasets; nobody reads a dataset under legal hold.
    @id("lead-reads")
    permit(principal in Role::"study_lead", action == Action::"read", resource)
    when { resource.study == principal.study };
    @id("hold")
    forbid(principal, action, resource) when { resource has hold && resource.hold };
    """
    static let entities = """
    [{"uid":{"type":"User","id":"ana"},"attrs":{"study":"ONC-01"},"parents":[{"type":"Role","id":"study_lead"}]},
     {"uid":{"type":"Role","id":"study_lead"},"attrs":{},"parents":[]},
     {"uid":{"type":"Dataset","id":"d1"},"attrs":{"study":"ONC-01"},"parents":[]},
     {"uid":{"type":"Dataset","id":"d2"},"attrs":{"study":"ONC-01","hold":true},"parents":[]}]
    """
    static func request(_ resource: String) -> String {
        #"{"principal":{"type":"User","id":"ana"},"action":{"type":"Action","id":"read"},"resource":{"type":"Dataset","id":"\#(resource)"},"context":{}}"#
    }

    func write(_ dir: URL, policies: String = policies, entities: String = entities, request: String = request("d1")) throws {
        try policies.write(to: dir.appendingPathComponent("p.cedar"), atomically: true, encoding: .utf8)
        try entities.write(to: dir.appendingPathComponent("e.json"), atomically: true, encoding: .utf8)
        try request.write(to: dir.appendingPathComponent("r.json"), atomically: true, encoding: .utf8)
    }

    func authorize(_ dir: URL, requests: Bool = false) throws -> Binary.Outcome {
        try Binary.run(["authorize", "--policies", dir.appendingPathComponent("p.cedar").path,
                        "--entities", dir.appendingPathComponent("e.json").path,
                        requests ? "--requests" : "--request", dir.appendingPathComponent("r.json").path])
    }

    /// Policies are named as the daemon names them: by `@id`, else by position.
    @Test func allowAndDenyAreDecidedWithReasonsNamedByTheirId() throws {
        let dir = try Binary.scratch()
        try write(dir)
        let allow = try authorize(dir)
        #expect(allow.status == 0)
        #expect(allow.stdout == #"{"decision":"allow","reasons":["lead-reads"],"errors":[]}"# + "\n")
        try write(dir, request: Self.request("d2"))
        #expect(try authorize(dir).stdout == #"{"decision":"deny","reasons":["hold"],"errors":[]}"# + "\n")
        // Without @id, the position id: the second policy of the file.
        try write(dir, policies: Self.policies.replacingOccurrences(of: "@id(\"hold\")\n", with: ""), request: Self.request("d2"))
        #expect(try authorize(dir).stdout == #"{"decision":"deny","reasons":["policy1"],"errors":[]}"# + "\n")
    }

    @Test func helpSaysPoliciesAreNamedByTheirId() throws {
        let out = try Binary.run(["authorize", "--help"])
        #expect(out.status == 0)
        #expect(out.stdout.contains("named by its @id"))
    }

    @Test func batchAnswersEveryLineInOrderAndFlagsBadLines() throws {
        let dir = try Binary.scratch()
        try write(dir, request: [Self.request("d1"), Self.request("d2"), "{not json", Self.request("zz")].joined(separator: "\n"))
        let out = try authorize(dir, requests: true)
        let lines = out.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines[0].contains(#""allow""#))
        #expect(lines[1].contains(#""reasons":["hold"]"#))
        #expect(lines[2].hasPrefix(#"{"error":"line 3"#))
        #expect(lines[3].contains(#""deny""#))
        #expect(out.status == 2)
        #expect(out.stderr.contains("r.json:3:"))
    }

    @Test(arguments: [
        ("permit(principal, action, resource) when { 1 + };", "p.cedar:1:"),
        ("permit(principal, action, resource)\nwhen { principal.x == 1 }\nforbid(principal, action, resource);", "p.cedar:3:1"),
        ("permit(principal == User::\"a\" == 1, action, resource);", "p.cedar:1:"),
        ("permit(principal, action, resource) when { \"unterminated };", "p.cedar:1:"),
    ])
    func malformedPoliciesNameFileLineAndColumn(_ text: String, _ location: String) throws {
        let dir = try Binary.scratch()
        try write(dir, policies: text)
        let out = try authorize(dir)
        #expect(out.status == 2)
        #expect(!out.crashed)
        #expect(out.stderr.contains(dir.appendingPathComponent(location).path), "\(out.stderr)")
    }

    @Test func everyTruncationOfThePoliciesFailsCleanly() throws {
        let dir = try Binary.scratch()
        let bytes = Array(Self.policies.utf8)
        // Every 7th cut keeps the run short; each must parse or give a located error.
        for n in stride(from: 0, to: bytes.count, by: 7) {
            try write(dir, policies: String(decoding: bytes[..<n], as: UTF8.self))
            let out = try authorize(dir)
            #expect(!out.crashed)
            #expect(out.status == 0 || (out.status == 2 && out.stderr.contains("p.cedar:")), "cut at \(n): \(out.stderr)")
        }
    }

    @Test(arguments: [
        ("[{\"uid\":{\"type\":\"A\",\"id\":\"1\"},\"attrs\":{}", "e.json:1:"),
        ("[{\"uid\":{\"type\":\"A\",\"id\":\"1\"},\"attrs\":{},\"parents\":[{\"type\":\"A\",\"id\":\"1\"}]}]", "cycle"),
        ("\u{FF}\u{FE}garbage", "e.json"),
        ("", "e.json"),
    ])
    func malformedEntitiesAreRefusedWithLocation(_ text: String, _ expected: String) throws {
        let dir = try Binary.scratch()
        try write(dir, entities: text)
        let out = try authorize(dir)
        #expect(out.status == 2)
        #expect(!out.crashed)
        #expect(out.stderr.contains(expected), "\(out.stderr)")
    }

    @Test(arguments: ["", "{", "[]", #"{"principal":{"type":"User","id":"ana"}}"#, "\u{0}\u{1}\u{2}"])
    func malformedRequestsAreRefused(_ text: String) throws {
        let dir = try Binary.scratch()
        try write(dir, request: text)
        let out = try authorize(dir)
        #expect(out.status == 2)
        #expect(!out.crashed)
        #expect(out.stderr.contains("r.json"), "\(out.stderr)")
    }

    @Test(arguments: ["authorize", "cedar-test", "bench"])
    func everyCommandHasHelp(_ command: String) throws {
        let out = try Binary.run([command, "--help"])
        #expect(out.status == 0)
        #expect(out.stdout.contains("Usage: custos \(command)"))
    }

    @Test func unknownOptionsAreUsageErrors() throws {
        let out = try Binary.run(["authorize", "--polices", "x"])
        #expect(out.status == 2)
        #expect(out.stderr.contains("unknown option --polices"))
    }
}

/// `custos bench cedar --workload forbids` (issue 18): the many-forbids workload, written to a
/// folder so that both engines read identical files.
@Suite struct BenchForbidsWorkloadTests {
    func write(_ dir: URL, seed: Int = 1) throws -> Binary.Outcome {
        try Binary.run(["bench", "cedar", "--workload", "forbids", "--requests", "300", "--seed", "\(seed)", "--write", dir.path])
    }

    @Test func theWorkloadHas3000Entities25RulesOf14ForbidsAndIsTheSameForTheSameSeed() throws {
        let a = try Binary.scratch(), b = try Binary.scratch(), c = try Binary.scratch()
        #expect(try write(a).status == 0)
        #expect(try write(b).status == 0)
        #expect(try write(c, seed: 2).status == 0)
        let files = ["policies.cedar", "entities.json", "requests.jsonl"]
        func read(_ d: URL, _ f: String) throws -> String { try String(contentsOf: d.appendingPathComponent(f), encoding: .utf8) }
        for f in files { #expect(try read(a, f) == read(b, f), "\(f) differs between two runs with seed 1") }
        #expect(try read(a, "requests.jsonl") != read(c, "requests.jsonl"))
        let policies = try read(a, "policies.cedar")
        #expect(policies.components(separatedBy: "permit(").count - 1 == 11)
        #expect(policies.components(separatedBy: "forbid(").count - 1 == 14)
        #expect(try read(a, "entities.json").components(separatedBy: #""uid":"#).count - 1 == 3_000)
        #expect(try read(a, "requests.jsonl").split(separator: "\n").count == 300)
    }

    @Test func authorizeDecidesEveryRequestOfTheWorkloadWithBothDecisionsPresent() throws {
        let dir = try Binary.scratch()
        #expect(try write(dir).status == 0)
        let out = try Binary.run(["authorize", "--policies", dir.appendingPathComponent("policies.cedar").path,
                                  "--entities", dir.appendingPathComponent("entities.json").path,
                                  "--requests", dir.appendingPathComponent("requests.jsonl").path])
        #expect(out.status == 0, "\(out.stderr)")
        let lines = out.stdout.split(separator: "\n")
        #expect(lines.count == 300)
        #expect(lines.allSatisfy { $0.hasPrefix(#"{"decision":"allow""#) || $0.hasPrefix(#"{"decision":"deny""#) })
        #expect(lines.contains { $0.hasPrefix(#"{"decision":"allow""#) })
        #expect(lines.contains { $0.contains(#""reasons":["region-allowed""#) || $0.contains(#""clearance""#) })
    }

    @Test func policiesWithTheForbidsWorkloadIsAUsageError() throws {
        let out = try Binary.run(["bench", "cedar", "--workload", "forbids", "--policies", "20", "--requests", "10"])
        #expect(out.status == 2)
        #expect(out.stderr.contains("--policies applies to the grants workload only"))
    }
}
