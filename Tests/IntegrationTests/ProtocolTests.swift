import CustosJSON
import CustosServer
import CustosTestSupport
import Foundation
import Glibc
import Testing

/// Every integration test starts its own `custos serve`; they run one at a time so the load
/// tests get the machine to themselves.
@Suite(.serialized) struct DaemonIntegrationTests {}

extension DaemonIntegrationTests {
    @Test func theExampleRequestsAreAllowedOrDeniedAsTheirNamesSayOverTheSocket() throws {
        let d = try TestDaemon().start()
        let c = try d.client()
        let allow = try c.call("decide", params: exampleRequest("allow-scientist-reads-own-study.json"))
        let deny = try c.call("decide", params: exampleRequest("deny-scientist-reads-other-study.json"))
        let forbid = try c.call("decide", params: exampleRequest("deny-lead-exports-identified.json"))
        #expect(decisionOf(allow) == "allow")
        #expect(decisionOf(deny) == "deny")
        #expect(decisionOf(forbid) == "deny")
        let a = try allow.get().objectValue!, f = try forbid.get().objectValue!
        #expect(a["reasons"] == .array([.string("scientist-analyses-own-study")]))
        #expect(f["reasons"] == .array([.string("no-export-of-identified-data")]))
        #expect(a["policy_revision"]?.stringValue?.hasPrefix("sha256:") == true)
        let id1 = try #require(a["decision_id"]?.stringValue), id2 = try #require(f["decision_id"]?.stringValue)
        #expect(id1 < id2, "decision ids are time-ordered")
    }

    @Test func decideBatchAndJSONRPCBatchArraysAnswerInOrder() throws {
        let d = try TestDaemon().start()
        let c = try d.client()
        let reqs: [JSON] = [try exampleRequest("deny-scientist-reads-other-study.json"),
                            try exampleRequest("allow-scientist-reads-own-study.json"),
                            try exampleRequest("deny-lead-exports-identified.json")]
        let r = try c.call("decide.batch", params: .object(JSONObject(["requests": .array(reqs)]))).get()
        let decisions = r.objectValue?["results"]?.arrayValue?.map { $0.objectValue?["decision"]?.stringValue ?? "?" }
        #expect(decisions == ["deny", "allow", "deny"])

        // A JSON-RPC batch: two requests and a notification get exactly two replies, in order.
        var w = JSONWriter()
        w.byte(UInt8(ascii: "["))
        RPCRequest(method: "decide", params: Params(reqs[1]), id: .string("a")).write(into: &w)
        w.byte(UInt8(ascii: ","))
        RPCRequest(method: "decide", params: Params(reqs[0]), id: nil).write(into: &w)
        w.byte(UInt8(ascii: ","))
        RPCRequest(method: "health", params: Params(nil), id: .int(2)).write(into: &w)
        w.raw("]")
        try c.send(line: w.bytes)
        let line = try #require(try c.readLine())
        let arr = try #require(try JSON.parse(line).arrayValue)
        #expect(arr.count == 2)
        #expect(try RPCResponse.decode(arr[0]).id == .string("a"))
        #expect(decisionOf(try RPCResponse.decode(arr[0]).outcome) == "allow")
        #expect(try RPCResponse.decode(arr[1]).id == .int(2))
    }

