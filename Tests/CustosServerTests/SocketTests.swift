import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

@Test func staleSocketFromADeadProcessIsReplaced() throws {
    let path = tempSocketPath("stale")
    leaveStaleSocket(at: path)
    #expect(fileExists(path))
    let server = Server(configuration: ServerConfiguration(socketPath: path), dispatcher: try Dispatcher(methods: testMethods(Probe())))
    try server.start()
    defer { server.stop() }
    #expect(try RPCClient(path: path).call("add", params: .object(JSONObject(["a": .int(1), "b": .int(1)]))) == .success(.int(2)))
}

@Test func secondServerOnALiveSocketFailsAndTheFirstKeepsServing() throws {
    try withServer("live") { s in
        let second = Server(configuration: ServerConfiguration(socketPath: s.path), dispatcher: try Dispatcher(methods: MethodTable()))
        #expect(throws: SocketError.alreadyServing(path: s.path)) { try second.start() }
        #expect(try RPCClient(path: s.path).call("add", params: .object(JSONObject(["a": .int(1), "b": .int(1)]))) == .success(.int(2)))
    }
}

@Test func aRegularFileAtTheSocketPathIsNotReplaced() throws {
    let path = tempSocketPath("file")
    #expect(FileManager.default.createFile(atPath: path, contents: Data("keep".utf8)))
    defer { unlink(path) }
    let server = Server(configuration: ServerConfiguration(socketPath: path), dispatcher: try Dispatcher(methods: MethodTable()))
    #expect(throws: SocketError.notASocket(path: path)) { try server.start() }
    #expect(FileManager.default.contents(atPath: path) == Data("keep".utf8))
}

@Test func socketPathLongerThan107BytesIsRejectedWithItsLength() throws {
    let path = "/tmp/" + String(repeating: "x", count: 103)
    let server = Server(configuration: ServerConfiguration(socketPath: path), dispatcher: try Dispatcher(methods: MethodTable()))
    #expect(throws: SocketError.pathTooLong(path: path, bytes: 108)) { try server.start() }
    #expect(SocketError.pathTooLong(path: path, bytes: 108).description.contains("107"))
}

@Test(arguments: [nil, mode_t(0o600), mode_t(0o666)])
func socketFileGetsTheConfiguredModeDefaulting0660(_ mode: mode_t?) throws {
    try withServer("mode", configure: { if let mode { $0.socketMode = mode } }) { s throws in
        #expect(fileMode(s.path) == (mode ?? 0o660))
    }
}

@Test func gracefulStopFinishesInFlightRequestsAndRemovesTheSocket() throws {
    let probe = Probe()
    let path = tempSocketPath("stop")
    var config = ServerConfiguration(socketPath: path)
    config.drainTimeout = .seconds(3600)  // the test, not a timer, decides when the handler ends
    let server = Server(configuration: config, dispatcher: try Dispatcher(methods: testMethods(probe)))
    try server.start()
    let c = try RPCClient(path: path)
    try c.send(line: #"{"jsonrpc":"2.0","method":"hold","id":1}"#)
    try c.send(line: #"{"jsonrpc":"2.0","method":"add","params":{"a":1,"b":1},"id":2}"#)
    probe.started.wait()
    let stopped = Atomic<Bool>(false)
    let stopper = Thread {
        server.stop()
        stopped.store(true, ordering: .sequentiallyConsistent)
    }
    stopper.start()
    // Stopping has begun (the socket file is gone), and it waits for the handler still running.
    #expect(eventually { !fileExists(path) })
    #expect(throws: ClientError.self) { try RPCClient(path: path) }
    let stoppedEarly = stopped.load(ordering: .sequentiallyConsistent)
    #expect(!stoppedEarly)
    probe.release.signal()
    #expect(eventually { stopped.load(ordering: .sequentiallyConsistent) })
    let handlerFinished = probe.holdReturned.load(ordering: .sequentiallyConsistent)
    #expect(handlerFinished)
    #expect(try c.readJSON()?["result"] == .string("held"))
    #expect(try c.readJSON()?["result"] == .int(2))
    #expect(try c.readLine() == nil)
    #expect(server.activeConnections == 0)
}

@Test func connectionsBeyondTheLimitGetOneOverloadedErrorAndAreClosed() throws {
    try withServer("max", configure: { $0.maxConnections = 2 }) { s in
        let a = try RPCClient(path: s.path)
        let b = try RPCClient(path: s.path)
        // Calls prove both are admitted before the third arrives.
        _ = try a.call("whoami")
        _ = try b.call("whoami")
        let c = try RPCClient(path: s.path)
        let r = try c.readJSON()
        #expect(errorCode(r) == RPCError.overloadedCode)
        #expect(r?["id"] == .null)
        #expect(try c.readLine() == nil)
        // Closing one makes room again.
        a.close()
        #expect(eventually {
            guard case .success? = try? RPCClient(path: s.path).call("whoami") else { return false }
            return true
        })
    }
}

@Test func signalWatcherDeliversSIGHUPToTheHandler() throws {
    let got = DispatchSemaphore(value: 0)
    let watcher = SignalWatcher(onTerminate: { _ in }, onReload: { got.signal() })
    defer { watcher.cancel() }
    kill(getpid(), SIGHUP)
    #expect(got.wait(timeout: .now() + 5) == .success)
}
