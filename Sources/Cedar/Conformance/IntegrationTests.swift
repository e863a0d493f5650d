import Foundation
import CustosJSON

/// Runs tests in the format of the upstream cedar-integration-tests repository: a JSON file
/// naming a policies file, an entities file, a schema and a list of requests with the expected
/// decision, reasons and erroring policies (reasons and errors compared as sets).
public struct IntegrationTestRunner {
    public struct Failure: Sendable, CustomStringConvertible {
        public var file: String
        public var description_: String
        public var expected: String
        public var got: String
        public var description: String { "\(file): \(description_): expected \(expected), got \(got)" }
    }

    public struct Summary: Sendable {
        public var passed = 0
        public var failed = 0
        public var files = 0
        /// Test files with `shouldValidate: true`, whose validation part is not checked here.
        public var validationSkipped = 0
        public var failures: [Failure] = []
        public init() {}
    }

    /// Folder against which the paths inside tests resolve; nil means find it per test file.
    public var root: String?
    private var entityCache: [String: EntityStore] = [:]

    public init(root: String? = nil) { self.root = root }

    /// Every `*.json` under `path` (recursively) that holds `requests`, or `path` itself.
    public static func testFiles(under path: String) -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return [] }
        guard isDir.boolValue else { return [path] }
        var out: [String] = []
        if let e = FileManager.default.enumerator(atPath: path) {
            while let rel = e.nextObject() as? String {
                guard rel.hasSuffix(".json"), !rel.hasSuffix(".entities.json") else { continue }
                out.append((path as NSString).appendingPathComponent(rel))
            }
        }
        return out.sorted()
    }

    /// Runs one test file, adding its requests to `summary`. Files without `requests` are ignored.
    public mutating func run(file: String, into summary: inout Summary) {
        func fail(_ desc: String, _ expected: String, _ got: String) {
            summary.failures.append(Failure(file: file, description_: desc, expected: expected, got: got))
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            summary.failed += 1; fail("(file)", "readable file", "unreadable"); return
        }
        let json: JSON
        do { json = try data.withUnsafeBytes { try JSON.parse($0) } } catch {
            summary.failed += 1; fail("(file)", "valid JSON", "\(error)"); return
        }
        guard case .array(let requests)? = json["requests"] else { return }
        summary.files += 1
        if json["shouldValidate"]?.boolValue == true { summary.validationSkipped += 1 }

        guard let policiesRel = json["policies"]?.stringValue, let entitiesRel = json["entities"]?.stringValue else {
            summary.failed += requests.count; fail("(file)", "\"policies\" and \"entities\" paths", "missing"); return
        }
        let base = root ?? Self.inferRoot(testFile: file, relative: policiesRel)
        let policies: PolicySet
        let entities: EntityStore
        do {
            policies = try PolicySet.load(path: (base as NSString).appendingPathComponent(policiesRel))
        } catch {
            summary.failed += requests.count; fail("(policies)", "policies that parse", "\(error)"); return
        }
        let entitiesPath = (base as NSString).appendingPathComponent(entitiesRel)
        if let cached = entityCache[entitiesPath] {
            entities = cached
        } else {
            do {
                entities = try EntityStore.load(text: String(decoding: FileManager.default.contents(atPath: entitiesPath) ?? Data(), as: UTF8.self), file: entitiesPath)
                entityCache[entitiesPath] = entities
            } catch {
                summary.failed += requests.count; fail("(entities)", "entities that load", "\(error)"); return
            }
        }

        for (i, rj) in requests.enumerated() {
            let desc = rj["description"]?.stringValue ?? "request \(i)"
            let request: Request
            do {
                request = try Request(json: rj, allowedExtraKeys: ["description", "decision", "reason", "errors", "validateRequest"])
            } catch {
                summary.failed += 1; fail(desc, "a request that parses", "\(error)"); continue
            }
            let expectedDecision = rj["decision"]?.stringValue ?? "?"
            let expectedReasons = Set((rj["reason"]?.arrayValue ?? []).compactMap(\.stringValue))
            let expectedErrors = Set((rj["errors"]?.arrayValue ?? []).compactMap(\.stringValue))
            let r = policies.authorize(request, entities: entities)
            let gotReasons = Set(r.reasons.map { policies.policies[$0].id })
            let gotErrors = Set(r.errors.map { policies.policies[$0.policy].id })
            if r.decision.rawValue == expectedDecision && gotReasons == expectedReasons && gotErrors == expectedErrors {
                summary.passed += 1
            } else {
                summary.failed += 1
                fail(desc, Self.render(expectedDecision, expectedReasons, expectedErrors),
                     Self.render(r.decision.rawValue, gotReasons, gotErrors)
                        + (r.errors.isEmpty ? "" : " [" + r.errors.map { "\(policies.policies[$0.policy].id): \($0.error)" }.joined(separator: "; ") + "]"))
            }
        }
    }

    /// The folder containing the one named first in the test's paths, found upwards from the
    /// test file (so `corpus-tests/x.cedar` resolves when the test sits in `.../corpus-tests/`).
    static func inferRoot(testFile: String, relative: String) -> String {
        let first = relative.split(separator: "/").first.map(String.init) ?? ""
        var dir = (testFile as NSString).deletingLastPathComponent
        while !dir.isEmpty && dir != "/" {
            if (dir as NSString).lastPathComponent == first { return (dir as NSString).deletingLastPathComponent }
            dir = (dir as NSString).deletingLastPathComponent
        }
        return (testFile as NSString).deletingLastPathComponent
    }

    static func render(_ d: String, _ reasons: Set<String>, _ errors: Set<String>) -> String {
        "\(d) reasons=\(reasons.sorted()) errors=\(errors.sorted())"
    }
}
