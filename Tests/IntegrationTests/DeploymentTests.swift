import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Testing

/// What ships in deploy/: the systemd units under the tools systemd itself provides, the
/// Kubernetes manifests against the Kubernetes OpenAPI schemas, the static binary without the
/// Swift toolchain, and the Debian package installed into a scratch root. Needs `make deps`
/// (systemd, dpkg-dev, the validator's virtualenv) and root (mount namespaces, dpkg --root),
/// which CI and `make test` have.
@Suite(.serialized) struct DeploymentTests {
    static let deploy = daemonRepoRoot + "/deploy"

    struct Run { var status: Int32; var out: String; var err: String }

    /// Runs a program to completion.
    static func run(_ program: String, _ args: [String], environment: [String: String]? = nil) throws -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
        p.arguments = args
        if let environment { p.environment = environment }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        // Read both pipes while the program runs, so a full pipe never blocks it.
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            errBox.data = err.fileHandleForReading.readDataToEndOfFile()
            done.signal()
        }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        done.wait()
        p.waitUntilExit()
        let errData = errBox.data
        return Run(status: p.terminationStatus, out: String(decoding: o, as: UTF8.self), err: String(decoding: errData, as: UTF8.self))
    }

    static func tool(_ name: String) throws -> String {
        for dir in ["/usr/bin", "/bin", "/usr/sbin", "/sbin"] where FileManager.default.isExecutableFile(atPath: dir + "/" + name) {
            return dir + "/" + name
        }
        throw DaemonFailure(message: "\(name) is not installed: run `make deps` (it installs systemd and dpkg-dev)")
    }

    /// The Swift toolchain's root (the folder holding usr/bin/swift), hidden by the static test.
    static var toolchainRoot: String {
        let swift = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
            .map { String($0) + "/swift" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let swift else { return "/opt/swift" }
        let real = URL(fileURLWithPath: swift).resolvingSymlinksInPath()
        return real.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// Runs `command` (sh) in a private mount namespace where the toolchain's folder is an empty tmpfs.
    static func withoutToolchain(_ command: String) throws -> Run {
        try #require(getuid() == 0, "a mount namespace needs root (make test runs as root in CI)")
        let root = toolchainRoot
        return try run(try tool("unshare"), ["-m", "/bin/sh", "-c", "mount -t tmpfs tmpfs '\(root)' && " + command])
    }

    // MARK: systemd

    @Test func theShippedUnitsPassSystemdAnalyzeVerify() throws {
        try requireBinary()
        let analyze = try Self.tool("systemd-analyze")
        let root = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        // A root with systemd's own units (the targets ours name), the binary where ExecStart
        // expects it, and /bin/kill for ExecReload: verify checks every one of them.
        let units = root + "/lib/systemd/system"
        try FileManager.default.createDirectory(atPath: root + "/lib/systemd", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "/lib/systemd/system", toPath: units)
        for u in ["custos.socket", "custos.service", "custos-archive.service", "custos-archive.timer"] {
            try FileManager.default.copyItem(atPath: Self.deploy + "/systemd/" + u, toPath: units + "/" + u)
        }
        for (from, to) in [(daemonCustosBinary, "/usr/bin/custos"), ("/bin/kill", "/bin/kill")] {
            try FileManager.default.createDirectory(atPath: root + (to as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: from, toPath: root + to)
        }
        let r = try Self.run(analyze, ["verify", "--root=" + root, "custos.socket", "custos.service", "custos-archive.service", "custos-archive.timer"])
        #expect(r.status == 0, "\(r.out)\(r.err)")
        #expect(r.err.isEmpty, "warnings are findings too: \(r.err)")

        // The check is real: a unit naming a binary that is not there fails it.
        try FileManager.default.removeItem(atPath: root + "/usr/bin/custos")
        let missing = try Self.run(analyze, ["verify", "--root=" + root, "custos.service"])
        #expect(missing.status != 0 && missing.err.contains("/usr/bin/custos"), "\(missing.err)")
    }

    @Test(arguments: ["custos.service", "custos-archive.service"])
    func theShippedServicesAreExposedAtTwoOrLessWithoutUserNamespaces(_ unit: String) throws {
        let analyze = try Self.tool("systemd-analyze")
        let path = Self.deploy + "/systemd/" + unit
        let r = try Self.run(analyze, ["security", "--offline=true", "--no-pager", path])
        #expect(r.status == 0, "\(r.err)")
        let line = try #require(r.out.split(separator: "\n").first { $0.contains("Overall exposure level for \(unit):") },
                                "no overall level in: \(r.out)\(r.err)")
        let figure = try #require(line.split(separator: ":").last?.split(separator: " ").first.flatMap { Double($0) }, "\(line)")
        #expect(figure <= 2.0, "\(line)")
        // A user namespace would give every caller the overflow uid in SO_PEERCRED.
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(!text.split(separator: "\n").contains { $0.hasPrefix("PrivateUsers=") && !$0.hasSuffix("=no") })
    }

    /// A datagram socket standing in for systemd's notification socket.
    final class NotifySocket: @unchecked Sendable {
        let fd: Int32
        let path: String
        private(set) var messages: [String] = []

        init(path: String) throws {
            self.path = path
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in
                let b = Array(path.utf8)
                raw.copyBytes(from: b)
                raw[b.count] = 0
            }
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            try #require(rc == 0, "bind \(path): errno \(errno)")
        }

        deinit { close(fd) }

        /// Reads what arrived; returns every message so far.
        @discardableResult func drain() -> [String] {
            var buf = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                messages.append(String(decoding: buf[0..<n], as: UTF8.self))
            }
            return messages
        }
    }

    /// `custos serve` under systemd-socket-activate, with NOTIFY_SOCKET pointing at the test.
    /// Spawned with posix_spawn rather than Foundation's Process: systemd-socket-activate closes
    /// the descriptors it does not pass before it becomes the daemon (same pid), Foundation's
    /// watch on its child among them, which Foundation takes for an exit. The signal mask is
    /// emptied: the test runner's thread may block signals the daemon needs.
    final class Activated {
        let pid: pid_t
        private var status: Int32? = nil

        init(_ argv: [String], environment: [String: String]) throws {
            var fa = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&fa)
            defer { posix_spawn_file_actions_destroy(&fa) }
            posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0)
            let (rc, pid) = spawnWithCleanSignals(argv[0], argv, environment.map { "\($0.key)=\($0.value)" }, &fa)
            try #require(rc == 0, "posix_spawn \(argv[0]): \(rc)")
            self.pid = pid
        }

        func signal(_ sig: Int32) { kill(pid, sig) }

        /// The exit status once it exited (reaped here), nil while it runs.
        func exitStatus() -> Int32? {
            if let status { return status }
            var raw: Int32 = 0
            guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
            status = raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
            return status
        }

        deinit {
            if exitStatus() == nil {
                kill(pid, SIGKILL)
                var raw: Int32 = 0
                _ = waitpid(pid, &raw, 0)
            }
        }
    }

    static func socketActivated(_ dir: String, policies: String, notify: String) throws -> Activated {
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = notify
        return try Activated([try tool("systemd-socket-activate"), "-l", dir + "/custos.sock", "-E", "NOTIFY_SOCKET",
                              daemonCustosBinary, "serve", "--policies", policies, "--state", dir + "/state", "--log-format", "json"],
                             environment: env)
    }

    @Test func underSocketActivationTheDaemonAnswersOnTheInheritedSocketAndNotifiesReadiness() throws {
        try requireBinary()
        let dir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let notify = try NotifySocket(path: dir + "/notify")
        let p = try Self.socketActivated(dir, policies: daemonExamplePolicies, notify: notify.path)
        let sock = dir + "/custos.sock"
        // systemd-socket-activate binds the socket, then starts the daemon on the first connection.
        #expect(eventually { FileManager.default.fileExists(atPath: sock) })
        let health = try #require(eventually { () -> JSONObject? in
            guard let c = try? RPCClient(path: sock, timeout: .seconds(30)) else { return nil }
            defer { c.close() }
            return (try? c.call("health").get())?.objectValue
        })
        let revision = try #require(health["revision"]?.stringValue)
        #expect(eventually { notify.drain().contains { $0.hasPrefix("READY=1") } })
        let ready = try #require(notify.messages.first { $0.hasPrefix("READY=1") })
        #expect(ready == "READY=1\nSTATUS=serving revision \(revision)")
        #expect(notify.messages.first == ready, "nothing before READY=1 says ready: \(notify.messages)")
        // READY=1 promises the audit log is open and took the start.
        let started = try runCustosCommand(["audit", "query", "--state", dir + "/state", "--method", "daemon.start"])
        #expect(started.out.split(separator: "\n").count == 1, "\(started.out)\(started.err)")

        // A reload is announced, then readiness again.
        let c = try RPCClient(path: sock, timeout: .seconds(60))
        #expect((try c.call("policy.reload").get()).objectValue?["reloaded"] == .bool(true))
        c.close()
        #expect(eventually { notify.drain().count >= 3 })
        #expect(Array(notify.messages[1...2]) == ["RELOADING=1\nSTATUS=reloading the policies folder", ready])

        // SIGTERM: STOPPING=1, exit 0, and the socket, which is systemd's, stays.
        p.signal(SIGTERM)
        let status = eventually { p.exitStatus() }
        #expect(status == 0)
        #expect(notify.drain().last?.hasPrefix("STOPPING=1") == true, "\(notify.messages)")
        #expect(FileManager.default.fileExists(atPath: sock), "the daemon removed the service manager's socket")
    }

    @Test func aDaemonWhosePoliciesFailToLoadIsNotReadyUntilAReloadSucceeds() throws {
        try requireBinary()
        let dir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policies = dir + "/policies"
        try FileManager.default.createDirectory(atPath: policies, withIntermediateDirectories: true)
        try "permit (principal, action, resource) whn { true };".write(toFile: policies + "/10-a.cedar", atomically: true, encoding: .utf8)
        let notify = try NotifySocket(path: dir + "/notify")
        let p = try Self.socketActivated(dir, policies: policies, notify: notify.path)
        let sock = dir + "/custos.sock"
        #expect(eventually { answersHealth(sock) })
        #expect(eventually { !notify.drain().isEmpty })
        #expect(notify.messages.first?.hasPrefix("STATUS=not ready: policies not loaded") == true, "\(notify.messages)")
        #expect(!notify.messages.contains { $0.contains("READY=1") })

        try "permit (principal, action, resource) when { true };".write(toFile: policies + "/10-a.cedar", atomically: true, encoding: .utf8)
        p.signal(SIGHUP)
        #expect(eventually { notify.drain().contains { $0.hasPrefix("READY=1") } }, "\(notify.messages)")
        p.signal(SIGTERM)
        #expect(eventually { p.exitStatus() } == 0)
    }

    // MARK: Kubernetes

    static let validator = daemonRepoRoot + "/.build/deploy-venv/bin/kubernetes-validate"

    static func validate(_ files: [String], version: String) throws -> Run {
        try #require(FileManager.default.isExecutableFile(atPath: validator),
                     "\(validator) is missing: run `make deps`, which installs kubernetes-validate into a virtualenv")
        // In a network namespace of its own: the schemas it checks against are the ones it carries.
        return try run(try tool("unshare"), ["-n", validator, "--strict", "-k", version] + files)
    }

    static var manifests: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: deploy + "/kubernetes")) ?? [])
            .filter { $0.hasSuffix(".yaml") }.sorted().map { deploy + "/kubernetes/" + $0 }
    }

    @Test(arguments: ["1.30.0", "1.37.0"])
    func theKubernetesManifestsValidateOfflineAgainstTheOpenAPISchema(version: String) throws {
        try #require(getuid() == 0, "unshare -n needs root")
        let files = Self.manifests
        try #require(files.count >= 5, "deploy/kubernetes: \(files)")
        let r = try Self.validate(files, version: version)
        #expect(r.status == 0, "\(r.out)\(r.err)")
        let passed = (r.out + r.err).split(separator: "\n").filter { $0.contains(" passed for resource ") }
        for kind in ["daemonset/custos", "deployment/custos-extender", "clusterrole/custos-node-sync",
                     "clusterrolebinding/custos-node-sync", "clusterrolebinding/custos-scheduler-as-kube-scheduler",
                     "clusterrolebinding/custos-scheduler-as-volume-scheduler", "rolebinding/custos-scheduler-authentication-reader",
                     "serviceaccount/custos-extender", "configmap/custos-policies", "configmap/custos-scheduler",
                     "persistentvolumeclaim/custos-extender-state", "namespace/custos-system"] {
            #expect(passed.contains { $0.contains("resource \(kind) ") }, "\(kind) was not validated: \(r.out)\(r.err)")
        }
    }

    /// A `|` block of a ConfigMap's `data` in a manifest, without its indentation.
    static func literalBlock(_ key: String, in yaml: String) -> String? {
        var lines: [Substring] = []
        var inside = false
        for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            if inside {
                guard line.hasPrefix("    ") else { break }
                lines.append(line.dropFirst(4))
            } else if line == "  \(key): |" {
                inside = true
            }
        }
        return inside ? lines.joined(separator: "\n") : nil
    }

    /// The scheduler's pod as extender.yaml ships it: its daemon configuration starts a front
    /// door on loopback whose `kubernetes` gateway is the one the pod's kube-scheduler calls, and
    /// filtering through it uses the inventory its node-sync command filled.
    @Test func theSchedulerPodsDaemonServesTheExtenderItsKubeSchedulerCalls() throws {
        let yaml = try String(contentsOfFile: Self.deploy + "/kubernetes/extender.yaml", encoding: .utf8)
        let daemonConfig = try #require(Self.literalBlock("custos.json", in: yaml))
        let schedulerConfig = try #require(Self.literalBlock("kube-scheduler-config.yaml", in: yaml))
        #expect(daemonConfig.contains(#""tcp": "127.0.0.1:8182""#))
        #expect(schedulerConfig.contains(#"urlPrefix: "http://127.0.0.1:8182/scheduler/k8s""#))
        #expect(schedulerConfig.contains("ignorable: false"))
        #expect(schedulerConfig.contains("nodeCacheCapable: true"))
        // On a port of the kernel's choosing, the socket handed to the test's own group, and the
        // node-sync sidecar's uid (the only one allowed the inventory methods) the test's own.
        #expect(daemonConfig.contains(#""nodes.sync": {"allow_uids": [10003]}"#))
        let config = daemonConfig.replacingOccurrences(of: "127.0.0.1:8182", with: "127.0.0.1:0")
            .replacingOccurrences(of: #""group": 10002"#, with: #""group": \#(getgid())"#)
            .replacingOccurrences(of: "[10003]", with: "[\(getuid())]")
        let d = try TestDaemon(config: config)
        try fullPolicies(d)  // the example with its guardrails
        try d.start()
        let sync = try runCustosCommand(["k8s-node-sync", daemonRepoRoot + "/Tests/SchedulerExtenderTests/Fixtures/nodes-kubectl.json",
                                         "--socket", d.socket, "--once"])
        #expect(sync.status == 0, "\(sync.err)")
        let m = try d.call("metrics").get()
        let conns = try #require(m["families"]?.arrayValue?.first { $0["name"] == .string("custos_http_connections") })
        let port = try #require(conns["samples"]?.arrayValue?.compactMap { $0["labels"]?["listener"]?.stringValue }
            .first { $0.hasPrefix("tcp:127.0.0.1:") }.map { String($0.dropFirst(14)) })
        let r = try curl(["-X", "POST", "--data-binary", "@" + daemonRepoRoot + "/Tests/SchedulerExtenderTests/Fixtures/filter-names-args.json",
                          "http://127.0.0.1:\(port)/scheduler/k8s/filter"])
        #expect(r.status == 200)
        #expect(r.json?["Error"] == .string(""))
        #expect(r.json?["NodeNames"] == .array(["fra-gpu-01", "fra-gpu-02", "par-gpu-01"].map { .string($0) }))
    }

    @Test func theValidatorRejectsAManifestWithAMisspeltField() throws {
        try #require(getuid() == 0, "unshare -n needs root")
        let dir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = try String(contentsOfFile: Self.deploy + "/kubernetes/daemonset.yaml", encoding: .utf8)
        let bad = text.replacingOccurrences(of: "readOnlyRootFilesystem: true", with: "readOnlyRootFileSystem: true")
        try #require(bad != text)
        try bad.write(toFile: dir + "/daemonset.yaml", atomically: true, encoding: .utf8)
        let r = try Self.validate([dir + "/daemonset.yaml"], version: "1.37.0")
        #expect(r.status != 0)
        #expect((r.out + r.err).contains("readOnlyRootFileSystem"), "\(r.out)\(r.err)")
    }

    // MARK: the binary and the package

    @Test func theBinaryRunsWithTheSwiftToolchainOutOfReach() throws {
        try requireBinary()
        let ldd = try Self.run(try Self.tool("ldd"), [daemonCustosBinary])
        #expect(!ldd.out.contains("libswift") && !ldd.out.contains("libFoundation"),
                "the Swift runtime must be linked in (make build uses --static-swift-stdlib): \(ldd.out)")
        for lib in ["libjansson.so.4", "libssl.so.3", "libsystemd.so.0", "libmicrohttpd.so.12"] { #expect(ldd.out.contains(lib), "Debian's \(lib): \(ldd.out)") }
        let dir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Hidden toolchain: the command line, Foundation, jansson and OpenSSL (keys, signatures) all work.
        let r = try Self.withoutToolchain("""
            test -z "$(ls -A '\(Self.toolchainRoot)')" && \
            '\(daemonCustosBinary)' --version && \
            '\(daemonCustosBinary)' check --policies '\(daemonExamplePolicies)' >/dev/null && \
            '\(daemonCustosBinary)' audit generate --state '\(dir)/s' --entries 100 >/dev/null && \
            '\(daemonCustosBinary)' audit verify --state '\(dir)/s' 2>/dev/null
            """)
        #expect(r.status == 0, "\(r.out)\(r.err)")
        #expect(r.out.hasPrefix("custos "), "\(r.out)")
        #expect(r.out.contains("OK: 100 entries"), "\(r.out)")
    }

    /// `make dist` stamps the version from git (release+g<commit>, `.dirty` for uncommitted
    /// changes); a source tree without .git, as the source tarball unpacks, keeps the stamp
    /// written into BuildStamp.swift instead of losing it or failing.
    @Test func theVersionIsStampedFromGitAndATreeWithoutGitKeepsItsStamp() throws {
        let script = Self.deploy + "/stamp-version.sh"
        let inRepo = try Self.run("/bin/bash", [script, "version"])
        let version = inRepo.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(inRepo.status == 0, "\(inRepo.err)")
        #expect(version.range(of: #"^\d+\.\d+\.\d+\+g[0-9a-f]{12}(\.dirty)?$"#, options: .regularExpression) != nil, "\(version)")

        let dir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tree = dir + "/custos-src"
        let fm = FileManager.default
        for d in ["/deploy", "/Sources/CustosVersion"] { try fm.createDirectory(atPath: tree + d, withIntermediateDirectories: true) }
        try fm.copyItem(atPath: script, toPath: tree + "/deploy/stamp-version.sh")
        try fm.copyItem(atPath: daemonRepoRoot + "/Sources/CustosVersion/CustosVersion.swift", toPath: tree + "/Sources/CustosVersion/CustosVersion.swift")
        try "extension CustosVersion {\n    static let buildStamp = \"g0123456789ab\"\n}\n"
            .write(toFile: tree + "/Sources/CustosVersion/BuildStamp.swift", atomically: true, encoding: .utf8)
        // No repository above the tree either (GIT_CEILING_DIRECTORIES stops git's search).
        let env = ["PATH": "/usr/bin:/bin", "GIT_CEILING_DIRECTORIES": dir]
        let release = try #require(version.split(separator: "+").first)
        let tarball = try Self.run("/bin/bash", [tree + "/deploy/stamp-version.sh", "version"], environment: env)
        #expect(tarball.status == 0 && tarball.out == "\(release)+g0123456789ab\n", "\(tarball.out)\(tarball.err)")
        let rewrite = try Self.run("/bin/bash", [tree + "/deploy/stamp-version.sh", "write"], environment: env)
        #expect(rewrite.status == 0, "\(rewrite.err)")
        let stamped = try String(contentsOfFile: tree + "/Sources/CustosVersion/BuildStamp.swift", encoding: .utf8)
        #expect(stamped.contains(#"static let buildStamp = "g0123456789ab""#), "\(stamped)")
    }

    /// deploy/package.sh on the built binary: the .deb and the tarball, in `dir`.
    static func package(into dir: String) throws -> (deb: String, tarball: String) {
        let r = try run("/bin/bash", [deploy + "/package.sh", daemonCustosBinary, "0.1.0+test", dir, "gzip"])
        try #require(r.status == 0, "\(r.out)\(r.err)")
        let lines = r.out.split(separator: "\n").map(String.init)
        let deb = try #require(lines.first { $0.hasSuffix(".deb") })
        let tarball = try #require(lines.first { $0.hasSuffix(".tar.gz") })
        return (deb, tarball)
    }

    /// `apt install ./custos.deb` brings every shared library the binary needs: each ELF NEEDED
    /// entry resolves to a file of a Debian package that deploy/debian/control.in depends on
    /// (a library added to the build without its package in Depends fails here).
    @Test func everyLibraryTheBinaryNeedsComesFromAPackageTheDebianPackageDependsOn() throws {
        try requireBinary()
        let needed = try Self.run(try Self.tool("readelf"), ["-d", daemonCustosBinary]).out
            .split(separator: "\n").filter { $0.contains("(NEEDED)") }
            .compactMap { line -> String? in
                guard let open = line.firstIndex(of: "["), let close = line.lastIndex(of: "]") else { return nil }
                return String(line[line.index(after: open)..<close])
            }
        try #require(needed.contains("libjansson.so.4"), "readelf -d lists the needed libraries: \(needed)")
        let ldd = try Self.run(try Self.tool("ldd"), [daemonCustosBinary]).out.split(separator: "\n").map(String.init)
        let control = try String(contentsOfFile: Self.deploy + "/debian/control.in", encoding: .utf8)
        let dependsLine = try #require(control.split(separator: "\n").first { $0.hasPrefix("Depends:") })
        let depends = Set(dependsLine.dropFirst("Depends:".count).split(separator: ",").compactMap {
            $0.split(separator: " ").first.map(String.init)
        })
        let dpkg = try Self.tool("dpkg")
        for soname in needed {
            // "\tlibx.so.1 => /lib/x86_64-linux-gnu/libx.so.1 (0x...)", or the loader's "\t/lib64/ld-linux-x86-64.so.2 (0x...)".
            let line = try #require(ldd.first { $0.contains(soname) }, "ldd resolves \(soname)")
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            let path = String(words.firstIndex(of: "=>").map { words[$0 + 1] } ?? words[0])
            let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            // Debian 12 is usr-merged, and dpkg knows each file under the path its package ships.
            var candidates = [path, real]
            for c in [path, real] { candidates.append(c.hasPrefix("/usr/") ? String(c.dropFirst(4)) : "/usr" + c) }
            var owner: String?
            for c in candidates {
                let r = try Self.run(dpkg, ["-S", c])
                if r.status == 0, let first = r.out.split(separator: ":").first { owner = String(first); break }
            }
            let package = try #require(owner, "no Debian package owns \(soname) (\(path))")
            #expect(depends.contains(package), "\(soname) comes from \(package), which Depends does not list: \(dependsLine)")
        }
    }

    @Test func theDebianPackageInstallsIntoAScratchRootAndItsBinaryRuns() throws {
        try requireBinary()
        try #require(getuid() == 0, "dpkg --root needs root")
        let dir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (deb, tarball) = try Self.package(into: dir + "/out")
        let fields = try Self.run(try Self.tool("dpkg-deb"), ["-f", deb, "Package", "Version", "Depends"])
        #expect(fields.out.contains("Package: custos") && fields.out.contains("Version: 0.1.0+test"), "\(fields.out)")
        for dep in ["libjansson4", "libssl3", "libsystemd0", "libmicrohttpd12"] { #expect(fields.out.contains(dep), "Depends: \(fields.out)") }

        // An empty dpkg database in a scratch root; the maintainer scripts run outside a chroot
        // (the root has no shell) and touch only that root ($DPKG_ROOT).
        let root = dir + "/root"
        for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log"] {
            try FileManager.default.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true)
        }
        for f in ["var/lib/dpkg/status", "var/lib/dpkg/available"] { _ = FileManager.default.createFile(atPath: root + "/" + f, contents: nil) }
        let dpkg = try Self.tool("dpkg")
        let install = try Self.run(dpkg, ["--root=" + root, "--force-script-chrootless", "--force-depends", "-i", deb])
        #expect(install.status == 0, "\(install.out)\(install.err)")
        let status = try Self.run(dpkg, ["--root=" + root, "-s", "custos"])
        #expect(status.out.contains("Status: install ok installed"), "\(status.out)\(status.err)")
        for f in ["usr/bin/custos", "lib/systemd/system/custos.socket", "lib/systemd/system/custos.service",
                  "lib/systemd/system/custos-archive.service", "lib/systemd/system/custos-archive.timer",
                  "usr/lib/sysusers.d/custos.conf", "etc/custos/custos.json", "usr/share/doc/custos/operations.md",
                  "usr/share/doc/custos/examples/policies/entities.json"] {
            #expect(FileManager.default.fileExists(atPath: root + "/" + f), "\(f) not installed")
        }
        var st = stat()
        #expect(stat(root + "/etc/custos/policies", &st) == 0 && st.st_mode & 0o777 == 0o750)
        let conffiles = try Self.run(dpkg, ["--root=" + root, "-s", "custos"])
        #expect(conffiles.out.contains("/etc/custos/custos.json"), "custos.json is a conffile: \(conffiles.out)")

        // The installed binary runs, with the toolchain out of reach.
        let version = try Self.withoutToolchain("'\(root)/usr/bin/custos' --version")
        #expect(version.status == 0 && version.out.hasPrefix("custos "), "\(version.out)\(version.err)")
        // The binary tarball holds the same tree.
        let list = try Self.run("/bin/tar", ["-tzf", tarball])
        #expect(list.out.contains("/usr/bin/custos") && list.out.contains("/lib/systemd/system/custos.socket"), "\(list.out)")
    }
}
