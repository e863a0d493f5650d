import CustosJSON
import CustosTestSupport
import Foundation
import Glibc
import Testing

/// Every ```sh and ```json example of README.md and docs/*.md, run against the example folder
/// with the real binary (docs/contributing.md, "Examples in the documentation"): an example
/// that names a missing file, fails, or answers differently from what its `-> ...` says fails
/// `make test`. Examples marked `not-run: REASON` are listed, with their reasons.
@Suite struct DocExamplesTests {
    static let runnable = DocExample.all.filter { $0.notRun == nil }
    static let notRun = DocExample.all.filter { $0.notRun != nil }

    @Test func theDocumentationHasExamplesToRun() {
        #expect(Self.runnable.filter { $0.language == "sh" }.count >= 8)
        #expect(Self.runnable.filter { $0.language == "json" }.count >= 15)
    }

    /// The list of what is not run, printed on every run so it stays visible; each says why.
    @Test func everyExampleThatIsNotRunSaysWhy() {
        print("doc examples not run (\(Self.notRun.count) of \(DocExample.all.count)):")
        for ex in Self.notRun {
            print("  \(ex): \(ex.notRun ?? "")")
            #expect(!(ex.notRun ?? "").isEmpty, "\(ex) is marked not-run without a reason")
        }
    }

    @Test(arguments: runnable)
    func theExampleRunsAsItsTextSays(_ ex: DocExample) throws {
        switch ex.language {
        case "sh": try Self.runShell(ex)
        default: try Self.runJSON(ex)
        }
    }

    // MARK: sh

    /// In a scratch copy of policies/, conformance/ and bench/, with `.build/release/custos`
    /// (and `custos` on PATH) the built binary and a daemon serving the copy on
    /// state/custos.sock, as `make run` leaves it: `bash -e -o pipefail`, exit 0, and every
    /// `# -> TEXT` in the output.
    static func runShell(_ ex: DocExample) throws {
        let scratch = try DocScratch()
        let run = try scratch.shell(ex.body)
        #expect(run.finished, "\(ex) did not finish:\n\(run.output)")
        #expect(run.status == 0, "\(ex) exited \(run.status):\n\(ex.body)\n---\n\(run.output)")
        for e in ex.expectations {
            #expect(DocExample.output(run.output, matches: e), "\(ex): the output does not show \"\(e)\":\n\(run.output)")
        }
    }

    // MARK: json

    /// Valid JSON (one value, or one value per line); `call=METHOD` sends it to the scratch's
    /// daemon as METHOD's params and needs a result; `suite` runs it with `custos test` from
    /// the scratch's conformance/; `file=PATH` puts it at PATH and needs `custos check` to pass.
    static func runJSON(_ ex: DocExample) throws {
        do { _ = try JSON.parse(ex.body) } catch {
            for (i, line) in ex.body.split(separator: "\n").enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                do { _ = try JSON.parse(String(line)) } catch {
                    Issue.record("\(ex) is neither one JSON value nor JSON lines (line \(i + 1)): \(error)")
                    return
                }
            }
        }
        let options = ex.options
        let known: Set<String> = ["call", "suite", "file"]
        for key in options.keys where !known.contains(key) { Issue.record("\(ex): unknown doc-test option \"\(key)\"") }
        guard !options.isEmpty else { return }
        let scratch = try DocScratch()
        let output: String
        if let method = options["call"] {
            let params = scratch.root + "/.params.json"
            try ex.body.write(toFile: params, atomically: true, encoding: .utf8)
            let r = try runCustosCommand(["call", method, "-", "--socket", scratch.socket], stdin: params)
            #expect(r.status == 0, "\(ex): custos call \(method) exited \(r.status): \(r.err)\(r.out)")
            output = r.out
        } else if options["suite"] != nil {
            let file = scratch.root + "/conformance/doc-example.json"
            try ex.body.write(toFile: file, atomically: true, encoding: .utf8)
            let r = try runCustosCommand(["test", file])
            #expect(r.status == 0, "\(ex): custos test failed:\n\(r.out)\(r.err)")
            output = r.out
        } else {
            let path = try #require(options["file"], "\(ex): file= needs a path")
            try ex.body.write(toFile: scratch.root + "/" + path, atomically: true, encoding: .utf8)
            let r = try runCustosCommand(["check", "--policies", scratch.root + "/policies"])
            #expect(r.status == 0, "\(ex): custos check failed with it at \(path):\n\(r.err)")
            output = r.out
        }
        for e in ex.expectations {
            #expect(DocExample.output(output, matches: e), "\(ex): the answer does not show \"\(e)\":\n\(output)")
        }
    }

    // MARK: the harness itself

    @Test func fencesAreFoundIndentedOrNotWithTheirMarkersAndExpectations() {
        let text = """
        Intro.

        ```sh
        custos call health                  # -> "ready":true
        echo done
        # -> done
        ```

        1. A step:

           ```json call=decide -> "decision":"allow"
           {"a": 1}
           ```

        ```sh not-run: needs a Slurm cluster
        srun x
        ```

        ```yaml
        not: extracted
        ```
        """
        let found = DocExample.parse(text, file: "x.md")
        #expect(found.map(\.line) == [3, 11, 15])
        #expect(found[0].expectations == [#""ready":true"#, "done"])
        #expect(found[0].notRun == nil)
        #expect(found[1].body == #"{"a": 1}"#)
        #expect(found[1].options == ["call": "decide"])
        #expect(found[1].expectations == [#""decision":"allow""#])
        #expect(found[2].notRun == "needs a Slurm cluster")
    }

    @Test(arguments: [
        (#"{"nodes":1000,"revision":"sha256:cc22","changed":1000}"#, #"{"nodes":1000,"revision":"sha256:...","changed":1000}"#, true),
        ("exit 1", "exit 1", true),
        ("exit 0", "exit 1", false),
        ("b then a", "a...b", false),
    ])
    func expectationsMatchWithEllipsisAsAWildcard(_ output: String, _ pattern: String, _ matches: Bool) {
        #expect(DocExample.output(output, matches: pattern) == matches)
    }
}

