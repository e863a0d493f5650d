import CustosJSON

/// A conformance suite as written by a policy author (docs/conformance.md).
///
/// ```json
/// {"suite": "study leads", "policies": "../policies", "time": "2026-06-01T12:00:00Z",
///  "fixtures": {"entities": [...]},
///  "cases": [{"name": "lead reads own study", "method": "decide", "params": {...},
///             "expect": {"decision": "allow", "reasons": ["lead-reads-own-study"]}},
///            {"name": "withdrawn at T", "steps": [
///               {"method": "consent.withdraw", "params": {...}, "at": "2026-03-01T00:00:00Z", "expect": {...}},
///               {"method": "decide", "params": {...}, "at": "2026-03-01T00:00:01Z", "expect": {"decision": "deny"}}]}]}
/// ```
/// Unknown keys anywhere in the format are errors: a misspelt expectation must not pass.
public struct Suite: Sendable {
    public var name: String
    public var file: String
    /// The policies folder, resolved against the suite file's folder.
    public var policies: String
    /// The suite's decision time (RFC 3339), so results do not depend on the day the suite
    /// runs; a case or a step may set its own (`at`).
    public var time: String
    public var description: String?
    /// Shared fixtures: `entities` (Cedar entities that join the folder's), `consent` (params
    /// of `consent.grant` calls, each optionally with `withdrawn_at`) and `holds` (params of
    /// `hold.set` calls, each optionally with `set_at`, `released_at` and `release_reason`),
    /// applied before the first case; kept as JSON here, the environment applies them.
    public var fixtures: JSONObject
    public var cases: [Case]

    /// One call and what it must answer.
    public struct Step: Sendable {
        public var method: String
        public var params: JSON
        public var expect: Expectation
        /// When the call is made: the step's `at`, else its case's, else the suite's `time`.
        public var at: String
        /// The JSON path `at` was read from (`$.cases[2].steps[1].at`, `$.cases[2].at`, `$.time`).
        public var atPath: String
        /// The step's own JSON path (`$.cases[2]` for a case that is one call).
        public var path: String
        /// `stale_state`: answer as a daemon whose copy of a shared state store is older than
        /// its `max_staleness` (docs/fleet.md): what depends on consent or holds denies
        /// `state.stale`, changes are refused. The step's own, else its case's, else false.
        public var staleState: Bool = false
    }

    public struct Case: Sendable {
        public var name: String
        /// One step for a case written as `method`, `params`, `expect`; its `steps` otherwise.
        public var steps: [Step]
        /// Whether the case was written with `steps` (reports then number them).
        public var hasSteps: Bool
        /// Index in the suite, for stable ordering in reports.
        public var index: Int
        public var method: String { steps.first?.method ?? "" }
    }

    public static let fixtureKeys: Set<String> = ["entities", "consent", "holds"]
    static let caseKeys: Set<String> = ["name", "method", "params", "expect", "at", "steps", "stale_state"]
    static let stepKeys: Set<String> = ["method", "params", "expect", "at", "stale_state"]
    /// Most steps one case may hold: a case is a story, not a load test.
    public static let maxSteps = 100

    public init(json: JSON, file: String) throws(SuiteError) {
        guard case .object(let o) = json else { throw SuiteError(file: file, path: "$", "a suite is a JSON object") }
        try Self.checkKeys(o, allowed: ["suite", "description", "policies", "time", "fixtures", "cases"], file: file, path: "$")
        self.file = file
        let base = file.split(separator: "/").dropLast().joined(separator: "/")
        name = o["suite"]?.stringValue ?? String(file.split(separator: "/").last ?? "")
        description = o["description"]?.stringValue
        guard let p = o["policies"]?.stringValue, !p.isEmpty else {
            throw SuiteError(file: file, path: "$.policies", "name the policies folder, relative to this file")
        }
        policies = p.hasPrefix("/") ? p : (base.isEmpty ? p : (file.hasPrefix("/") ? "/" : "") + base + "/" + p)
        guard let t = o["time"]?.stringValue else {
            throw SuiteError(file: file, path: "$.time", "give the suite's decision time, e.g. \"2026-06-01T12:00:00Z\"")
        }
        time = t
        if let f = o["fixtures"] {
            guard case .object(let fo) = f else { throw SuiteError(file: file, path: "$.fixtures", "expected an object") }
            try Self.checkKeys(fo, allowed: Self.fixtureKeys, file: file, path: "$.fixtures")
            fixtures = fo
        } else {
            fixtures = JSONObject()
        }
        guard case .array(let cs)? = o["cases"], !cs.isEmpty else {
            throw SuiteError(file: file, path: "$.cases", "a suite needs a non-empty array of cases")
        }
        var seen = Set<String>()
        cases = []
        for (i, c) in cs.enumerated() {
            let path = "$.cases[\(i)]"
            guard case .object(let co) = c else { throw SuiteError(file: file, path: path, "a case is a JSON object") }
            try Self.checkKeys(co, allowed: Self.caseKeys, file: file, path: path)
            guard let name = co["name"]?.stringValue, !name.isEmpty else { throw SuiteError(file: file, path: path + ".name", "every case needs a name") }
            guard seen.insert(name).inserted else { throw SuiteError(file: file, path: path + ".name", "duplicate case name \"\(name)\"") }
            var at = (value: t, path: "$.time")
            if let a = co["at"] { at = (try Self.time(a, file: file, path: path + ".at"), path + ".at") }
            let stale = try Self.flag(co["stale_state"], inherited: false, file: file, path: path + ".stale_state")
            if let s = co["steps"] {
                for k in ["method", "params", "expect"] where co[k] != nil {
                    throw SuiteError(file: file, path: "\(path).\(k)", "a case has either steps or method, params and expect; move it into a step")
                }
                guard case .array(let items) = s, !items.isEmpty else {
                    throw SuiteError(file: file, path: path + ".steps", "expected a non-empty array of steps {method, params, at?, expect}")
                }
                guard items.count <= Self.maxSteps else {
                    throw SuiteError(file: file, path: path + ".steps", "\(items.count) steps; a case holds at most \(Self.maxSteps) (split it into cases: they run in order)")
                }
                var steps: [Step] = []
                for (j, item) in items.enumerated() {
                    let sp = "\(path).steps[\(j)]"
                    guard case .object(let so) = item else { throw SuiteError(file: file, path: sp, "a step is a JSON object {method, params, at?, expect}") }
                    try Self.checkKeys(so, allowed: Self.stepKeys, file: file, path: sp)
                    var step = try Self.step(so, file: file, path: sp, inherited: at, readsAt: true)
                    step.staleState = try Self.flag(so["stale_state"], inherited: stale, file: file, path: sp + ".stale_state")
                    steps.append(step)
                }
                cases.append(Case(name: name, steps: steps, hasSteps: true, index: i))
            } else {
                var step = try Self.step(co, file: file, path: path, inherited: at, readsAt: false)
                step.staleState = stale
                cases.append(Case(name: name, steps: [step], hasSteps: false, index: i))
            }
        }
    }

