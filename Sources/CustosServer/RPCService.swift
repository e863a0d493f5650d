import CustosJSON

/// Turns one line into JSON-RPC replies: single requests, batches, notifications.
struct RPCService: LineService {
    let dispatcher: Dispatcher
    /// Requests one line may carry (see `ServerConfiguration.batchLimit`); nil: no limit.
    var batchLimit: Int? = nil

    struct Session {
        let context: CallContext
        var verdicts = Dispatcher.Verdicts()
        /// What the answers written since the last flush wait for.
        var ticket = CommitTicket()
        /// Answers in the output that depend on `ticket`: replaced by errors if it fails.
        var waiting: [Waiting] = []
    }

    /// Where one answer sits in the output buffer, so it can be swapped for an error.
    struct Waiting {
        var start: Int
        var end: Int
        var id: RequestID
    }

    func openSession(_ context: CallContext) -> Session { Session(context: context) }

    func handle(line: UnsafeRawBufferPointer, session: inout Session, out: inout JSONWriter,
                flush: (inout Session, inout JSONWriter) -> Bool) -> Bool {
        // A batch array over the limit is refused before it is parsed: its tree would cost
        // tens of bytes per element, and each element a reply.
        if let limit = batchLimit, Self.startsArray(line) {
            let n = Self.topLevelElements(line)
            if n > limit { return refuse(.batchTooLarge(requests: n, limit: limit), out: &out) }
        }
        var value: JSON
        do {
            value = try JSON.parse(line)
        } catch {
            RPCResponse.writeError(.parseError("parse error: the line is not valid JSON (\(error.description))"), id: .null, into: &out)
            out.byte(0x0A)
            return true
        }
        guard case .array(var items) = value else {
            if answer(value, session: &session, out: &out) { out.byte(0x0A) }
            return true
        }
        // `items` alone owns the elements now, so each is freed once answered.
        value = .null
        guard !items.isEmpty else {
            RPCResponse.writeError(.invalidRequest("empty batch: a batch array must hold at least one request"), id: .null, into: &out)
            out.byte(0x0A)
            return true
        }
        if let limit = batchLimit {
            // Elements that carry several requests (decide.batch) count each of them.
            var n = 0
            for item in items {
                if case .object(let o) = item, case .string(let method)? = o["method"] {
                    let (sum, overflow) = n.addingReportingOverflow(dispatcher.weight(method, params: Params(o["params"])))
                    n = overflow ? .max : sum
                } else {
                    n += 1
                }
            }
            if n > limit { return refuse(.batchTooLarge(requests: n, limit: limit), out: &out) }
        }
        let mark = out.bytes.count
        out.byte(UInt8(ascii: "["))
        var any = false
        for i in items.indices {
            let item = items[i]
            items[i] = .null
            let before = out.bytes.count
            if any { out.byte(UInt8(ascii: ",")) }
            if answer(item, session: &session, out: &out) {
                any = true
            } else {
                out.bytes.removeSubrange(before...)
            }
            // Send what a long batch has answered so far rather than hold it all.
            if any && out.bytes.count >= Transport<RPCService>.flushThreshold && !flush(&session, &out) { return false }
        }
        if any {
            out.byte(UInt8(ascii: "]"))
            out.byte(0x0A)
        } else {
            // A batch of notifications only gets no reply at all (JSON-RPC 2.0 section 6).
            out.bytes.removeSubrange(mark...)
        }
        return true
    }

    private func refuse(_ error: RPCError, out: inout JSONWriter) -> Bool {
        RPCResponse.writeError(error, id: .null, into: &out)
        out.byte(0x0A)
        return true
    }

    /// Whether the first byte that is not JSON whitespace opens an array.
    static func startsArray(_ line: UnsafeRawBufferPointer) -> Bool {
        for b in line {
            switch b {
            case 0x20, 0x09, 0x0A, 0x0D: continue
            case UInt8(ascii: "["): return true
            default: return false
            }
        }
        return false
    }

    /// The elements of a top-level JSON array, counted by scanning (commas outside strings at
    /// nesting depth one), without parsing. Exact for valid JSON; for anything else a count
    /// the parser would refuse anyway.
    static func topLevelElements(_ line: UnsafeRawBufferPointer) -> Int {
        var depth = 0
        var commas = 0
        var inString = false
        var escaped = false
        var content = false  // something other than whitespace inside the outer brackets
        for b in line {
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch b {
            case UInt8(ascii: "\""):
                inString = true
                if depth >= 1 { content = true }
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                if depth >= 1 { content = true }
                depth += 1
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                depth -= 1
                if depth <= 0 { return content ? commas + 1 : 0 }
            case UInt8(ascii: ","):
                if depth == 1 { commas += 1 }
            case 0x20, 0x09, 0x0A, 0x0D:
                break
            default:
                if depth >= 1 { content = true }
            }
        }
        return content ? commas + 1 : 0
    }

    /// Writes the reply to one request; false when there is none (a valid notification).
    @inline(__always)
    private func answer(_ value: JSON, session: inout Session, out: inout JSONWriter) -> Bool {
        let request: RPCRequest
        switch RPCRequest.validate(value) {
        case .failure(let invalid):
            RPCResponse.writeError(invalid.error, id: invalid.id, into: &out)
            return true
        case .success(let r):
            request = r
        }
        let start = out.bytes.count
        out.raw("{\"jsonrpc\":\"2.0\",\"result\":")
        var ticket = CommitTicket()
        do {
            try dispatcher.write(request.method, params: request.params, context: session.context,
                                 verdicts: &session.verdicts, into: &out, ticket: &ticket)
        } catch {
            out.bytes.removeSubrange(start...)
            guard let id = request.id else { return false }
            RPCResponse.writeError(error, id: id, into: &out)
            return true
        }
        session.ticket.require(ticket)
        guard let id = request.id else {
            out.bytes.removeSubrange(start...)
            return false
        }
        out.raw(",\"id\":")
        id.write(into: &out)
        out.byte(UInt8(ascii: "}"))
        if ticket.through != nil { session.waiting.append(Waiting(start: start, end: out.bytes.count, id: id)) }
        return true
    }

    /// Commits what the buffered answers wait for, once for all of them. If the commit fails,
    /// none of them may leave: each is replaced by the error, the other answers stay as written.
    func settle(session: inout Session, out: inout JSONWriter) {
        guard session.ticket.through != nil else { return }
        defer {
            session.ticket = CommitTicket()
            session.waiting.removeAll(keepingCapacity: true)
        }
        do { try dispatcher.commit(session.ticket) } catch {
            var rebuilt = JSONWriter(capacity: out.bytes.count)
            var from = 0
            for w in session.waiting {
                rebuilt.bytes.append(contentsOf: out.bytes[from..<w.start])
                RPCResponse.writeError(error, id: w.id, into: &rebuilt)
                from = w.end
            }
            rebuilt.bytes.append(contentsOf: out.bytes[from...])
            out = rebuilt
        }
    }
}
