#if canImport(Glibc)
import Glibc
#endif

/// Cedar compares strings as exact sequences of Unicode scalars. Swift's `String ==` is canonical
/// equivalence ("\u{E9}" == "e\u{301}"), which would make two different Cedar strings equal, so
/// every Cedar-facing comparison goes through these helpers (UTF-8 order equals scalar order).
extension String {
    /// Byte-exact equality of the UTF-8 encodings (which is scalar-exact equality). Sizes are
    /// compared first (O(1) for native strings), then memory; the generic `elementsEqual` was
    /// the single largest cost of evaluation before this fast path.
    @inline(__always) package func scalarEquals(_ other: String) -> Bool {
        // Identical representations are identical strings: two inline (small) strings with the
        // same bytes, or two references to one buffer. Most type names and ids compared during
        // evaluation are short, so most equal pairs end here without a memcmp call.
        if unsafeBitCast(self, to: (UInt64, UInt64).self) == unsafeBitCast(other, to: (UInt64, UInt64).self) { return true }
        let n = self.utf8.count
        guard n == other.utf8.count else { return false }
        if n == 0 { return true }
        let fast: Bool?? = self.utf8.withContiguousStorageIfAvailable { a in
            other.utf8.withContiguousStorageIfAvailable { b in memcmp(a.baseAddress!, b.baseAddress!, n) == 0 }
        }
        if let f = fast, let r = f { return r }
        // Small strings live inline and lend no storage; withUTF8 gives a stack copy.
        var a = self, b = other
        return a.withUTF8 { pa in b.withUTF8 { pb in memcmp(pa.baseAddress!, pb.baseAddress!, n) == 0 } }
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
