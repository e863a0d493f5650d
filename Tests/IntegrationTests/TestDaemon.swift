import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Testing

/// The repository root, derived from this file's path (Tests/IntegrationTests/TestDaemon.swift).
let daemonRepoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path
let daemonCustosBinary = daemonRepoRoot + "/.build/release/custos"
let daemonExamplePolicies = daemonRepoRoot + "/policies"

/// Writing to a connection the daemon closed must fail with EPIPE, not kill the test runner.
let daemonIgnoreSIGPIPE: Void = { signal(SIGPIPE, SIG_IGN); return () }()

func requireBinary() throws {
    _ = daemonIgnoreSIGPIPE
    try #require(FileManager.default.isExecutableFile(atPath: daemonCustosBinary),
                 "\(daemonCustosBinary) is missing: run `swift build -c release` (or `make test`) first")
}

/// A short private folder (socket paths are limited to 107 bytes).
func makeShortTempDir() -> String { Scratch.directory("cxit") }

/// Example requests shipped in policies/requests, by file name.
func exampleRequest(_ name: String) throws -> JSON {
    let data = try #require(FileManager.default.contents(atPath: daemonExamplePolicies + "/requests/" + name),
                            "policies/requests/\(name) is missing")
    return try JSON.parse([UInt8](data))
}

/// A `custos serve` process on a temporary socket and a copy of the example policies.
final class TestDaemon: @unchecked Sendable {
    let dir: String
    let policies: String
    let socket: String
    let process = Process()
    private let errPipe = Pipe()
    private let outPipe = Pipe()

    /// `config` is the JSON text of a --config file; `files` replace or add policy files.
    /// The example's schema is copied only with `schema`: most tests add policies and entities
    /// it does not declare, which the schema would refuse (SchemaFolderDaemonTests use it).
    /// `environment` adds variables to the daemon's (PGPASSFILE for a shared state store).
    init(config: String? = nil, files: [String: String] = [:], copyExample: Bool = true,
         schema: Bool = false, socket: String? = nil, extraArguments: [String] = [],
         source: [String]? = nil, state: String? = nil, environment: [String: String] = [:]) throws {
        try requireBinary()
        // `state` reuses another daemon's state folder (a restart).
        dir = state ?? makeShortTempDir()
        policies = dir + "/policies"
        self.socket = socket ?? dir + "/custos.sock"
        let fm = FileManager.default
        try fm.createDirectory(atPath: policies, withIntermediateDirectories: true)
        if copyExample {
            for name in try fm.contentsOfDirectory(atPath: daemonExamplePolicies) {
                var isDir: ObjCBool = false
                let src = daemonExamplePolicies + "/" + name
                if fm.fileExists(atPath: src, isDirectory: &isDir), !isDir.boolValue, schema || !name.hasPrefix("schema.cedarschema") {
                    try fm.copyItem(atPath: src, toPath: policies + "/" + name)
                }
            }
        }
        for (name, text) in files { try text.write(toFile: policies + "/" + name, atomically: true, encoding: .utf8) }
        // `source` replaces `--policies DIR` (e.g. `--bundles DIR --trust FILE`).
        var args = ["serve"] + (source ?? ["--policies", policies]) + ["--socket", self.socket, "--state", dir]
        if let config {
            try config.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
            args += ["--config", dir + "/config.json"]
        }
        process.executableURL = URL(fileURLWithPath: daemonCustosBinary)
        process.arguments = args + extraArguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        process.standardError = errPipe
        process.standardOutput = outPipe
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Starts the daemon and waits until its socket answers `health`.
    @discardableResult
    func start() throws -> TestDaemon {
        try process.run()
        var exited = false
        let answered = eventually {
            exited = !process.isRunning
            return exited || answersHealth(socket)
        }
        if exited {
            throw DaemonFailure(message: "custos serve exited with \(process.terminationStatus): \(stderrText())")
        }
        if !answered { throw DaemonFailure(message: "custos serve did not answer on \(socket): \(stderrText())") }
        return self
    }

    func client() throws -> RPCClient { try RPCClient(path: socket, timeout: .seconds(60)) }

    func call(_ method: String, _ params: JSON? = nil) throws -> Result<JSON, RPCError> {
        let c = try client()
        defer { c.close() }
        return try c.call(method, params: params)
    }

    func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Waits for the process to exit and returns its status, or nil if it did not.
    func waitForExit() -> Int32? {
        eventually { !process.isRunning } ? process.terminationStatus : nil
    }

    /// What the daemon printed on stdout; read once it has exited.
    func stdoutText() -> String {
        if process.isRunning { return "(still running)" }
        return String(decoding: outPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    func stderrText() -> String {
        if process.isRunning { return "(still running)" }
        return String(decoding: errPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: policies + "/" + name, atomically: true, encoding: .utf8)
    }
}

/// Whether a daemon on `socket` answers `health` (whatever it says); for polling with `eventually`.
func answersHealth(_ socket: String, ready: Bool = false) -> Bool {
    guard let c = try? RPCClient(path: socket, timeout: .seconds(30)) else { return false }
    defer { c.close() }
    guard let reply = try? c.call("health") else { return false }
    guard ready else { return true }
    guard case .success(let h) = reply else { return false }
    return h.objectValue?["ready"] == .bool(true)
}

struct DaemonFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Runs the custos binary to completion, its standard input read from the file `stdin` when
/// given: exit status, stdout, stderr.
func runCustosCommand(_ args: [String], stdin: String? = nil) throws -> (status: Int32, out: String, err: String) {
    try requireBinary()
    let p = Process()
    p.executableURL = URL(fileURLWithPath: daemonCustosBinary)
    p.arguments = args
    if let stdin {
        guard let input = FileHandle(forReadingAtPath: stdin) else { throw DaemonFailure(message: "cannot read \(stdin)") }
        p.standardInput = input
    }
    return try collectOutput(p)
}

/// Starts `p` (its executable, arguments and environment set) and runs it to completion:
/// exit status, stdout, stderr. The outputs are read one after the other, so a child must not
/// fill a pipe's buffer on stderr before it closes stdout; the commands tests run print little.
func collectOutput(_ p: Process) throws -> (status: Int32, out: String, err: String) {
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// One reply line as id + outcome.
func decodeReply(_ line: [UInt8]) throws -> (id: RequestID, outcome: Result<JSON, RPCError>) {
    try RPCResponse.decode(try JSON.parse(line))
}

func requestLine(_ method: String, _ params: JSON?, id: RequestID?) -> [UInt8] {
    var w = JSONWriter()
    RPCRequest(method: method, params: Params(params), id: id).write(into: &w)
    w.byte(0x0A)
    return w.bytes
}

/// Writes all bytes on a background thread (so a test can read replies while a large burst is
/// still being sent); `wait()` returns whether every byte went out.
final class BackgroundWriter: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var ok = false

    init(fd: Int32, bytes: [UInt8]) {
        Thread.detachNewThread { [self] in
            var off = 0
            bytes.withUnsafeBytes { p in
                while off < p.count {
                    let n = Glibc.write(fd, p.baseAddress! + off, p.count - off)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { return }
                    off += n
                }
            }
            ok = off == bytes.count
            done.signal()
        }
    }

    @discardableResult func wait() -> Bool { done.wait(); return ok }
}

func decisionOf(_ r: Result<JSON, RPCError>) -> String? {
    if case .success(let j) = r { return j.objectValue?["decision"]?.stringValue }
    return nil
}

func errorCodeOf(_ r: Result<JSON, RPCError>) -> Int64? {
    if case .failure(let e) = r { return e.code }
    return nil
}
