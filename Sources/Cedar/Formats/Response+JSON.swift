import CustosJSON

extension Response {
    /// `{"decision":"allow","reasons":["no-export"],"errors":["policy3"]}`: each policy named as
    /// the daemon names it, by its `@id` annotation, else its position id `policyN`. (The
    /// upstream corpus format compares position ids and does not use this.)
    public func write(to w: inout JSONWriter, policies: PolicySet) {
        w.raw(decision == .allow ? #"{"decision":"allow","reasons":["# : #"{"decision":"deny","reasons":["#)
        for (i, r) in reasons.enumerated() {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            w.string(policies.answerNames[r])
        }
        w.raw(#"],"errors":["#)
        for (i, e) in errors.enumerated() {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            w.string(policies.answerNames[e.policy])
        }
        w.raw("]}")
    }
}
