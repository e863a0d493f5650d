/// Record framing shared by segments and the checkpoint file:
///
///     length u32le | crc32c(payload) u32le | crc32c(first 8 header bytes) u32le | payload
///
/// The header has its own checksum so a flipped length can never make the reader skip records
/// or mistake the middle of a file for a torn tail.
package enum RecordFrame {
    package static let headerSize = 12
    /// Entries are small (no clinical payloads); a bound keeps a forged length from mapping gigabytes.
    package static let maxPayload = 1 << 20

    package static func append(_ payload: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        let len = UInt32(payload.count)
        let crc = CRC32C.checksum(payload)
        var header: (UInt32, UInt32, UInt32) = (len.littleEndian, crc.littleEndian, 0)
        let hcrc = withUnsafeBytes(of: &header) { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<8])) }
        header.2 = hcrc.littleEndian
        withUnsafeBytes(of: &header) { out.append(contentsOf: $0) }
        out.append(contentsOf: payload)
    }

    package static func append(_ payload: [UInt8], to out: inout [UInt8]) {
        payload.withUnsafeBytes { append($0, to: &out) }
    }

    /// How a scan of a file ended.
    package enum End: Equatable, Sendable {
        /// Every byte belongs to a whole, valid record.
        case clean
        /// The file ends inside a record that was being written when the process or machine
        /// stopped: the bytes from `offset` on were never acknowledged and may be cut.
        case torn(offset: Int)
        /// Bytes at `offset` are damaged and more data follows: never cut automatically.
        case corrupt(offset: Int, reason: String)
    }

    /// Visits each whole record in order. `body` gets the record's start offset and payload and
    /// returns false to stop early (the scan then ends `.clean`).
    package static func scan(_ bytes: UnsafeRawBufferPointer,
                             _ body: (_ offset: Int, _ payload: UnsafeRawBufferPointer) -> Bool) -> End {
        var p = 0
        let n = bytes.count
        while p < n {
            let rest = n - p
            if rest < headerSize { return .torn(offset: p) }
            let len = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: p, as: UInt32.self)))
            let crc = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: p + 4, as: UInt32.self))
            let hcrc = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: p + 8, as: UInt32.self))
            if CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[p..<(p + 8)])) != hcrc {
                // A crash after the file grew but before its blocks were written leaves zeros.
                if bytes[p...].allSatisfy({ $0 == 0 }) { return .torn(offset: p) }
                return .corrupt(offset: p, reason: "record header checksum mismatch")
            }
            if len > maxPayload { return .corrupt(offset: p, reason: "record length \(len) exceeds \(maxPayload)") }
            if rest - headerSize < len { return .torn(offset: p) }
            let payload = UnsafeRawBufferPointer(rebasing: bytes[(p + headerSize)..<(p + headerSize + len)])
            if CRC32C.checksum(payload) != crc { return .corrupt(offset: p, reason: "record payload checksum mismatch") }
            if !body(p, payload) { return .clean }
            p += headerSize + len
        }
        return .clean
    }
}
