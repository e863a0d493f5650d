import COpenSSL

/// A SHA-256 value held inline (four words, no heap buffer), so a tree of a million leaves is
/// one flat array rather than a million small allocations.
public struct SHA256Digest: Hashable, Sendable, CustomStringConvertible {
    @usableFromInline var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    /// The 32 bytes, or nil when `bytes` is not exactly 32 long.
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        guard bytes.count == 32 else { return nil }
        var w: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &w) { dst in
            for (i, b) in bytes.enumerated() { dst[i] = b }
        }
        (w0, w1, w2, w3) = w
    }

    init(raw: UnsafeRawPointer) {
        var w: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &w) { $0.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: 32)) }
        (w0, w1, w2, w3) = w
    }

    public var bytes: [UInt8] {
        var w = (w0, w1, w2, w3)
        return withUnsafeBytes(of: &w) { Array($0) }
    }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        var w = (w0, w1, w2, w3)
        return withUnsafeBytes(of: &w) { body($0) }
    }

    public var hex: String { withBytes { Hex.encode($0) } }
    public var base64: String { Base64.encode(bytes) }
    public var description: String { hex }

    /// SHA-256 of arbitrary bytes. The low-level interface on a stack context: no allocation
    /// and no provider look-up per call (see COpenSSL/shim.h).
    public static func hash(_ data: UnsafeRawBufferPointer) -> SHA256Digest {
        var ctx = SHA256_CTX()
        var out: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &out) { dst in
            _ = SHA256_Init(&ctx)
            _ = SHA256_Update(&ctx, data.baseAddress, data.count)
            _ = SHA256_Final(dst.baseAddress!.assumingMemoryBound(to: UInt8.self), &ctx)
        }
        return SHA256Digest(words: out)
    }

    public static func hash(_ data: [UInt8]) -> SHA256Digest {
        data.withUnsafeBytes { hash($0) }
    }

    public static func hash(_ text: String) -> SHA256Digest { hash(Array(text.utf8)) }

    /// SHA-256 of `prefix || data` without first copying `data` next to the prefix.
    static func hash(prefix: UInt8, _ data: UnsafeRawBufferPointer) -> SHA256Digest {
        var ctx = SHA256_CTX()
        var p = prefix
        var out: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &out) { dst in
            _ = SHA256_Init(&ctx)
            _ = SHA256_Update(&ctx, &p, 1)
            _ = SHA256_Update(&ctx, data.baseAddress, data.count)
            _ = SHA256_Final(dst.baseAddress!.assumingMemoryBound(to: UInt8.self), &ctx)
        }
        return SHA256Digest(words: out)
    }

    init(words: (UInt64, UInt64, UInt64, UInt64)) { (w0, w1, w2, w3) = words }
}

package enum Hex {
    package static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        // Written straight into the string's storage: request hashes are encoded per decision.
        String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            var i = 0
            for b in bytes {
                out[i] = digit(b >> 4)
                out[i + 1] = digit(b & 15)
                i += 2
            }
            return i
        }
    }

    @inline(__always) private static func digit(_ n: UInt8) -> UInt8 {
        n < 10 ? UInt8(ascii: "0") + n : UInt8(ascii: "a") + n - 10
    }

    package static func decode(_ text: String) -> [UInt8]? {
        let u = Array(text.utf8)
        guard u.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let hi = nibble(u[i]), let lo = nibble(u[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Standard base64 with padding (RFC 4648 section 4). Decoding is strict: padding is required
/// and non-zero trailing bits are rejected, so one value has one spelling in a signed note.
package enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    package static func encode<C: Collection>(_ data: C) -> String where C.Element == UInt8 {
        let bytes = Array(data)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= bytes.count {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [alphabet[Int(v >> 18 & 63)], alphabet[Int(v >> 12 & 63)], alphabet[Int(v >> 6 & 63)], alphabet[Int(v & 63)]]
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let v = UInt32(bytes[i]) << 16
            out += [alphabet[Int(v >> 18 & 63)], alphabet[Int(v >> 12 & 63)], UInt8(ascii: "="), UInt8(ascii: "=")]
        } else if rest == 2 {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [alphabet[Int(v >> 18 & 63)], alphabet[Int(v >> 12 & 63)], alphabet[Int(v >> 6 & 63)], UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }

    package static func decode(_ text: Substring) -> [UInt8]? { decode(Array(text.utf8)) }
    package static func decode(_ text: String) -> [UInt8]? { decode(Array(text.utf8)) }

    package static func decode(_ u: [UInt8]) -> [UInt8]? {
        guard u.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(u.count / 4 * 3)
        var i = 0
        while i < u.count {
            let last = i + 4 == u.count
            var v: UInt32 = 0
            var pad = 0
            for j in 0..<4 {
                let c = u[i + j]
                if c == UInt8(ascii: "=") {
                    guard last, j >= 2 else { return nil }
                    pad += 1
                    v <<= 6
                    continue
                }
                guard pad == 0, let d = value(c) else { return nil }
                v = v << 6 | UInt32(d)
            }
            out.append(UInt8(v >> 16 & 0xFF))
            if pad < 2 { out.append(UInt8(v >> 8 & 0xFF)) } else if v & 0xFFFF != 0 { return nil }
            if pad < 1 { out.append(UInt8(v & 0xFF)) } else if v & 0xFF != 0 { return nil }
            i += 4
        }
        return out
    }

    private static func value(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: nil
        }
    }
}