    @Test func aNotificationIsDecidedButNotAnswered() throws {
        let d = try TestDaemon().start()
        let c = try d.client()
        try c.send(line: requestLine("decide", try exampleRequest("allow-scientist-reads-own-study.json"), id: nil))
        try c.send(line: requestLine("health", nil, id: .int(7)))
        let first = try decodeReply(try #require(try c.readLine()))
        #expect(first.id == .int(7), "the first reply answers the request after the notification")
    }

    @Test func everyErrorCodeComesBackWithItsDocumentedMeaning() throws {
        let d = try TestDaemon(config: #"{"limits":{"batch_limit":2},"access":{"methods":{"policy.reload":"anyone"}}}"#).start()
        let c = try d.client()
        // -32700: not JSON; the connection stays usable.
        try c.send(line: "{not json")
        var r = try decodeReply(try #require(try c.readLine()))
        #expect(errorCodeOf(r.outcome) == RPCError.parseErrorCode && r.id == .null)
        // -32600: not a valid request.
        try c.send(line: #"{"jsonrpc":"1.0","method":"health","id":1}"#)
        r = try decodeReply(try #require(try c.readLine()))
        #expect(errorCodeOf(r.outcome) == RPCError.invalidRequestCode && r.id == .int(1))
        // -32601: unknown method.
        #expect(errorCodeOf(try c.call("decide.everything")) == RPCError.methodNotFoundCode)
        // -32602: the message names the field.
        let bad = try c.call("decide", params: try JSON.parse(#"{"principal":{"type":"User","id":"alice"},"action":{"type":"Action","id":"read"},"resource":{"type":"Dataset"}}"#))
        #expect(errorCodeOf(bad) == RPCError.invalidParamsCode)
        if case .failure(let e) = bad { #expect(e.message.contains("params.resource"), "\(e.message)") }
        // -32002: a decide.batch over the configured limit.
        let three = JSON.object(JSONObject(["requests": .array(Array(repeating: try exampleRequest("allow-scientist-reads-own-study.json"), count: 3))]))
        #expect(errorCodeOf(try c.call("decide.batch", params: three)) == RPCError.overloadedCode)
        // -32004: a reload that fails keeps the old policies (see the reload tests).
        try d.write("zz-broken.cedar", "permit(principal, action, resource")
        #expect(errorCodeOf(try c.call("policy.reload")) == -32004)
        // -32603: no request reaches it (handlers turn bad input into the codes above); damage
        // to the state folder under a running daemon does. Here the checkpoint file is replaced
        // by a directory, so audit.checkpoint cannot read it; the daemon answers and lives.
        let checkpoints = d.dir + "/audit/checkpoints.log"
        try FileManager.default.removeItem(atPath: checkpoints)
        try FileManager.default.createDirectory(atPath: checkpoints, withIntermediateDirectories: false)
        let damaged = try c.call("audit.checkpoint")
        #expect(errorCodeOf(damaged) == RPCError.internalErrorCode)
        if case .failure(let e) = damaged { #expect(e.message.contains("audit checkpoints could not be read"), "\(e.message)") }
        #expect(try c.call("health").get().objectValue?["live"] == .bool(true))
    }

    @Test func notReadyIsAnsweredWhileThePoliciesFolderDoesNotLoad() throws {
        let d = try TestDaemon(files: ["zz-broken.cedar": "permit("]).start()
        let c = try d.client()
        let r = try c.call("decide", params: try exampleRequest("allow-scientist-reads-own-study.json"))
        #expect(errorCodeOf(r) == RPCError.notReadyCode)
        let h = try c.call("health").get().objectValue!
        #expect(h["live"] == .bool(true) && h["ready"] == .bool(false))
        #expect(h["reasons"]?.arrayValue?.first?.stringValue?.contains("zz-broken.cedar") == true)
        try FileManager.default.removeItem(atPath: d.policies + "/zz-broken.cedar")
        d.signal(SIGHUP)
        let ready = eventually { (try? c.call("health").get().objectValue?["ready"]) == .bool(true) }
        #expect(ready, "SIGHUP after fixing the folder makes the daemon ready")
        #expect(decisionOf(try c.call("decide", params: try exampleRequest("allow-scientist-reads-own-study.json"))) == "allow")
    }

    @Test func aGarbageLineIsAnsweredAndTheNextRequestOnTheSameConnectionWorks() throws {
        let d = try TestDaemon().start()
        let c = try d.client()
        try c.send(line: [0xFF, 0x00, 0x7B, 0x22, 0xC3])
        let g = try decodeReply(try #require(try c.readLine()))
        #expect(errorCodeOf(g.outcome) == RPCError.parseErrorCode)
        #expect(decisionOf(try c.call("decide", params: try exampleRequest("allow-scientist-reads-own-study.json"))) == "allow")
    }

    @Test func anOversizeLineGetsAnInvalidRequestErrorAndTheConnectionIsClosed() throws {
        let d = try TestDaemon().start()
        let c = try d.client()
        var big = [UInt8](repeating: UInt8(ascii: "a"), count: (1 << 20) + 16)
        big.append(0x0A)
        let writer = BackgroundWriter(fd: c.fileDescriptor, bytes: big)
        let r = try decodeReply(try #require(try c.readLine()))
        #expect(errorCodeOf(r.outcome) == RPCError.invalidRequestCode)
        if case .failure(let e) = r.outcome { #expect(e.message.contains("longer than")) }
        #expect(try c.readLine() == nil, "the daemon closes the connection after an oversize line")
        writer.wait()
        #expect((try? d.call("health").get()) != nil, "the daemon keeps serving other connections")
    }

    @Test func tenThousandRandomByteLinesThenAValidRequestIsAnsweredAndTheDaemonLives() throws {
        let d = try TestDaemon().start()
        let c = try d.client()
        var rng = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(10_000 * 100)
        for _ in 0..<10_000 {
            let n = Int.random(in: 1...160, using: &rng)
            for _ in 0..<n {
                var b = UInt8.random(in: 0...255, using: &rng)
                if b == 0x0A { b = 0x0B }
                bytes.append(b)
            }
            bytes.append(0x0A)
        }
        bytes += requestLine("decide", try exampleRequest("allow-scientist-reads-own-study.json"), id: .string("final"))
        let writer = BackgroundWriter(fd: c.fileDescriptor, bytes: bytes)
        var answeredErrors = 0
        var final: Result<JSON, RPCError>? = nil
        while final == nil, let line = try c.readLine() {
            let value = try JSON.parse(line)
            if value.arrayValue != nil { answeredErrors += 1; continue }  // a random "[...]" batch
            let r = try RPCResponse.decode(value)
            if r.id == .string("final") { final = r.outcome } else {
                #expect(errorCodeOf(r.outcome) != nil, "random bytes are never a successful call")
                answeredErrors += 1
            }
        }
        #expect(writer.wait())
        #expect(decisionOf(try #require(final)) == "allow")
        #expect(answeredErrors > 9_000)
        #expect((try? d.call("health").get()) != nil)
    }
}
