import CustosJSON

/// Turns one line into JSON-RPC replies: single requests, batches, notifications.
struct RPCService: LineService {
    let dispatcher: Dispatcher

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

    func handle(line: UnsafeRawBufferPointer, session: inout Session, out: inout JSONWriter) {
        let value: JSON
        do {
            value = try JSON.parse(line)
        } catch {
            RPCResponse.writeError(.parseError("parse error: the line is not valid JSON (\(error.description))"), id: .null, into: &out)
            out.byte(0x0A)
            return
        }
        guard case .array(let items) = value else {
            if answer(value, session: &session, out: &out) { out.byte(0x0A) }
            return
        }
        guard !items.isEmpty else {
            RPCResponse.writeError(.invalidRequest("empty batch: a batch array must hold at least one request"), id: .null, into: &out)
            out.byte(0x0A)
            return
        }
        let mark = out.bytes.count
        out.byte(UInt8(ascii: "["))
        var any = false
        for item in items {
            let before = out.bytes.count
            if any { out.byte(UInt8(ascii: ",")) }
            if answer(item, session: &session, out: &out) {
                any = true
            } else {
                out.bytes.removeSubrange(before...)
            }
        }
        if any {
            out.byte(UInt8(ascii: "]"))
            out.byte(0x0A)
        } else {
            // A batch of notifications only gets no reply at all (JSON-RPC 2.0 section 6).
            out.bytes.removeSubrange(mark...)
        }
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
