/// Cedar compares strings as exact sequences of Unicode scalars. Swift's `String ==` is canonical
/// equivalence ("\u{E9}" == "e\u{301}"), which would make two different Cedar strings equal, so
/// every Cedar-facing comparison goes through these helpers (UTF-8 order equals scalar order).
extension String {
    @inline(__always) package func scalarEquals(_ other: String) -> Bool {
        self.utf8.elementsEqual(other.utf8)
    }

    @inline(__always) package func scalarLess(_ other: String) -> Bool {
        self.utf8.lexicographicallyPrecedes(other.utf8)
    }
}

/// A string key that hashes and compares by Unicode scalars; used wherever Cedar strings are
/// keys (record attributes, entity ids, tags).
public struct ScalarString: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let value: String
    @inline(__always) public init(_ value: String) { self.value = value }

    @inline(__always) public static func == (a: ScalarString, b: ScalarString) -> Bool {
        a.value.scalarEquals(b.value)
    }
    @inline(__always) public static func < (a: ScalarString, b: ScalarString) -> Bool {
        a.value.scalarLess(b.value)
    }
    @inline(__always) public func hash(into hasher: inout Hasher) {
        var s = value
        s.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
    public var description: String { value }
}
