import CustosJSON
import CustosServer
import Glibc
import Testing

@Test func validCallReturnsTheHandlersResult() throws {
    try withServer("valid") { s in
        let c = try RPCClient(path: s.path)
        #expect(try c.call("add", params: .object(JSONObject(["a": .int(2), "b": .int(40)]))) == .success(.int(42)))
        let raw = try c.roundTrip(#"{"jsonrpc":"2.0","method":"echo","params":["x",1.5],"id":7}"#)
        #expect(raw == (try JSON.parse(#"{"jsonrpc":"2.0","result":["x",1.5],"id":7}"#)))
    }
}

@Test(arguments: [
    (#""abc""#, #""abc""#),
    ("12", "12"),
    ("-3", "-3"),
    ("1.0", "1.0"),
    ("2.5", "2.5"),
    ("null", "null"),
])
func idsAreEchoedExactlyKeepingIntegerVersusReal(_ id: String, _ expected: String) throws {
    try withServer("ids") { s in
        let c = try RPCClient(path: s.path)
        try c.send(line: #"{"jsonrpc":"2.0","method":"echo","id":"# + id + "}")
        let line = String(decoding: try #require(try c.readLine()), as: UTF8.self)
        #expect(line == #"{"jsonrpc":"2.0","result":null,"id":"# + expected + "}")
    }
}

@Test func callerCredentialsReachTheHandler() throws {
    try withServer("cred") { s in
        let c = try RPCClient(path: s.path)
        let r = try c.call("whoami").get()
        #expect(r["uid"] == .int(Int64(getuid())))
        #expect(r["gid"] == .int(Int64(getgid())))
        #expect(r["pid"] == .int(Int64(getpid())))
        // SO_PEERGROUPS: the supplementary groups of the connecting process (this one).
        let n = getgroups(0, nil)
        var mine = [gid_t](repeating: 0, count: Int(max(n, 0)))
        _ = getgroups(n, &mine)
        let reported = (r["groups"]?.arrayValue ?? []).compactMap(\.intValue).map { gid_t($0) }
        #expect(reported.sorted() == mine.sorted())
    }
}

@Test func batchAnswersEveryRequestInOrderAndSkipsNotifications() throws {
    try withServer("batch") { s in
        let c = try RPCClient(path: s.path)
        let reply = try c.roundTrip("""
            [{"jsonrpc":"2.0","method":"add","params":{"a":1,"b":1},"id":"first"},\
            {"jsonrpc":"2.0","method":"count"},\
            {"jsonrpc":"2.0","method":"nope","id":2},\
            {"jsonrpc":"2.0","method":"add","params":{"a":2,"b":3},"id":3}]
            """)
        let items = try #require(reply?.arrayValue)
        #expect(items.count == 3)
        #expect(items[0] == (try JSON.parse(#"{"jsonrpc":"2.0","result":2,"id":"first"}"#)))
        #expect(errorCode(items[1]) == RPCError.methodNotFoundCode)
        #expect(items[1]["id"] == .int(2))
        #expect(items[2]["result"] == .int(5))
        #expect(s.probe.calls.load(ordering: .relaxed) == 1)
    }
}

@Test func batchOfInvalidElementsAnswersEachWithInvalidRequest() throws {
    try withServer("batchbad") { s in
        let c = try RPCClient(path: s.path)
        let items = try #require(try c.roundTrip("[1,\"x\",{}]")?.arrayValue)
        #expect(items.map(errorCode) == [-32600, -32600, -32600])
        #expect(items.allSatisfy { $0["id"] == .null })
    }
}

@Test func notificationsAndNotificationOnlyBatchesGetNoReply() throws {
    try withServer("notif") { s in
        let c = try RPCClient(path: s.path)
        try c.send(line: #"{"jsonrpc":"2.0","method":"count","params":{}}"#)
        try c.send(line: #"[{"jsonrpc":"2.0","method":"count"},{"jsonrpc":"2.0","method":"count"}]"#)
        // An unknown method called as a notification is not answered either.
        try c.send(line: #"{"jsonrpc":"2.0","method":"nope"}"#)
        let next = try c.roundTrip(#"{"jsonrpc":"2.0","method":"add","params":{"a":0,"b":9},"id":"after"}"#)
        #expect(next?["id"] == .string("after"))
        #expect(next?["result"] == .int(9))
        #expect(s.probe.calls.load(ordering: .relaxed) == 3)
    }
}

/// Every standard and server-defined error code the server itself produces on one connection,
/// with the id it must carry.
@Test(arguments: [
    ("{", RPCError.parseErrorCode, JSON.null),
    ("[]", RPCError.invalidRequestCode, JSON.null),
    (#""just a string""#, RPCError.invalidRequestCode, JSON.null),
    (#"{"jsonrpc":"1.0","method":"add","id":4}"#, RPCError.invalidRequestCode, JSON.int(4)),
    (#"{"method":"add","id":4}"#, RPCError.invalidRequestCode, JSON.int(4)),
    (#"{"jsonrpc":"2.0","method":1,"id":5}"#, RPCError.invalidRequestCode, JSON.int(5)),
    (#"{"jsonrpc":"2.0","method":"add","params":3,"id":6}"#, RPCError.invalidRequestCode, JSON.int(6)),
    (#"{"jsonrpc":"2.0","method":"add","id":{}}"#, RPCError.invalidRequestCode, JSON.null),
    (#"{"jsonrpc":"2.0","method":"add","id":1,"id":2}"#, RPCError.parseErrorCode, JSON.null),
    (#"{"jsonrpc":"2.0","method":"nope","id":"m"}"#, RPCError.methodNotFoundCode, JSON.string("m")),
    (#"{"jsonrpc":"2.0","method":"add","params":{"a":"x","b":2},"id":8}"#, RPCError.invalidParamsCode, JSON.int(8)),
    (#"{"jsonrpc":"2.0","method":"fail","id":9}"#, RPCError.internalErrorCode, JSON.int(9)),
    (#"{"jsonrpc":"2.0","method":"notready","id":10}"#, RPCError.notReadyCode, JSON.int(10)),
])
func errorsCarryTheirCodeAndTheCallersID(_ line: String, _ code: Int64, _ id: JSON) throws {
    try withServer("err") { s in
        let c = try RPCClient(path: s.path)
        let r = try c.roundTrip(line)
        #expect(errorCode(r) == code)
        #expect(r?["id"] == id)
        #expect(r?["jsonrpc"] == .string("2.0"))
        let message = r?["error"]?["message"]?.stringValue ?? ""
        #expect(!message.isEmpty)
    }
}

@Test(arguments: [
    (#"{"a":"x","b":2}"#, "params.a"),
    (#"{"a":1}"#, "params.b"),
    (#"[1,2]"#, "params"),
])
func invalidParamsNamesTheOffendingField(_ params: String, _ field: String) throws {
    try withServer("params") { s in
        let c = try RPCClient(path: s.path)
        let r = try c.roundTrip(#"{"jsonrpc":"2.0","method":"add","params":"# + params + #","id":1}"#)
        #expect(errorCode(r) == RPCError.invalidParamsCode)
        let message = try #require(r?["error"]?["message"]?.stringValue)
        #expect(message.contains(field + ":"))
    }
}
