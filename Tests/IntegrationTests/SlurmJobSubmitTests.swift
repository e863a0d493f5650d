import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Testing

/// What the Slurm test needs from Debian (`make deps` installs it).
enum SlurmTools {
    static let binaries = ["/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged", "/usr/bin/sbatch", "/usr/bin/scontrol",
                           "/usr/bin/sinfo", "/usr/bin/lua5.1"]
    static let luaModules = ["/usr/lib/x86_64-linux-gnu/lua/5.1/socket/unix.so", "/usr/lib/x86_64-linux-gnu/lua/5.1/cjson.so"]
    static var missing: [String] { (binaries + luaModules).filter { !FileManager.default.fileExists(atPath: $0) } }
    static var available: Bool { missing.isEmpty }
    static let skipReason: Comment = "Slurm is not installed (missing: \(SlurmTools.missing.joined(separator: ", "))): run make deps, which installs slurmctld, slurmd, munge, lua5.1, lua-socket and lua-cjson from Debian"
}

/// A one-host Slurm cluster in a scratch folder: munged, slurmctld and two slurmd (nodes
/// eu-gpu-01 in eu-central-1 and us-gpu-01 in us-west-2, as node features), loopback only,
/// the shipped contrib/slurm/job_submit.lua, everything started and stopped by the test.
final class SlurmCluster: @unchecked Sendable {
    let dir: String
    let conf: String
    let user: String
    var children: [Child] = []

    /// Free TCP ports on the loopback (bound then released: the daemons bind them next).
    static func freePorts(_ n: Int) -> [Int] {
        var fds: [Int32] = [], ports: [Int] = []
        for _ in 0..<n {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_addr.s_addr = inet_addr("127.0.0.1")
            a.sin_port = 0
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
            _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
            ports.append(Int(UInt16(bigEndian: a.sin_port)))
            fds.append(fd)
        }
        for fd in fds { close(fd) }
        return ports
    }

    var env: [String: String] { ["SLURM_CONF": conf] }

