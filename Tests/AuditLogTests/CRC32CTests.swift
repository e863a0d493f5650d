import AuditLog
import Testing

/// The frame checksum against published CRC-32C values (RFC 3720, appendix B.4, and the
/// customary "123456789" check value), and against the one-byte-at-a-time definition for every
/// length and alignment the eight-byte loop can meet.
@Suite struct CRC32CTests {
    static let published: [(name: String, bytes: [UInt8], crc: UInt32)] = [
        ("check string 123456789", Array("123456789".utf8), 0xE306_9283),
        ("32 zero bytes", [UInt8](repeating: 0, count: 32), 0x8A91_36AA),
        ("32 bytes of 0xFF", [UInt8](repeating: 0xFF, count: 32), 0x62A8_AB43),
        ("bytes 0 to 31 ascending", (0..<32).map { UInt8($0) }, 0x46DD_794E),
        ("bytes 31 to 0 descending", (0..<32).map { UInt8(31 - $0) }, 0x113F_DB5C),
        ("empty input", [], 0),
    ]

    @Test(arguments: published)
    func matchesThePublishedValue(_ c: (name: String, bytes: [UInt8], crc: UInt32)) {
        #expect(CRC32C.checksum(c.bytes) == c.crc, "\(c.name)")
    }

    @Test func agreesWithTheBytewiseDefinitionAtEveryLengthAndOffset() {
        var table = [UInt32](repeating: 0, count: 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 == 1 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            table[i] = c
        }
        func bytewise(_ d: ArraySlice<UInt8>) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for b in d { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
            return c ^ 0xFFFF_FFFF
        }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let data: [UInt8] = (0..<200).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        for offset in 0..<8 {
            for length in 0...(data.count - offset) {
                let slice = data[offset..<(offset + length)]
                let fast = slice.withUnsafeBytes { CRC32C.checksum($0) }
                #expect(fast == bytewise(slice), "offset \(offset), length \(length)")
                if fast != bytewise(slice) { return }
            }
        }
    }
}
