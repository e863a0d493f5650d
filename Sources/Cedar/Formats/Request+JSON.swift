import CustosJSON

extension Request {
    /// `{"principal": {"type","id"}, "action": ..., "resource": ..., "context": {...}}`.
    /// `context` may be omitted (empty). Other keys are listed in `allowedExtraKeys` by callers
    /// that embed requests in larger documents (such as test files).
    public init(json: JSON, allowedExtraKeys: Set<String> = []) throws(FormatError) {
        guard case .object(let o) = json else { throw FormatError("expected a request object, got \(json.kindName)") }
        for k in o.keys where !["principal", "action", "resource", "context"].contains(k) && !allowedExtraKeys.contains(k) {
            throw FormatError("unknown key \"\(k)\" (a request has principal, action, resource and context)")
        }
        func uid(_ key: String) throws(FormatError) -> EntityUID {
            guard let j = o[key] else { throw FormatError("missing \"\(key)\"") }
            do { return try EntityUID(json: j) } catch { throw error.within(key) }
        }
        let p = try uid("principal"), a = try uid("action"), r = try uid("resource")
        var ctx = CedarRecord()
        if let c = o["context"] {
            guard case .object(let co) = c else { throw FormatError(path: "context", "expected an object, got \(c.kindName)") }
            do { ctx = try CedarRecord(json: co) } catch { throw error.within("context") }
        }
        self.init(principal: p, action: a, resource: r, context: ctx)
    }
}