    init(custosSocket: String) throws {
        dir = makeShortTempDir()
        conf = dir + "/slurm.conf"
        user = String(validatingCString: getpwuid(getuid())!.pointee.pw_name) ?? "root"
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count)
        let hostname = String(validatingCString: host)?.split(separator: ".").first.map(String.init) ?? "localhost"
        let fm = FileManager.default
        for sub in ["munge", "ctld", "spool/eu-gpu-01", "spool/us-gpu-01", "log", "jobs"] {
            try fm.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true)
        }
        chmod(dir + "/munge", 0o700)
        var key = [UInt8](repeating: 0, count: 1024)
        for i in key.indices { key[i] = UInt8.random(in: 0...255) }
        fm.createFile(atPath: dir + "/munge/munge.key", contents: Data(key), attributes: [.posixPermissions: 0o600])
        let p = Self.freePorts(4)
        let config = """
        ClusterName=custostest
        SlurmctldHost=\(hostname)(127.0.0.1)
        SlurmctldPort=\(p[0])
        SlurmdPort=\(p[1])
        AuthType=auth/munge
        AuthInfo=socket=\(dir)/munge/munge.sock
        CredType=cred/munge
        SlurmUser=\(user)
        SlurmdUser=\(user)
        StateSaveLocation=\(dir)/ctld
        SlurmdSpoolDir=\(dir)/spool/%n
        SlurmctldPidFile=\(dir)/ctld/slurmctld.pid
        SlurmdPidFile=\(dir)/spool/slurmd-%n.pid
        SlurmctldLogFile=\(dir)/log/slurmctld.log
        SlurmdLogFile=\(dir)/log/slurmd-%n.log
        ProctrackType=proctrack/pgid
        TaskPlugin=task/none
        SchedulerType=sched/builtin
        SelectType=select/cons_tres
        SelectTypeParameters=CR_Core
        ReturnToService=2
        MpiDefault=none
        SwitchType=switch/none
        JobCompType=jobcomp/none
        AccountingStorageType=accounting_storage/none
        MailProg=/bin/true
        JobSubmitPlugins=lua
        NodeName=eu-gpu-01 NodeHostname=\(hostname) NodeAddr=127.0.0.1 Port=\(p[2]) CPUs=1 RealMemory=100 Features=region=eu-central-1
        NodeName=us-gpu-01 NodeHostname=\(hostname) NodeAddr=127.0.0.1 Port=\(p[3]) CPUs=1 RealMemory=100 Features=region=us-west-2
        PartitionName=gpu Nodes=eu-gpu-01,us-gpu-01 Default=YES State=UP MaxTime=INFINITE
        PartitionName=us Nodes=us-gpu-01 State=UP MaxTime=INFINITE

        """
        try config.write(toFile: conf, atomically: true, encoding: .utf8)
        try fm.copyItem(atPath: daemonRepoRoot + "/contrib/slurm/job_submit.lua", toPath: dir + "/job_submit.lua")

        children.append(try Child("/usr/sbin/munged", ["-F", "-f", "--key-file=\(dir)/munge/munge.key", "--socket=\(dir)/munge/munge.sock",
                                                       "--pid-file=\(dir)/munge/munged.pid", "--log-file=\(dir)/munge/munged.log",
                                                       "--seed-file=\(dir)/munge/munged.seed"], log: dir + "/log/munged.out"))
        guard eventually({ fm.fileExists(atPath: dir + "/munge/munge.sock") }) else { throw failure("munged did not start") }
        children.append(try Child("/usr/sbin/slurmctld", ["-D", "-i"], environment: env.merging(["CUSTOS_SOCKET": custosSocket]) { $1 },
                                  log: dir + "/log/slurmctld.out"))
        for node in ["eu-gpu-01", "us-gpu-01"] {
            children.append(try Child("/usr/sbin/slurmd", ["-D", "-N", node], environment: env, log: dir + "/log/slurmd-\(node).out"))
        }
        guard eventually({ (try? self.nodeStates()) == ["eu-gpu-01": "idle", "us-gpu-01": "idle"] }) else {
            throw failure("the nodes did not come up idle: \((try? nodeStates()) ?? [:])")
        }
    }

    deinit {
        for c in children.reversed() { c.stop() }
        try? FileManager.default.removeItem(atPath: dir)
    }

    func failure(_ what: String) -> DaemonFailure {
        var logs = ""
        for f in ["slurmctld.log", "slurmctld.out", "munged.out", "slurmd-eu-gpu-01.out"] {
            logs += "\n--- \(f):\n" + ((try? String(contentsOfFile: dir + "/log/" + f, encoding: .utf8)).map { String($0.suffix(2000)) } ?? "")
        }
        return DaemonFailure(message: what + logs)
    }

    /// Runs a Slurm client command: exit status, stdout, stderr.
    func run(_ tool: String, _ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        p.currentDirectoryURL = URL(fileURLWithPath: dir + "/jobs")
        return try collectOutput(p)
    }

    /// Node name -> state as sinfo prints it (`idle`, `alloc`, `drain`, `drng`, ...).
    func nodeStates() throws -> [String: String] {
        let r = try run("/usr/bin/sinfo", ["-h", "-N", "-p", "gpu", "-o", "%N %t"])
        var out: [String: String] = [:]
        for line in r.out.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2 { out[String(parts[0])] = String(parts[1]) }
        }
        return out
    }

    /// `Key=Value` fields of `scontrol show job ID`.
    func job(_ id: String) throws -> [String: String] {
        let r = try run("/usr/bin/scontrol", ["show", "job", id])
        var out: [String: String] = [:]
        for token in r.out.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            guard let eq = token.firstIndex(of: "=") else { continue }
            out[String(token[..<eq])] = String(token[token.index(after: eq)...])
        }
        return out
    }

    /// sbatch as the test's user; the job prints the node it ran on.
    func sbatch(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
        try run("/usr/bin/sbatch", ["--parsable"] + args + ["-o", dir + "/jobs/out-%j", "--wrap", "echo ran-on=$SLURMD_NODENAME"])
    }
}

