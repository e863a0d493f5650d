import CustosTestSupport
import Foundation
import Glibc
import Testing

/// A throwaway PostgreSQL server from Debian's `postgresql` package (installed by `make deps`):
/// `initdb` in a scratch folder, a Unix socket only (`listen_addresses=''`), password
/// authentication (scram-sha-256) for a role `custos` whose password reaches clients through a
/// password file (`PGPASSFILE`), never through a connection string. PostgreSQL refuses to run
/// as root, so under root it runs as the `postgres` user the package creates; otherwise as the
/// current user. `postgres` is a foreground child of the test, stopped by it (`stop`, or
/// `deinit` the same way, SIGKILL only if that fails).
final class PostgresServer: @unchecked Sendable {
    let dir: String
    let data: String
    let socketDir: String
    let passFile: String
    let password = "fleet-\(UInt32.random(in: 0...UInt32.max))"
    private let bin: String
    private var process: Process?
    private let runAs: (uid: uid_t, gid: gid_t)?

    /// `postgres:///custos?host=DIR&user=custos`: no password in it.
    var uri: String { "postgresql:///custos?host=\(socketDir)&user=custos" }
    /// What a daemon (or psql) needs in its environment to authenticate.
    var environment: [String: String] { ["PGPASSFILE": passFile] }

    init() throws {
        bin = try Self.binDirectory()
        dir = makeShortTempDir()
        data = dir + "/data"
        socketDir = dir + "/s"
        passFile = dir + "/pgpass"
        if getuid() == 0 {
            guard let pw = getpwnam("postgres") else {
                throw DaemonFailure(message: "no postgres user: install Debian's postgresql package (make deps)")
            }
            runAs = (pw.pointee.pw_uid, pw.pointee.pw_gid)
        } else {
            runAs = nil
        }
        let fm = FileManager.default
        try fm.createDirectory(atPath: socketDir, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: data, withIntermediateDirectories: true)
        chmod(data, 0o700)
        let pwInit = dir + "/pwinit"
        try password.write(toFile: pwInit, atomically: true, encoding: .utf8)
        if let r = runAs {
            for p in [dir, data, socketDir, pwInit] { chown(p, r.uid, r.gid) }
        }
        try run(bin + "/initdb", ["-D", data, "-U", "custos", "--auth-local=scram-sha-256", "--auth-host=reject",
                                  "--pwfile=" + pwInit, "-E", "UTF8", "--no-sync", "--no-instructions"])
        unlink(pwInit)
        // The client side: the file libpq reads the password from, mode 0600 (libpq ignores it
        // otherwise), owned by whoever runs the daemons and psql (this process).
        try "\(socketDir):5432:*:custos:\(password)\n".write(toFile: passFile, atomically: true, encoding: .utf8)
        chmod(passFile, 0o600)
        try start()
        try psql("CREATE DATABASE custos", database: "postgres")
    }

    deinit {
        // A fast shutdown, not SIGKILL: a killed postmaster leaves its shared memory (a SysV
        // segment and /dev/shm/PostgreSQL.* files, up to 1 MiB each) until reboot, and every
        // test run used to leave a few dozen.
        if let p = process, p.isRunning {
            kill(p.processIdentifier, SIGINT)
            if !eventually({ !p.isRunning }) { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Starts the server (again, on the same data) and waits until it accepts connections.
    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: runAs == nil ? bin + "/postgres" : "/usr/bin/setpriv")
        var args = ["-D", data, "-c", "listen_addresses=", "-c", "unix_socket_directories=" + socketDir,
                    "-c", "max_connections=50", "-c", "fsync=on"]
        if let r = runAs { args = ["--reuid=\(r.uid)", "--regid=\(r.gid)", "--clear-groups", bin + "/postgres"] + args }
        p.arguments = args
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        process = p
        let ready = eventually { !p.isRunning || isReady() }
        guard p.isRunning, ready else { throw DaemonFailure(message: "postgres did not start (exit \(p.isRunning ? -1 : p.terminationStatus))") }
    }

    /// Fast shutdown (SIGINT: open connections are cut, committed data kept) and wait.
    func stop() {
        guard let p = process, p.isRunning else { return }
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
    }

    private func isReady() -> Bool {
        (try? runQuiet(bin + "/pg_isready", ["-q", "-h", socketDir, "-U", "custos", "-d", "postgres"])) == 0
    }

    /// Runs SQL with psql as the `custos` role; returns its unaligned, tuples-only output.
    @discardableResult
    func psql(_ sql: String, database: String = "custos") throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bin + "/psql")
        p.arguments = ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", socketDir, "-U", "custos", "-d", database, "-c", sql]
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, n in n }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw DaemonFailure(message: "psql failed (\(p.terminationStatus)): \(String(decoding: e, as: UTF8.self))")
        }
        return String(decoding: o, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A tool of the server's, as the server's user when running as root.
    private func run(_ tool: String, _ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: runAs == nil ? tool : "/usr/bin/setpriv")
        if let r = runAs { p.arguments = ["--reuid=\(r.uid)", "--regid=\(r.gid)", "--clear-groups", tool] + args } else { p.arguments = args }
        let err = Pipe()
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        p.standardError = err
        try p.run()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw DaemonFailure(message: "\(tool) failed (\(p.terminationStatus)): \(String(decoding: e, as: UTF8.self))")
        }
    }

    private func runQuiet(_ tool: String, _ args: [String]) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// Debian installs the server's programs in /usr/lib/postgresql/VERSION/bin (the newest).
    static func binDirectory() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap { Int($0) }.sorted()
        for v in versions.reversed() where FileManager.default.isExecutableFile(atPath: "\(root)/\(v)/bin/postgres") {
            return "\(root)/\(v)/bin"
        }
        throw DaemonFailure(message: "no PostgreSQL server in \(root): install Debian's postgresql package (make deps)")
    }
}
