import CustosDaemon
import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Testing

/// Typos in the policies folder, at random: the example folder's files (Cedar policies, the
/// schema, entities.json, every guardrail file) with characters, Cedar tokens and lines
/// deleted, doubled or inserted, 400 times from a fixed seed. Each reload must either load or
/// fail with an error, never crash; a failed reload must leave the revision in service as it
/// was (docs/operations.md: a reload that fails changes nothing); and whatever loaded must then
/// decide the example requests and a placement without crashing, by an answer or an error.
@Suite struct FolderMutationFuzzTests {
    static let trials = 400

    /// What an author might type by mistake, or an editor might leave behind.
    static let tokens = ["(", ")", "{", "}", "[", "]", ",", ";", ":", "::", "\"", "\\", ".", "..", "==", "!=", "<", ">=",
                         "&&", "||", "!", "-", "+", "*", "in", "has", "like", "is", "if", "then", "else", "when", "unless",
                         "permit", "forbid", "principal", "action", "resource", "context", "@id(\"x\")", "?principal",
                         "9223372036854775807", "-9223372036854775808", "9223372036854775808", "1e400", "0x10", "\u{0}",
                         "\u{FEFF}", "\u{301}", "\u{2028}", "ip(\"10.0.0.1/33\")", "decimal(\"1.00001\")",
                         "datetime(\"2026-02-30\")", "duration(\"1d2x\")", "entity", "type", "namespace", "appliesTo",
                         "true", "false", "null", "{}", "[]", "\"eu-central-1\"", "\"primary_research\"", "/*", "//", "\n"]

    static func mutate(_ text: String, _ rng: inout SeededRandom) -> String {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        switch Int.random(in: 0..<6, using: &rng) {
        case 0 where lines.count > 1:  // a line deleted
            lines.remove(at: Int.random(in: 0..<lines.count, using: &rng))
        case 1:  // a line doubled
            let i = Int.random(in: 0..<lines.count, using: &rng)
            lines.insert(lines[i], at: i)
        case 2 where lines.count > 1:  // two lines swapped
            lines.swapAt(Int.random(in: 0..<lines.count, using: &rng), Int.random(in: 0..<lines.count, using: &rng))
        default:  // characters: some deleted, some tokens inserted
            var scalars = Array(text.unicodeScalars)
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let at = Int.random(in: 0...scalars.count, using: &rng)
                if Bool.random(using: &rng), at < scalars.count {
                    scalars.removeSubrange(at..<min(scalars.count, at + Int.random(in: 1...4, using: &rng)))
                } else {
                    let token = tokens[Int.random(in: 0..<tokens.count, using: &rng)]
                    scalars.insert(contentsOf: token.unicodeScalars, at: at)
                }
            }
            return String(String.UnicodeScalarView(scalars))
        }
        return lines.joined(separator: "\n")
    }

    @Test func typosInEveryFileOfTheFolderEitherLoadOrFailWithoutChangingWhatIsInService() throws {
        let f = try GuardrailFixture(schema: true)
        let fm = FileManager.default
        var files: [String] = []
        for sub in ["", "/guardrails"] {
            for name in try fm.contentsOfDirectory(atPath: f.policies + sub).sorted() {
                var isDir: ObjCBool = false
                let path = f.policies + sub + "/" + name
                if fm.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue { files.append(path) }
            }
        }
        #expect(files.contains { $0.hasSuffix(".cedar") } && files.contains { $0.hasSuffix("schema.cedarschema") }
                && files.contains { $0.hasSuffix("/guardrails/regions.json") }, "\(files)")
        let requests = try fm.contentsOfDirectory(atPath: examplePolicies + "/requests").sorted().map {
            try String(contentsOfFile: examplePolicies + "/requests/" + $0, encoding: .utf8)
        }
        let place = #"{"job":{"id":"j1","principal":"User::\"carol\"","study":"ONC-301","purpose":"primary_research","datasets":["onc301-de-clinical"]},"nodes":[{"name":"fra-1","region":"eu-central-1"},{"name":"ore-1","region":"us-west-2"}]}"#
        let original = try #require(f.store.snapshot?.revision)
        var rng = SeededRandom(state: 0x666f_6c64_6572_0001)
        var loaded = 0, refused = 0
        for trial in 0..<Self.trials {
            let path = files[Int.random(in: 0..<files.count, using: &rng)]
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let typo = Self.mutate(text, &rng)
            try typo.write(toFile: path, atomically: true, encoding: .utf8)
            let before = try #require(f.store.snapshot?.revision)
            switch f.store.reload() {
            case .failure(let e):
                refused += 1
                #expect(f.store.snapshot?.revision == before, "trial \(trial): a failed reload changed the revision (\(e.message))")
            case .success:
                loaded += 1
            }
            // Whatever is in service decides, or says why not; nothing may bring the process down.
            for r in requests { _ = try? f.call("decide", r) }
            _ = try? f.call("place", place)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
        // Back to the untouched folder: the revision it started with.
        if case .failure(let e) = f.store.reload() { Issue.record("the restored folder does not load: \(e.message)") }
        #expect(f.store.snapshot?.revision == original)
        // Both outcomes were exercised (a typo in a comment or a description still loads).
        #expect(loaded > 10 && refused > Self.trials / 2, "loaded \(loaded), refused \(refused)")
    }
}
