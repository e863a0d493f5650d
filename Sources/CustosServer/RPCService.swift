import CustosJSON

/// Turns one line into JSON-RPC replies: single requests, batches, notifications.
struct RPCService: LineService {
    let dispatcher: Dispatcher

    struct Session {
        let context: CallContext
        var verdicts = Dispatcher.Verdicts()
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
        do {
            let result = try dispatcher.call(request.method, params: request.params,
                                             context: session.context, verdicts: &session.verdicts)
            guard let id = request.id else { return false }
            RPCResponse.writeResult(result, id: id, into: &out)
        } catch {
            guard let id = request.id else { return false }
            RPCResponse.writeError(error, id: id, into: &out)
        }
        return true
    }
}
