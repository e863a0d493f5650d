import CustosJSON
#if canImport(Glibc)
import Glibc
#endif

/// What a method call gave: its result, or a JSON-RPC error.
public enum CaseOutcome: Sendable {
    case result(JSON)
    case error(code: Int64, message: String)
}

/// A suite's loaded policies, ready to answer calls at the times the suite gives. The command
/// line builds it with the same decision code the daemon uses.
public struct SuiteEnvironment {
    /// Every policy name of the loaded set (for coverage).
    public var policyNames: [String]
    /// Makes one call with the decision time `at` (as the suite wrote it; the environment
    /// checked every time when it was prepared).
    public var call: (_ method: String, _ params: JSON, _ at: String) -> CaseOutcome
    /// Runs after the suite's last case (e.g. removes a scratch state folder).
    public var finish: () -> Void
    /// Called before each call with its step's `stale_state`.
    public var staleState: (Bool) -> Void = { _ in }

    public init(policyNames: [String], call: @escaping (_ method: String, _ params: JSON, _ at: String) -> CaseOutcome,
                finish: @escaping () -> Void = {}) {
        self.policyNames = policyNames; self.call = call; self.finish = finish
    }
}

/// One call of a case and how its answer compared.
public struct StepResult: Sendable {
    public var method: String
    public var at: String
    public var failures: [String]
    /// The whole answer (see `Answer.json`): for the report of a failure.
    public var answer: JSON
    /// The same, one member per line, for the text report.
    public var answerLines: String
    public var got: String
    public var passed: Bool { failures.isEmpty }
}

public struct CaseResult: Sendable {
    public var suite: String
    public var file: String
    public var name: String
    public var method: String
    /// Every unmet expectation; in a case with steps, each says which step.
    public var failures: [String]
    /// Policies that determined the answers, and guardrail codes in them (for the diff and
    /// coverage), over every step.
    public var firedPolicies: [String]
    public var codes: [String]
    public var got: String
    public var seconds: Double
    /// One per call; a case written without `steps` has one.
    public var steps: [StepResult] = []
    /// Whether the case was written with `steps`.
    public var hasSteps: Bool = false
    public var passed: Bool { failures.isEmpty }
}

public struct RunReport: Sendable {
    public var cases: [CaseResult] = []
    /// Suites that could not be read or prepared; each counts as one failure.
    public var suiteErrors: [SuiteError] = []
    /// Policy names per suite's policies folder, and the guardrail codes that exist.
    public var policiesByFolder: [String: [String]] = [:]
    public var knownCodes: [String] = []

    public var passed: Int { cases.filter(\.passed).count }
    public var failed: Int { cases.count - passed + suiteErrors.count }

    /// Policies no case saw determine an answer, per policies folder.
    public var uncoveredPolicies: [(folder: String, policy: String)] {
        var out: [(String, String)] = []
        for (folder, names) in policiesByFolder.sorted(by: { $0.key < $1.key }) {
            let seen = cases.filter { suiteFolder[$0.file] == folder }.reduce(into: Set<String>()) { $0.formUnion($1.firedPolicies) }
            for n in names where !seen.contains(n) { out.append((folder, n)) }
        }
        return out
    }

    /// Guardrail codes no case's answer contained.
    public var uncoveredCodes: [String] {
        let seen = cases.reduce(into: Set<String>()) { $0.formUnion($1.codes) }
        return knownCodes.filter { !seen.contains($0) }
    }

    /// Percentage of policies and codes covered (100 when there is nothing to cover).
    public var coveragePercent: Double {
        let total = policiesByFolder.values.reduce(0) { $0 + $1.count } + knownCodes.count
        guard total > 0 else { return 100 }
        return 100 * Double(total - uncoveredPolicies.count - uncoveredCodes.count) / Double(total)
    }

    /// Which policies folder each suite file used.
    public var suiteFolder: [String: String] = [:]
}

