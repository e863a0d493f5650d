/// CRC-32C (Castagnoli), the frame checksum of segment records (see `RecordFrame`).
///
/// Slicing-by-8: eight 256-entry tables let the loop consume eight bytes per step instead of
/// one. Every entry is framed once when written and checked once per read by `audit verify`
/// and `audit query`, so this sits on both the writer's and the verifier's hot path.
package enum CRC32C {
    /// tables[k][b] is the CRC of byte b followed by k zero bytes.
    private static let tables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 == 1 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            t[i] = c
        }
        for k in 1..<8 {
            for i in 0..<256 {
                let prev = t[(k - 1) * 256 + i]
                t[k * 256 + i] = t[Int(prev & 0xFF)] ^ (prev >> 8)
            }
        }
        return t
    }()

    package static func checksum(_ data: UnsafeRawBufferPointer) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        let n = data.count
        guard n > 0, let base = data.baseAddress else { return 0 }
        tables.withUnsafeBufferPointer { t in
            var i = 0
            while i + 8 <= n {
                // Little-endian loads: the byte order the table construction assumes.
                let lo = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt32.self)) ^ c
                let hi = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self))
                c = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                    ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                    ^ t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                i += 8
            }
            while i < n {
                c = t[Int((c ^ UInt32(base.load(fromByteOffset: i, as: UInt8.self))) & 0xFF)] ^ (c >> 8)
                i += 1
            }
        }
        return c ^ 0xFFFF_FFFF
    }

    package static func checksum(_ data: [UInt8]) -> UInt32 { data.withUnsafeBytes { checksum($0) } }
}
