import CustosJSON

/// A conformance suite as written by a policy author (docs/conformance.md).
///
/// ```json
/// {"suite": "study leads", "policies": "../policies", "time": "2026-06-01T12:00:00Z",
///  "fixtures": {"entities": [...]},
///  "cases": [{"name": "lead reads own study", "method": "decide", "params": {...},
///             "expect": {"decision": "allow", "reasons": ["lead-reads-own-study"]}}]}
/// ```
/// Unknown keys anywhere in the format are errors: a misspelt expectation must not pass.
public struct Suite: Sendable {
    public var name: String
    public var file: String
    /// The policies folder, resolved against the suite file's folder.
    public var policies: String
    /// The fixed decision time (RFC 3339), so results do not depend on the day the suite runs.
    public var time: String
    public var description: String?
    /// Shared fixtures: `entities` (Cedar entities added to each decision's), `consent` (params
    /// of `consent.grant` calls) and `holds` (params of `hold.set` calls), applied before the
    /// first case; kept as JSON here, the environment applies them.
    public var fixtures: JSONObject
    public var cases: [Case]

    public struct Case: Sendable {
        public var name: String
        public var method: String
        public var params: JSON
        public var expect: Expectation
        /// Index in the suite, for stable ordering in reports.
        public var index: Int
    }

    public static let fixtureKeys: Set<String> = ["entities", "consent", "holds"]

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
            throw SuiteError(file: file, path: "$.time", "give the fixed decision time, e.g. \"2026-06-01T12:00:00Z\"")
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
            try Self.checkKeys(co, allowed: ["name", "method", "params", "expect"], file: file, path: path)
            guard let name = co["name"]?.stringValue, !name.isEmpty else { throw SuiteError(file: file, path: path + ".name", "every case needs a name") }
            guard seen.insert(name).inserted else { throw SuiteError(file: file, path: path + ".name", "duplicate case name \"\(name)\"") }
            guard let method = co["method"]?.stringValue else { throw SuiteError(file: file, path: path + ".method", "name the method, e.g. \"decide\"") }
            guard let params = co["params"] else { throw SuiteError(file: file, path: path + ".params", "missing params") }
            guard let e = co["expect"] else { throw SuiteError(file: file, path: path + ".expect", "say what is expected") }
            let expect = try Expectation(json: e, file: file, path: path + ".expect")
            cases.append(Case(name: name, method: method, params: params, expect: expect, index: i))
        }
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
