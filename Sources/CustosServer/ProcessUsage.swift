import Glibc

/// What a process has cost the machine so far, read from /proc: the context switches of all
/// its threads (voluntary and not, summed over /proc/PID/task/*/status) and its CPU time
/// (utime + stime from /proc/PID/stat). Threads that exited between two readings take their
/// switches with them, so the difference undercounts if the process ends threads meanwhile
/// (the daemon's threads live as long as it does).
public struct ProcessUsage: Sendable, Equatable {
    public var voluntarySwitches: UInt64 = 0
    public var involuntarySwitches: UInt64 = 0
    /// utime + stime, in clock ticks (see `ticksPerSecond`).
    public var cpuTicks: UInt64 = 0

    public init(voluntarySwitches: UInt64 = 0, involuntarySwitches: UInt64 = 0, cpuTicks: UInt64 = 0) {
        self.voluntarySwitches = voluntarySwitches
        self.involuntarySwitches = involuntarySwitches
        self.cpuTicks = cpuTicks
    }

    public static var ticksPerSecond: Double { Double(max(1, sysconf(Int32(_SC_CLK_TCK)))) }

    /// nil when the process is gone or /proc cannot be read (another machine, no permission).
    public static func read(pid: Int32) -> ProcessUsage? {
        guard let stat = readSmallFile("/proc/\(pid)/stat") else { return nil }
        // Fields after the command, which is in parentheses and may hold spaces: state is
        // field 3, utime field 14, stime field 15.
        guard let close = stat.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = stat[(close + 1)...].split(separator: UInt8(ascii: " "))
        guard fields.count > 12, let utime = number(fields[11]), let stime = number(fields[12]) else { return nil }
        var usage = ProcessUsage(cpuTicks: utime &+ stime)
        guard let dir = opendir("/proc/\(pid)/task") else { return nil }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard let first = name.utf8.first, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9"),
                  let status = readSmallFile("/proc/\(pid)/task/\(name)/status") else { continue }
            for line in status.split(separator: 0x0A) {
                if let v = value(line, "voluntary_ctxt_switches:") { usage.voluntarySwitches &+= v }
                else if let v = value(line, "nonvoluntary_ctxt_switches:") { usage.involuntarySwitches &+= v }
            }
        }
        return usage
    }

    private static func value(_ line: ArraySlice<UInt8>, _ key: String) -> UInt64? {
        let k = Array(key.utf8)
        guard line.starts(with: k) else { return nil }
        return number(line.dropFirst(k.count).drop(while: { $0 == 0x20 || $0 == 0x09 }))
    }

    private static func number(_ s: ArraySlice<UInt8>) -> UInt64? {
        var n: UInt64 = 0
        var any = false
        for b in s {
            guard b >= 0x30, b <= 0x39 else { break }
            let (m, o1) = n.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(b - 0x30))
            if o1 || o2 { return nil }
            n = a
            any = true
        }
        return any ? n : nil
    }

    private static func readSmallFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return nil }
            if n == 0 { return out }
            out.append(contentsOf: buf[0..<n])
            if out.count > 1 << 20 { return out }
        }
    }
}

/// What the server process spent per request during one benchmark run.
public struct ServerUsage: Sendable {
    public var pid: Int32
    public var switchesPerRequest: Double
    public var voluntaryPerRequest: Double
    public var cpuMicrosPerRequest: Double

    public init(pid: Int32, before: ProcessUsage, after: ProcessUsage, requests: Int) {
        self.pid = pid
        let n = Double(max(1, requests))
        let v = Double(after.voluntarySwitches &- before.voluntarySwitches)
        let i = Double(after.involuntarySwitches &- before.involuntarySwitches)
        switchesPerRequest = (v + i) / n
        voluntaryPerRequest = v / n
        cpuMicrosPerRequest = Double(after.cpuTicks &- before.cpuTicks) / ProcessUsage.ticksPerSecond * 1e6 / n
    }
}
