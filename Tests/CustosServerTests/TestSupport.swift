import CustosJSON
import CustosServer
import Foundation
import Glibc
import Synchronization

/// Short, unique socket paths (Unix socket paths are limited to 107 bytes).
func tempSocketPath(_ tag: String) -> String {
    struct Counter { static let next = Atomic<Int>(0) }
    let n = Counter.next.add(1, ordering: .relaxed).newValue
    return "/tmp/custos-test-\(getpid())-\(n)-\(tag).sock"
}

/// Counts calls so tests can prove a handler did or did not run.
final class Probe: Sendable {
    let calls = Atomic<Int>(0)
    let refused = Mutex<[(String, CallContext)]>([])
    let started = DispatchSemaphore(value: 0)
    /// `hold` returns once the test signals this.
    let release = DispatchSemaphore(value: 0)
    let holdReturned = Atomic<Bool>(false)
}

/// The handler table every server test uses.
func testMethods(_ probe: Probe) -> MethodTable {
    var t = MethodTable()
    t.register("add") { p, _ throws(RPCError) in
        let a = try p.int("a")
        let b = try p.int("b")
        let (sum, overflow) = a.addingReportingOverflow(b)
        if overflow { throw .invalidParams(field: "params.b", "a + b overflows a 64-bit integer") }
        return .int(sum)
    }
    t.register("echo") { p, _ throws(RPCError) in p.json ?? .null }
    t.register("count") { _, _ throws(RPCError) in
        probe.calls.add(1, ordering: .relaxed)
        return .null
    }
    t.register("whoami") { _, c throws(RPCError) in
        .object(JSONObject(["uid": .int(Int64(c.uid)), "gid": .int(Int64(c.gid)), "pid": .int(Int64(c.pid)),
                            "connection": .int(Int64(c.connectionID)),
                            "groups": .array(c.groups.map { .int(Int64($0)) })]))
    }
    // Carries `n` requests in one call, as decide.batch does, and counts for them in a batch.
    t.register("multi", weight: { p in Int((try? p.int("n")) ?? 1) }) { p, _ throws(RPCError) in
        probe.calls.add(1, ordering: .relaxed)
        return .int(try p.int("n"))
    }
    t.register("fail") { _, _ throws(RPCError) in throw .internalError("the test handler always fails") }
    t.register("notready") { _, _ throws(RPCError) in throw .notReady("policies are not loaded yet") }
    t.register("secret") { _, _ throws(RPCError) in
        probe.calls.add(1, ordering: .relaxed)
        return .string("the secret")
    }
    t.register("hold") { _, _ throws(RPCError) in
        probe.started.signal()
        probe.release.wait()
        probe.holdReturned.store(true, ordering: .sequentiallyConsistent)
        return .string("held")
    }
    return t
}

struct TestServer {
    let server: Server
    let path: String
    let probe: Probe
}

/// Starts an in-process server on a fresh socket, runs `body`, and always stops it.
func withServer<R>(_ tag: String, access: AccessPolicy = AccessPolicy(),
                   configure: (inout ServerConfiguration) -> Void = { _ in },
                   _ body: (TestServer) throws -> R) throws -> R {
    let probe = Probe()
    let path = tempSocketPath(tag)
    var config = ServerConfiguration(socketPath: path)
    configure(&config)
    let dispatcher = try Dispatcher(methods: testMethods(probe), access: access) { method, ctx in
        probe.refused.withLock { $0.append((method, ctx)) }
    }
    let server = Server(configuration: config, dispatcher: dispatcher)
    try server.start()
    defer { server.stop() }
    return try body(TestServer(server: server, path: path, probe: probe))
}

extension RPCClient {
    func readJSON() throws -> JSON? {
        guard let line = try readLine() else { return nil }
        return try JSON.parse(line)
    }

    func roundTrip(_ line: String) throws -> JSON? {
        try send(line: line)
        return try readJSON()
    }
}

func errorCode(_ response: JSON?) -> Int64? { response?["error"]?["code"]?.intValue }

/// Runs `count` bodies on their own threads at once and waits for all of them.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for i in 0..<count {
        group.enter()
        let t = Thread { body(i); group.leave() }
        t.start()
    }
    group.wait()
}

/// Binds a socket at `path` and closes it without unlinking: what a crashed daemon leaves behind.
func leaveStaleSocket(at path: String) {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    precondition(rc == 0, "test setup: bind failed")
    close(fd)
}

func fileMode(_ path: String) -> mode_t? {
    var st = stat()
    guard lstat(path, &st) == 0 else { return nil }
    return st.st_mode & 0o7777
}

func fileExists(_ path: String) -> Bool {
    var st = stat()
    return lstat(path, &st) == 0
}
