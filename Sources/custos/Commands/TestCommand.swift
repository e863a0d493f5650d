import Foundation
import Cedar
import Conformance
import CustosDaemon
import CustosJSON
import CustosServer
import Guardrails

/// `custos test`: runs conformance suites in-process with the daemon's own decision code.
enum TestCommand {
    static let spec = CommandSpec(
        name: "test",
        summary: "Run conformance suites (expected decisions for requests) against a policies folder.",
        usage: "custos test [--filter TEXT] [--junit FILE] [--coverage] [--min-coverage PCT] [--json] [--verbose] [PATH...]",
        options: [
            OptionSpec(name: "filter", valueName: "TEXT", help: "Run only cases whose \"suite/case\" contains TEXT."),
            OptionSpec(name: "junit", valueName: "FILE", help: "Also write JUnit XML (for CI systems) to FILE."),
            OptionSpec(name: "coverage", valueName: nil, help: "List policies and guardrail codes no case exercised."),
            OptionSpec(name: "min-coverage", valueName: "PCT", help: "Fail when coverage is below PCT percent (implies --coverage)."),
            OptionSpec(name: "json", valueName: nil, help: "Print the report as JSON instead of text."),
            OptionSpec(name: "verbose", valueName: nil, help: "Also list passing cases."),
        ],
        details: """
        PATH is a suite file or a folder searched recursively for *.json suites (default: conformance/).
        The suite format is in docs/conformance.md. No daemon is needed: each suite's policies folder
        is loaded in-process and every case is answered by the same code the daemon runs.
        Prints a diff per failing case, then "N passed, N failed". Exit status 0 only when none
        failed (and coverage is at least --min-coverage); 2 on usage errors.
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        let paths = args.positionals.isEmpty ? ["conformance"] : args.positionals
        var files: [String] = []
        for p in paths {
            let found = ConformanceRunner.suiteFiles(under: p)
            if found.isEmpty { throw UsageError(message: "\(p): no such file or folder, or no *.json suites in it") }
            files += found
        }
        var minCoverage: Double? = nil
        if let m = args.value("min-coverage") {
            guard let v = Double(m), v >= 0, v <= 100 else { throw UsageError(message: "--min-coverage expects a percentage from 0 to 100, got '\(m)'") }
            minCoverage = v
        }
        let coverage = args.flag("coverage") || minCoverage != nil
        let report = ConformanceRunner.run(files: files, filter: args.value("filter"),
                                           knownCodes: DenialCode.allCases.map(\.rawValue), prepare: SuiteHarness.prepare)
        if let path = args.value("junit") {
            do { try report.junitXML().write(toFile: path, atomically: true, encoding: .utf8) } catch {
                throw UsageError(message: "\(path): cannot write the JUnit report: \(error.localizedDescription)")
            }
        }
        let out = StdoutBuffer()
        if args.flag("json") {
            out.write(report.json(coverage: coverage).serialized + "\n")
        } else {
            out.write(report.text(verbose: args.flag("verbose")))
            if coverage { out.write(report.coverageText()) }
            out.write(report.summaryLine + "\n")
        }
        out.flush()
        if report.failed > 0 { return 1 }
        if let m = minCoverage, report.coveragePercent < m {
            IO.printError(String(format: "coverage %.1f%% is below --min-coverage %.1f%%", report.coveragePercent, m))
            return 1
        }
        return 0
    }
}

/// Builds a suite's environment: its policies folder loaded as the daemon loads it, and calls
/// answered through the daemon's own method table.
enum SuiteHarness {
    static func prepare(_ suite: Suite) throws(SuiteError) -> SuiteEnvironment {
        // Fixture entities are the author's own, part of the folder under test: they join
        // entities.json (folder trust, seen by every method), not each request's `entities`.
        var parsed: [Entity] = []
        for (i, item) in (suite.fixtures["entities"]?.arrayValue ?? []).enumerated() {
            do { parsed.append(try Entity(json: item)) } catch {
                throw SuiteError(file: suite.file, path: "$.fixtures.entities[\(i)]" + (error.path.isEmpty ? "" : (error.path.hasPrefix("[") ? "" : ".") + error.path),
                                 error.message)
            }
        }
        let fixtures = parsed
        let store = PolicyStore(directory: suite.policies) { s throws(PolicyStoreError) in
            guard !fixtures.isEmpty else { return s }
            do throws(EntityError) { return try s.addingFolderEntities(fixtures) } catch {
                throw PolicyStoreError("$.fixtures.entities: \(error.description); fixture entities must not repeat the folder's entities.json")
            }
        }
        let snapshot: PolicySnapshot
        switch store.reload() {
        case .success(let s): snapshot = s
        case .failure(let e): throw SuiteError(file: suite.file, path: "$.policies", "the policies folder \(suite.policies) does not load: \(e.message)")
        }
        let fixed: WallTime
        do {
            let ms = try CedarDatetime.parse(suite.time).millisecondsSinceEpoch
            let (q, r) = (ms / 1000, ms % 1000)
            fixed = r >= 0 ? WallTime(seconds: q, nanoseconds: Int32(r) * 1_000_000)
                           : WallTime(seconds: q - 1, nanoseconds: Int32(r + 1000) * 1_000_000)
        } catch {
            throw SuiteError(file: suite.file, path: "$.time", "\"\(suite.time)\" is not a time like 2026-06-01T12:00:00Z")
        }
        // Consent and holds live in a scratch state folder of the suite's own, so suites never
        // see each other's changes or the developer's daemon state.
        var template = Array((FileManager.default.temporaryDirectory.path + "/custos-suite-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw SuiteError(file: suite.file, "cannot create a scratch state folder") }
        let state = String(cString: made)
        var services = DaemonServices(store: store, stateDirectory: state)
        services.clock = { fixed }
        var table = MethodTable()
        for register in Daemon.methodFamilies { register(&table, services) }
        let dispatcher: Dispatcher
        // Not a socket caller: a case may send its own request entities, within the rules on
        // what they may define (FolderTrust).
        let access = AccessPolicy(entries: [.init(method: DecisionMethods.entitiesPrivilegeName, rule: .anyone)])
        do { dispatcher = try Dispatcher(methods: table, access: access) } catch {
            throw SuiteError(file: suite.file, "internal: \(error.message)")
        }
        let caller = CallContext(uid: getuid(), gid: getgid(), pid: getpid(), connectionID: 0)
        for (key, method) in [("consent", "consent.grant"), ("holds", "hold.set")] {
            for (i, params) in (suite.fixtures[key]?.arrayValue ?? []).enumerated() {
                do throws(RPCError) { _ = try dispatcher.call(method, params: Params(params), context: caller) } catch {
                    try? FileManager.default.removeItem(atPath: state)
                    throw SuiteError(file: suite.file, path: "$.fixtures.\(key)[\(i)]", "\(method) refused it: \(error.message)")
                }
            }
        }
        return SuiteEnvironment(policyNames: snapshot.policyNames, call: { method, params in
            do throws(RPCError) {
                return .result(try dispatcher.call(method, params: Params(params), context: caller))
            } catch {
                return .error(code: error.code, message: error.message)
            }
        }, finish: { try? FileManager.default.removeItem(atPath: state) })
    }
}
