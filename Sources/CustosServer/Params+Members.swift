import CustosJSON

/// Every method reads its params through one of these, so an unknown member is refused the same
/// way everywhere: -32602 naming `params.<member>`. Params are named (an object); absent params
/// and an empty array both mean "no members", so a client library that always sends `[]` or
/// `{}` works with every method, and nothing else passes unread.
extension Params {
    /// Refuses members other than `allowed` (keys compared by bytes). Absent params and `[]`
    /// pass as an empty object; a non-empty array or another value is refused.
    public func only(_ allowed: [String], method: String) throws(RPCError) {
        guard let json else { return }
        switch json {
        case .object(let o):
            if let m = o.firstUnknownMember(allowed: allowed) {
                throw .invalidParams(field: "params.\(m.key)", "unknown member (\(method) takes \(Self.list(allowed)))")
            }
        case .array(let a) where a.isEmpty:
            return
        default:
            throw .invalidParams(field: "params", "expected an object {\(allowed.joined(separator: ", "))}, got \(json.kindName)")
        }
    }

    /// For methods that take no params: absent, `{}` and `[]` pass; anything else is refused,
    /// naming the first member when there is one.
    public func none(method: String) throws(RPCError) {
        guard let json else { return }
        switch json {
        case .object(let o):
            if let m = o.members.first { throw .invalidParams(field: "params.\(m.key)", "unknown member (\(method) takes no params)") }
        case .array(let a):
            if !a.isEmpty { throw .invalidParams(field: "params", "\(method) takes no params, got an array of \(a.count)") }
        default:
            throw .invalidParams(field: "params", "\(method) takes no params, got \(json.kindName)")
        }
    }

    private static func list(_ names: [String]) -> String {
        switch names.count {
        case 0: "no params"
        case 1: "only \(names[0])"
        default: names.dropLast().joined(separator: ", ") + " and " + names.last!
        }
    }
}