    /// A call's `method`, `params`, `expect` and `at`, read from a case or a step object; a
    /// step's own `at` (`readsAt`) overrides its case's.
    static func step(_ o: JSONObject, file: String, path: String, inherited: (value: String, path: String),
                     readsAt: Bool) throws(SuiteError) -> Step {
        guard let method = o["method"]?.stringValue else { throw SuiteError(file: file, path: path + ".method", "name the method, e.g. \"decide\"") }
        guard let params = o["params"] else { throw SuiteError(file: file, path: path + ".params", "missing params") }
        guard let e = o["expect"] else { throw SuiteError(file: file, path: path + ".expect", "say what is expected") }
        let expect = try Expectation(json: e, file: file, path: path + ".expect", method: method)
        var at = inherited
        if readsAt, let a = o["at"] { at = (try time(a, file: file, path: path + ".at"), path + ".at") }
        return Step(method: method, params: params, expect: expect, at: at.value, atPath: at.path, path: path)
    }

    static func flag(_ j: JSON?, inherited: Bool, file: String, path: String) throws(SuiteError) -> Bool {
        guard let j else { return inherited }
        guard case .bool(let b) = j else { throw SuiteError(file: file, path: path, "expected true or false") }
        return b
    }

    static func time(_ j: JSON, file: String, path: String) throws(SuiteError) -> String {
        guard case .string(let s) = j else { throw SuiteError(file: file, path: path, "expected a time such as \"2026-06-01T12:00:00Z\"") }
        return s
    }

    /// Checks what needs the environment's knowledge: every guardrail code an expectation
    /// names must be one the product can answer (`codes`), so a misspelt code is an error
    /// rather than an expectation that can never hold.
    public func validate(codes: Set<String>) throws(SuiteError) {
        for c in cases {
            for s in c.steps {
                for (i, code) in s.expect.codes.enumerated() where !codes.contains(code) {
                    throw SuiteError(file: file, path: "\(s.path).expect.codes[\(i)]", Self.unknownCode(code, codes))
                }
                for (node, cs) in s.expect.rejected ?? [] {
                    for (i, code) in cs.enumerated() where !codes.contains(code) {
                        throw SuiteError(file: file, path: "\(s.path).expect.rejected.\(node)[\(i)]", Self.unknownCode(code, codes))
                    }
                }
            }
        }
    }

    static func unknownCode(_ code: String, _ codes: Set<String>) -> String {
        let prefix = code.split(separator: ".").first.map(String.init) ?? code
        let near = codes.filter { $0.hasPrefix(prefix + ".") }.sorted()
        let hint = near.isEmpty ? "known codes: \(codes.sorted().joined(separator: ", "))" : "known \(prefix) codes: \(near.joined(separator: ", "))"
        return "unknown guardrail code \"\(code)\" (\(hint); docs/guardrails.md, \"Denial codes\")"
    }

    static func checkKeys(_ o: JSONObject, allowed: Set<String>, file: String, path: String) throws(SuiteError) {
        for k in o.keys where !allowed.contains(k) {
            throw SuiteError(file: file, path: "\(path).\(k)", "unknown key \"\(k)\" (allowed here: \(allowed.sorted().joined(separator: ", ")))")
        }
    }
}

/// Why a suite could not be read or prepared: the file, a JSON path into it, and what to fix.
public struct SuiteError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var path: String
    public var message: String

    public init(file: String, path: String = "", _ message: String) {
        self.file = file; self.path = path; self.message = message
    }

    public var description: String { path.isEmpty ? "\(file): \(message)" : "\(file): \(path): \(message)" }
}
