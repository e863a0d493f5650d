/// A record key with its UTF-8 length and first eight bytes packed into integers, computed
/// once when a record is built or a policy is compiled. Look-ups compare those integers and
/// only fall back to comparing bytes for keys longer than eight bytes; attribute look-ups are
/// the commonest operation in policy conditions.
public struct FieldKey: Sendable, Hashable, CustomStringConvertible {
    public let string: String
    let count: Int
    let prefix: UInt64

    public init(_ s: String) {
        string = s
        var copy = s
        var n = 0
        var p: UInt64 = 0
        copy.withUTF8 { buf in
            n = buf.count
            for i in 0..<min(8, buf.count) { p |= UInt64(buf[i]) << (8 * UInt64(i)) }
        }
        count = n
        prefix = p
    }

    @inline(__always) public static func == (a: FieldKey, b: FieldKey) -> Bool {
        a.count == b.count && a.prefix == b.prefix && (a.count <= 8 || a.string.scalarEquals(b.string))
    }

    public func hash(into h: inout Hasher) { h.combine(count); h.combine(prefix) }

    public var description: String { string }
}