public enum ConformanceRunner {
    /// Suite files: a file as given, or every `*.json` under a folder (recursively), in order.
    public static func suiteFiles(under path: String) -> [String] {
        var st = stat()
        guard stat(path, &st) == 0 else { return [] }
        if (st.st_mode & S_IFMT) != S_IFDIR { return [path] }
        var out: [String] = []
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        while let e = readdir(dir) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name.hasPrefix(".") { continue }
            let full = path.hasSuffix("/") ? path + name : path + "/" + name
            var s2 = stat()
            guard stat(full, &s2) == 0 else { continue }
            if (s2.st_mode & S_IFMT) == S_IFDIR { out += suiteFiles(under: full) } else if name.hasSuffix(".json") { out.append(full) }
        }
        return out.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// Runs one case: its steps in order, each at its own time. Every step runs even after one
    /// failed, so the report shows each answer.
    static func run(_ c: Suite.Case, of suite: Suite, file: String, in env: SuiteEnvironment) -> CaseResult {
        var result = CaseResult(suite: suite.name, file: file, name: c.name, method: c.method, failures: [],
                                firedPolicies: [], codes: [], got: "", seconds: 0, hasSteps: c.hasSteps)
        for (i, step) in c.steps.enumerated() {
            let t0 = now()
            env.staleState(step.staleState)
            let answer = Answer(env.call(step.method, step.params, step.at))
            result.seconds += now() - t0
            let failures = answer.check(step.expect)
            let label = c.hasSteps ? "step \(i + 1) (\(step.method) at \(step.at)): " : ""
            result.failures += failures.map { label + $0 }
            for p in answer.policies where !result.firedPolicies.contains(p) { result.firedPolicies.append(p) }
            for code in answer.codes where !result.codes.contains(code) { result.codes.append(code) }
            result.steps.append(StepResult(method: step.method, at: step.at, failures: failures, answer: answer.json,
                                           answerLines: answer.lines(indent: ""), got: answer.summary))
        }
        result.got = result.steps.map(\.got).joined(separator: "; ")
        return result
    }

    /// Codes an expectation may name besides the guardrails' own: a forbid that failed to
    /// evaluate and so denied (docs/protocol.md, `decide` errors).
    public static let extraCodes: Set<String> = ["policy.forbid_error"]

    /// Runs every case of every suite (those matching `filter` on "suite/case", by substring).
    /// `knownCodes` are the guardrail codes coverage counts; an expectation naming a code
    /// neither among them nor in `extraCodes` fails its suite.
    public static func run(files: [String], filter: String? = nil, knownCodes: [String],
                           prepare: (Suite) throws(SuiteError) -> SuiteEnvironment) -> RunReport {
        var report = RunReport()
        report.knownCodes = knownCodes
        for file in files {
            let suite: Suite
            do {
                suite = try load(file)
                try suite.validate(codes: Set(knownCodes).union(extraCodes))
            } catch {
                report.suiteErrors.append(error)
                continue
            }
            let selected = suite.cases.filter { filter == nil || "\(suite.name)/\($0.name)".contains(filter!) }
            if selected.isEmpty { continue }
            let env: SuiteEnvironment
            do { env = try prepare(suite) } catch {
                report.suiteErrors.append(error)
                continue
            }
            report.policiesByFolder[suite.policies] = env.policyNames
            report.suiteFolder[file] = suite.policies
            for c in selected { report.cases.append(run(c, of: suite, file: file, in: env)) }
            env.finish()
        }
        return report
    }

    public static func load(_ file: String) throws(SuiteError) -> Suite {
        let bytes = try readFile(file)
        let json: JSON
        do { json = try JSON.parse(bytes) } catch {
            throw SuiteError(file: file, path: "\(error.line):\(error.column)", "invalid JSON: \(error.message)")
        }
        return try Suite(json: json, file: file)
    }

    static func readFile(_ path: String) throws(SuiteError) -> [UInt8] {
        guard let f = fopen(path, "rb") else { throw SuiteError(file: path, "cannot be read") }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
