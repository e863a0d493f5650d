import Cedar

// Swift's String hashing and == use canonical equivalence ("\u{212A}" KELVIN SIGN == "K"), while
// Cedar and the wire compare by Unicode scalars. Look-ups with names that come from requests or
// entities therefore hash as usual and then confirm that the stored key is scalar-equal.

extension Dictionary where Key == String {
    @inline(__always) func scalarLookup(_ key: String) -> Value? {
        guard let i = index(forKey: key), self[i].key.scalarEquals(key) else { return nil }
        return self[i].value
    }
}

extension Set where Element == String {
    @inline(__always) func containsScalar(_ s: String) -> Bool {
        guard let i = firstIndex(of: s) else { return false }
        return self[i].scalarEquals(s)
    }
}
