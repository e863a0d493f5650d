import Foundation
import Cedar
import Conformance
import CustosDaemon
import CustosJSON
import CustosServer
import Guardrails
import Synchronization

/// `custos test`: runs conformance suites in-process with the daemon's own decision code.
enum TestCommand {
    static let spec = CommandSpec(
        name: "test",
        summary: "Run conformance suites (expected decisions for requests) against a policies folder.",
        usage: "custos test [--policies DIR|BUNDLE] [--filter TEXT] [--junit FILE] [--coverage] [--min-coverage PCT] [--json] [--verbose] [PATH...]",
        options: [
            OptionSpec(name: "policies", valueName: "DIR|BUNDLE", help: "Run every suite against this candidate policies folder or bundle instead of the suite's own \"policies\" (impact assessment)."),
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
        With --policies, every suite is answered by that folder or bundle instead (a bundle's files
        are checked against its manifest; its signatures are not judged: use custos bundle verify),
        so the cases a candidate change flips fail (docs/change-control.md).
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
        let candidate = args.value("policies")
        if let c = candidate, !FileManager.default.fileExists(atPath: c) {
            throw UsageError(message: "--policies \(c): no such folder or bundle")
        }
        let report = ConformanceRunner.run(files: files, filter: args.value("filter"),
                                           knownCodes: DenialCode.allCases.map(\.rawValue)) { (suite: Suite) throws(SuiteError) -> SuiteEnvironment in
            try SuiteHarness.prepare(suite, policies: candidate)
        }
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
/// answered through the daemon's own method table, each at the time the suite gives it.
enum SuiteHarness {
    /// `policies` replaces the suite's own folder (`custos test --policies`): a folder, or a
    /// bundle file loaded through the daemon's bundle path.
    ///
    /// `consentJournal` starts the suite's consent store as a copy of that journal (a daemon's
    /// `STATE/guardrails/consent.journal`, for `custos diff --audit`) instead of empty.
    static func prepare(_ suite: Suite, policies: String? = nil, consentJournal: String? = nil) throws(SuiteError) -> SuiteEnvironment {
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
        let store = PolicyStore(source: policies.map(PolicySource.candidate) ?? .folder(suite.policies)) { s throws(PolicyStoreError) in
            guard !fixtures.isEmpty else { return s }
            do throws(EntityError) { return try s.addingFolderEntities(fixtures) } catch {
                throw PolicyStoreError("$.fixtures.entities: \(error.description); fixture entities must not repeat the folder's entities.json")
            }
        }
        let snapshot: PolicySnapshot
        switch store.reload() {
        case .success(let s): snapshot = s
        case .failure(let e):
            if let policies {
                throw SuiteError(file: suite.file, "the candidate \(policies) (--policies) does not load: \(e.message)")
            }
            throw SuiteError(file: suite.file, path: "$.policies", "the policies folder \(suite.policies) (this suite's \"policies\", relative to the suite file) does not load: \(e.message)")
        }
        // Every time is read before anything runs, so a typo is a suite error with its path.
        let suiteTime = try time(suite.time, suite: suite, path: "$.time")
        var times: [String: WallTime] = [suite.time: suiteTime]
        for c in suite.cases { for step in c.steps where times[step.at] == nil {
            times[step.at] = try time(step.at, suite: suite, path: step.atPath)
        } }
        // Consent and holds live in a scratch state folder of the suite's own, so suites never
        // see each other's changes or the developer's daemon state.
        var template = Array((FileManager.default.temporaryDirectory.path + "/custos-suite-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw SuiteError(file: suite.file, "cannot create a scratch state folder") }
        let state = String(cString: made)
        // The decision time of the call being made. Only this process sets it: the daemon's
        // socket callers have no way to (DaemonServices.clock).
        let clock = SuiteClock(suiteTime)
        let guardrailState = GuardrailState.forStateDirectory(state)
        if let journal = consentJournal, FileManager.default.fileExists(atPath: journal) {
            do {
                try FileManager.default.createDirectory(atPath: guardrailState.directory!, withIntermediateDirectories: true)
                try FileManager.default.copyItem(atPath: journal, toPath: guardrailState.directory! + "/" + ConsentStore.fileName)
            } catch {
                try? FileManager.default.removeItem(atPath: state)
                throw SuiteError(file: suite.file, "cannot copy the consent journal \(journal): \(error.localizedDescription)")
            }
        }
        let stateStore: SuiteStateStore
        do throws(ConsentStoreError) { stateStore = try SuiteStateStore(directory: guardrailState.directory!) } catch {
            throw SuiteError(file: suite.file, "cannot open the scratch consent store: \(error.description)")
        }
        guardrailState.use(stateStore)
        var services = DaemonServices(store: store, stateDirectory: state)
        services.clock = { clock.now }
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
        func call(_ method: String, _ params: JSON, at: WallTime) throws(RPCError) -> JSON {
            clock.now = at
            return try dispatcher.call(method, params: Params(params), context: caller)
        }
        do {
            try applyFixtures(suite, suiteTime: suiteTime) { method, params, at throws(RPCError) in _ = try call(method, params, at: at) }
        } catch {
            try? FileManager.default.removeItem(atPath: state)
            throw error
        }
        var env = SuiteEnvironment(policyNames: snapshot.policyNames, call: { method, params, at in
            do throws(RPCError) {
                return .result(try call(method, params, at: times[at] ?? suiteTime))
            } catch {
                return .error(code: error.code, message: error.message)
            }
        }, finish: { try? FileManager.default.removeItem(atPath: state) })
        env.staleState = { stateStore.stale = $0 }
        return env
    }

    /// Records the consent and hold fixtures, in order: each grant at its `granted_at` (else
    /// the suite's time), then its withdrawal at `withdrawn_at`; each hold at `set_at` (else
    /// the suite's time), then its release at `released_at` with `release_reason`. Each call
    /// runs with the clock at that time, so the daemon's rules hold as they would have then.
    static func applyFixtures(_ suite: Suite, suiteTime: WallTime,
                              _ call: (String, JSON, WallTime) throws(RPCError) -> Void) throws(SuiteError) {
        func run(_ method: String, _ params: JSONObject, at: WallTime, path: String) throws(SuiteError) {
            do throws(RPCError) { try call(method, .object(params), at) } catch {
                throw SuiteError(file: suite.file, path: path, "\(method) refused it: \(error.message)")
            }
        }
        func entries(_ key: String) throws(SuiteError) -> [JSONObject] {
            guard let v = suite.fixtures[key] else { return [] }
            guard case .array(let items) = v else { throw SuiteError(file: suite.file, path: "$.fixtures.\(key)", "expected an array of objects") }
            var out: [JSONObject] = []
            for (i, item) in items.enumerated() {
                guard case .object(let o) = item else { throw SuiteError(file: suite.file, path: "$.fixtures.\(key)[\(i)]", "expected an object") }
                out.append(o)
            }
            return out
        }
        for (i, entry) in try entries("consent").enumerated() {
            let path = "$.fixtures.consent[\(i)]"
            var grant = entry
            grant.members.removeAll { $0.key == "withdrawn_at" }
            // Recorded when it was given: a back-dated grant is never "in the future" of the suite.
            var at = suiteTime
            if case .string(let g)? = entry["granted_at"], let t = try? time(g, suite: suite, path: path + ".granted_at") { at = t }
            try run("consent.grant", grant, at: at, path: path)
            if let w = entry["withdrawn_at"] {
                guard case .string(let text) = w else { throw SuiteError(file: suite.file, path: path + ".withdrawn_at", "expected a time such as \"2026-03-01T00:00:00Z\"") }
                var withdraw = JSONObject()
                for m in entry.members where m.key == "dataset" || m.key == "cohort" || m.key == "purpose" { withdraw.members.append(m) }
                try run("consent.withdraw", withdraw, at: try time(text, suite: suite, path: path + ".withdrawn_at"), path: path + ".withdrawn_at")
            }
        }
        for (i, entry) in try entries("holds").enumerated() {
            let path = "$.fixtures.holds[\(i)]"
            var set = entry
            set.members.removeAll { ["set_at", "released_at", "release_reason"].contains($0.key) }
            var at = suiteTime
            if let s = entry["set_at"] {
                guard case .string(let text) = s else { throw SuiteError(file: suite.file, path: path + ".set_at", "expected a time such as \"2026-01-15T09:00:00Z\"") }
                at = try time(text, suite: suite, path: path + ".set_at")
            }
            try run("hold.set", set, at: at, path: path)
            switch (entry["released_at"], entry["release_reason"]) {
            case (nil, nil): continue
            case (nil, _?): throw SuiteError(file: suite.file, path: path + ".release_reason", "give released_at too: when the hold was released")
            case (_?, nil): throw SuiteError(file: suite.file, path: path + ".release_reason", "a release needs its reason (it is journaled, as hold.release requires)")
            case (let r?, let reason?):
                guard case .string(let text) = r else { throw SuiteError(file: suite.file, path: path + ".released_at", "expected a time such as \"2026-03-01T00:00:00Z\"") }
                var release = JSONObject()
                for m in entry.members where m.key == "dataset" || m.key == "matter" { release.members.append(m) }
                release.append("reason", reason)
                try run("hold.release", release, at: try time(text, suite: suite, path: path + ".released_at"), path: path + ".released_at")
            }
        }
    }

    /// A suite time: RFC 3339 (`2026-06-01T12:00:00Z`, an offset is allowed) or a date
    /// (`2026-06-01`, midnight UTC), as Cedar's `datetime` reads it.
    static func time(_ text: String, suite: Suite, path: String) throws(SuiteError) -> WallTime {
        do {
            let ms = try CedarDatetime.parse(text).millisecondsSinceEpoch
            let (q, r) = (ms / 1000, ms % 1000)
            return r >= 0 ? WallTime(seconds: q, nanoseconds: Int32(r) * 1_000_000)
                          : WallTime(seconds: q - 1, nanoseconds: Int32(r + 1000) * 1_000_000)
        } catch {
            throw SuiteError(file: suite.file, path: path, "\"\(text)\" is not a time like 2026-06-01T12:00:00Z (or a date, 2026-06-01)")
        }
    }
}

/// The decision time of the call a suite is making, read by the daemon's methods as their clock.
final class SuiteClock: Sendable {
    private let time: Mutex<WallTime>
    init(_ t: WallTime) { time = Mutex(t) }
    var now: WallTime {
        get { time.withLock { $0 } }
        set { time.withLock { $0 = newValue } }
    }
}

/// The suite's consent store: the embedded journal of its scratch folder, which a step marked
/// `stale_state` sees as a daemon sees a shared store whose copy is older than `max_staleness`
/// (docs/fleet.md): decisions that read consent or holds deny `state.stale`, changes are
/// refused, reports too.
final class SuiteStateStore: StateStore, Sendable {
    private let journal: ConsentStore
    private let staleFlag = Mutex(false)
    static let reason = "the daemon's copy of the shared state store is older than max_staleness (the suite's stale_state)"

    init(directory: String) throws(ConsentStoreError) { journal = try ConsentStore(directory: directory) }

    var stale: Bool {
        get { staleFlag.withLock { $0 } }
        set { staleFlag.withLock { $0 = newValue } }
    }

    var snapshot: ConsentSnapshot {
        var s = journal.snapshot
        if stale { s.unavailable = Self.reason }
        return s
    }

    func history(_ id: String?) -> [JournalChange] { journal.history(id) }

    var isShared: Bool { false }

    func commit(actor: String, now: CedarDatetime, audit: StateAuditHook,
                _ make: (ConsentSnapshot) throws(ConsentStoreError) -> JournalChange.Op) throws(ConsentStoreError) -> ConsentSnapshot {
        if stale { throw .unavailable("the change is refused: \(Self.reason)") }
        return try journal.commit(actor: actor, now: now, audit: audit, make)
    }
}
