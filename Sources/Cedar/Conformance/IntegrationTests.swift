import Foundation
import CustosJSON

/// Runs tests in the format of the upstream cedar-integration-tests repository: a JSON file
/// naming a policies file, an entities file, a schema, whether the policies validate against
/// the schema (`shouldValidate`) and a list of requests with the expected decision, reasons and
/// erroring policies (reasons and errors compared as sets). As the reference harness does,
/// entities and contexts are read against the schema, and requests are validated against it
/// unless a request says `"validateRequest": false`.
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
        /// Test files whose validation verdict equals `shouldValidate`, and those where it differs.
        public var validationAgree = 0
        public var validationDisagree = 0
        public var failures: [Failure] = []
        public init() {}
    }

    /// Folder against which the paths inside tests resolve; nil means find it per test file.
    public var root: String?
    private var entityCache: [String: EntityStore] = [:]
    private var schemaCache: [String: Result<Schema, SchemaError>] = [:]

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

        guard let policiesRel = json["policies"]?.stringValue, let entitiesRel = json["entities"]?.stringValue else {
            summary.failed += requests.count; fail("(file)", "\"policies\" and \"entities\" paths", "missing"); return
        }
        let base = root ?? Self.inferRoot(testFile: file, relative: policiesRel)
        func path(_ rel: String) -> String { (base as NSString).appendingPathComponent(rel) }
        let policies: PolicySet
        do {
            policies = try PolicySet.load(path: path(policiesRel))
        } catch {
            summary.failed += requests.count; fail("(policies)", "policies that parse", "\(error)"); return
        }
        var schema: Schema? = nil
        if let schemaRel = json["schema"]?.stringValue {
            let schemaPath = path(schemaRel)
            let loaded = schemaCache[schemaPath] ?? Result { () throws(SchemaError) in
                json["schemaFormat"]?.stringValue == "json"
                    ? try Schema.parse(jsonText: Self.read(schemaPath), file: schemaPath)
                    : try Schema.parse(cedarSchema: Self.read(schemaPath), file: schemaPath)
            }
            schemaCache[schemaPath] = loaded
            switch loaded {
            case .success(let s): schema = s
            case .failure(let e):
                summary.validationDisagree += 1
                summary.failed += requests.count; fail("(schema)", "a schema that parses", "\(e)"); return
            }
            if let expected = json["shouldValidate"]?.boolValue {
                let report = Validator(schema: schema!).validate(policies)
                if report.passed == expected {
                    summary.validationAgree += 1
                } else {
                    summary.validationDisagree += 1
                    fail("(validation)", expected ? "policies that validate" : "a validation error",
                         report.passed ? "none" : report.errors.map(\.description).joined(separator: "; "))
                }
            }
        }
        let entitiesPath = path(entitiesRel)
        let entities: EntityStore
        let cacheKey = entitiesPath + "\u{0}" + (json["schema"]?.stringValue.map(path) ?? "")
        if let cached = entityCache[cacheKey] {
            entities = cached
        } else {
            do {
                let text = Self.read(entitiesPath)
                entities = try schema.map { s throws(FormatError) in try EntityStore.load(text: text, file: entitiesPath, schema: s) }
                    ?? EntityStore.load(text: text, file: entitiesPath)
                entityCache[cacheKey] = entities
            } catch {
                summary.failed += requests.count; fail("(entities)", "entities that load", "\(error)"); return
            }
        }

        for (i, rj) in requests.enumerated() {
            let desc = rj["description"]?.stringValue ?? "request \(i)"
            let request: Request
            do {
                let extra: Set<String> = ["description", "decision", "reason", "errors", "validateRequest"]
                if let schema {
                    request = try Request(json: rj, schema: schema, validate: rj["validateRequest"]?.boolValue ?? true, allowedExtraKeys: extra)
                } else {
                    request = try Request(json: rj, allowedExtraKeys: extra)
                }
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

    private static func read(_ path: String) -> String {
        String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
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