@Suite(.serialized) struct SlurmJobSubmitTests {
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/bin/lua5.1"),
                   "lua5.1 is not installed: run make deps"))
    func theScriptsPureFunctionsPassTheirLuaTests() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/lua5.1")
        p.arguments = [daemonRepoRoot + "/contrib/slurm/test_job_submit.lua"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(String(decoding: e, as: UTF8.self))")
    }

    /// The daemon serves the example policies with the test's user added as a data scientist of
    /// ONC-301 (sbatch submits as that user, so job_submit.lua asks about `User::"<name>"`).
    static func daemon(socket: String, user: String) throws -> TestDaemon {
        let d = try TestDaemon(copyExample: false, socket: socket)
        try fullPolicies(d)
        let path = d.policies + "/entities.json"
        var text = try String(contentsOfFile: path, encoding: .utf8)
        let open = try #require(text.firstIndex(of: "["))
        text.insert(contentsOf: #"{"uid": {"type": "User", "id": "\#(user)"}, "attrs": {"studies": [{"__entity": {"type": "Study", "id": "ONC-301"}}]}, "parents": [{"type": "Role", "id": "data_scientist"}]},"#,
                    at: text.index(after: open))
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return try d.start()
    }

    @Test(.enabled(if: SlurmTools.available, SlurmTools.skipReason))
    func jobSubmitPlacesAllowedJobsOnEUNodesRefusesOthersAtSbatchDrainsNothingAndFailsClosed() throws {
        let sockDir = makeShortTempDir()
        defer { try? FileManager.default.removeItem(atPath: sockDir) }
        let socket = sockDir + "/c.sock"
        let user = String(validatingCString: getpwuid(getuid())!.pointee.pw_name) ?? "root"
        var daemon = try Self.daemon(socket: socket, user: user)
        let cluster = try SlurmCluster(custosSocket: socket)
        let sidecar = try Child(daemonCustosBinary, ["slurm-node-sync", "--command", "sinfo --json", "--every", "0.5",
                                                     "--socket", socket, "--check-interval", "0.2"],
                                environment: cluster.env, log: sockDir + "/sidecar.log")
        defer { sidecar.stop() }
        #expect(eventually { nodesStatus(daemon)?.count == 2 }, "\((try? String(contentsOfFile: sockDir + "/sidecar.log", encoding: .utf8)) ?? "")")

        // Allowed: EU clinical data for primary research, in the job's own study. It runs on
        // the EU node; the US node is excluded.
        let eu = ["-A", "ONC-301", "--comment", "purpose=primary_research datasets=onc301-de-clinical"]
        var ids: [String] = []
        for _ in 0..<3 {
            let r = try cluster.sbatch(eu)
            #expect(r.status == 0, "\(r.err)")
            ids.append(r.out.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        for id in ids {
            let job = try #require(eventually { () -> [String: String]? in
                let j = try? cluster.job(id)
                return j?["JobState"] == "COMPLETED" ? j : nil
            }, "job \(id): \((try? cluster.job(id)) ?? [:])")
            #expect(job["NodeList"] == "eu-gpu-01")
            #expect(job["ExcNodeList"] == "us-gpu-01")
            #expect(job["AdminComment"]?.hasPrefix("custos") == true)
            let out = try String(contentsOfFile: cluster.dir + "/jobs/out-\(id)", encoding: .utf8)
            #expect(out.contains("ran-on=eu-gpu-01"))
        }

        // Refused at sbatch, with the guardrail code in what sbatch prints.
        let noPurpose = try cluster.sbatch(["-A", "ONC-301", "--comment", "datasets=onc301-de-clinical"])
        #expect(noPurpose.status != 0)
        #expect(noPurpose.err.contains("purpose.missing"), "\(noPurpose.err)")
        let usOnly = try cluster.sbatch(eu + ["-p", "us"])
        #expect(usOnly.status != 0)
        #expect(usOnly.err.contains("residency.cross_border"), "\(usOnly.err)")
        let askedUS = try cluster.sbatch(eu + ["-w", "us-gpu-01"])
        #expect(askedUS.status != 0)
        #expect(askedUS.err.contains("us-gpu-01: residency.cross_border"), "\(askedUS.err)")
        let otherStudy = try cluster.sbatch(["-A", "CARD-201", "--comment", "purpose=primary_research datasets=card201-us-ehr"])
        #expect(otherStudy.status != 0)
        #expect(otherStudy.err.contains("isolation.not_member"), "\(otherStudy.err)")
        // A job that touches no data has an empty dataset list (not {}) and is placed anywhere.
        let noData = try cluster.sbatch(["-A", "ONC-301", "--hold"])
        #expect(noData.status == 0, "\(noData.err)")
        _ = try cluster.run("/usr/bin/scancel", [noData.out.trimmingCharacters(in: .whitespacesAndNewlines)])

        // No refusal took a node out of service.
        let states = try cluster.nodeStates()
        #expect(states.count == 2 && states.values.allSatisfy { !$0.hasPrefix("drain") && !$0.hasPrefix("drng") && $0 != "down" }, "\(states)")

        // Custos stopped: every submission fails closed, with why.
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit() != nil)
        let down = try cluster.sbatch(eu)
        #expect(down.status != 0)
        #expect(down.err.contains("Custos could not decide where it may run"), "\(down.err)")
        #expect(try cluster.nodeStates() == ["eu-gpu-01": "idle", "us-gpu-01": "idle"])

        // Custos back: the sidecar refills the inventory, and jobs are placed again.
        daemon = try Self.daemon(socket: socket, user: user)
        #expect(eventually { nodesStatus(daemon)?.count == 2 })
        let back = try cluster.sbatch(eu)
        #expect(back.status == 0, "\(back.err)")
        let job = try #require(eventually { () -> [String: String]? in
            let j = try? cluster.job(back.out.trimmingCharacters(in: .whitespacesAndNewlines))
            return j?["JobState"] == "COMPLETED" ? j : nil
        })
        #expect(job["NodeList"] == "eu-gpu-01")
    }
}
