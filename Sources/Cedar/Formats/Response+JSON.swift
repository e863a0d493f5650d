import CustosJSON

extension Response {
    /// `{"decision":"allow","reasons":["policy0"],"errors":["policy3"]}` with policy ids.
    public func write(to w: inout JSONWriter, policies: PolicySet) {
        w.raw(decision == .allow ? #"{"decision":"allow","reasons":["# : #"{"decision":"deny","reasons":["#)
        for (i, r) in reasons.enumerated() {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            w.string(policies.policies[r].id)
        }
        w.raw(#"],"errors":["#)
        for (i, e) in errors.enumerated() {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            w.string(policies.policies[e.policy].id)
        }
        w.raw("]}")
    }
}
