import Glibc

/// Node names to positions, looked up by the bytes of a name: the inventory's index for a
/// placement by names, where a thousand look-ups per call through a `Dictionary` (SipHash of
/// each name, then a comparison by Unicode scalars) were a tenth of an extender call.
///
/// Built once per prepared inventory and never changed. Open addressing over a table at most
/// half full; the hash is seeded per table, so which names share a probe run differs from one
/// build to the next. Two names are the same node when their UTF-8 bytes are equal, which is
/// the inventory's own rule (names compare by Unicode scalars: equal scalars, equal bytes).
public struct NameIndex: Sendable {
    /// Position + 1 of the name in each slot; 0 for an empty slot.
    private let slots: [Int32]
    private let mask: Int
    /// Every name's bytes, one after another; name `k` is `bytes[offsets[k]..<offsets[k + 1]]`.
    private let bytes: [UInt8]
    private let offsets: [Int32]
    private let seed: UInt64

    /// `names[k]` at position `k`; names must be distinct.
    public init(_ names: [String]) {
        var capacity = 16
        while capacity < names.count * 2 { capacity <<= 1 }
        var slots = [Int32](repeating: 0, count: capacity)
        var bytes: [UInt8] = []
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(names.count + 1)
        let seed = UInt64.random(in: .min ... .max)
        for (k, name) in names.enumerated() {
            var s = name
            let h = s.withUTF8 { b in
                bytes.append(contentsOf: b)
                return Self.hash(UnsafeRawBufferPointer(b), seed)
            }
            offsets.append(Int32(truncatingIfNeeded: bytes.count))
            var i = Int(truncatingIfNeeded: h) & (capacity - 1)
            while slots[i] != 0 { i = (i + 1) & (capacity - 1) }
            slots[i] = Int32(truncatingIfNeeded: k + 1)
        }
        self.slots = slots
        self.mask = capacity - 1
        self.bytes = bytes
        self.offsets = offsets
        self.seed = seed
    }

    public var count: Int { offsets.count - 1 }

    /// The position of `name`, or nil.
    @inline(__always)
    public func position(of name: String) -> Int? {
        var s = name
        return s.withUTF8 { position(of: UnsafeRawBufferPointer($0)) }
    }

    public func position(of name: UnsafeRawBufferPointer) -> Int? {
        var i = Int(truncatingIfNeeded: Self.hash(name, seed)) & mask
        return slots.withUnsafeBufferPointer { slots in
            bytes.withUnsafeBufferPointer { all in
                offsets.withUnsafeBufferPointer { offsets in
                    while true {
                        let s = Int(slots[i])
                        if s == 0 { return nil }
                        let start = Int(offsets[s - 1]), end = Int(offsets[s])
                        if end - start == name.count
                            && (name.count == 0 || memcmp(all.baseAddress! + start, name.baseAddress!, name.count) == 0) {
                            return s - 1
                        }
                        i = (i + 1) & mask
                    }
                }
            }
        }
    }

    /// FNV-1a over the bytes from a seeded start, then a 64-bit finaliser (MurmurHash3's) so
    /// the low bits that pick the slot depend on every byte.
    @inline(__always)
    static func hash(_ b: UnsafeRawBufferPointer, _ seed: UInt64) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
        for x in b { h = (h ^ UInt64(x)) &* 0x0000_0100_0000_01b3 }
        h ^= h >> 33
        h = h &* 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        h = h &* 0xc4ce_b9fe_1a85_ec53
        h ^= h >> 33
        return h
    }
}