/// A scratch copy of the example files with a daemon serving them, as `make run` leaves the
/// repository: `policies/`, `conformance/`, `bench/`, `.build/release/custos` (a link to the
/// built binary) and `custos serve` on `state/custos.sock`.
final class DocScratch {
    let root: String
    var socket: String { root + "/state/custos.sock" }
    private let daemon = Process()

    init() throws {
        try requireBinary()
        root = makeShortTempDir()
        let fm = FileManager.default
        for dir in ["policies", "conformance", "bench"] {
            try fm.copyItem(atPath: Binary.repository.path + "/" + dir, toPath: root + "/" + dir)
        }
        try fm.createDirectory(atPath: root + "/.build/release", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: root + "/.build/release/custos", withDestinationPath: daemonCustosBinary)
        daemon.executableURL = URL(fileURLWithPath: daemonCustosBinary)
        daemon.arguments = ["serve", "--policies", "policies", "--state", "state"]
        daemon.currentDirectoryURL = URL(fileURLWithPath: root)
        let log = root + ".daemon.log"
        fm.createFile(atPath: log, contents: nil)
        daemon.standardOutput = FileHandle(forWritingAtPath: log)
        daemon.standardError = FileHandle(forWritingAtPath: log)
        try daemon.run()
        let socket = self.socket
        guard eventually({ !daemon.isRunning || answersHealth(socket, ready: true) }), daemon.isRunning else {
            throw DaemonFailure(message: "the doc-test daemon did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
    }

    deinit {
        if daemon.isRunning {
            kill(daemon.processIdentifier, SIGTERM)
            if !eventually({ !daemon.isRunning }) { kill(daemon.processIdentifier, SIGKILL) }
            daemon.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: root)
        try? FileManager.default.removeItem(atPath: root + ".daemon.log")
        try? FileManager.default.removeItem(atPath: root + ".out")
    }

    /// Runs `script` with bash (-e, -o pipefail) in the scratch folder; stdout and stderr
    /// together, in the order written.
    func shell(_ script: String) throws -> (finished: Bool, status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-e", "-o", "pipefail", "-c", script]
        p.currentDirectoryURL = URL(fileURLWithPath: root)
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = root + "/.build/release:" + (env["PATH"] ?? "/usr/bin:/bin")
        env["CUSTOS_SOCKET"] = nil
        p.environment = env
        let out = root + ".out"
        FileManager.default.createFile(atPath: out, contents: nil)
        let handle = FileHandle(forWritingAtPath: out)
        p.standardOutput = handle
        p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let finished = eventually { !p.isRunning }
        if !finished { p.terminate() }
        p.waitUntilExit()
        try? handle?.close()
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        return (finished, p.terminationStatus, text)
    }
}
