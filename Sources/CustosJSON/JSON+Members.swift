extension JSONObject {
    /// The first member whose key is none of `allowed`, or nil. Keys compare by bytes, as on the
    /// wire: a key that is merely canonically equivalent to an allowed one is still unknown.
    ///
    /// Readers of requests and configuration call this so that a misspelt member (`"gpx"` for
    /// `"gxp"`) is an error naming it, never a default silently taken.
    public func firstUnknownMember(allowed: [String]) -> Member? {
        for m in members where !allowed.contains(where: { $0.utf8.elementsEqual(m.key.utf8) }) { return m }
        return nil
    }
}
