import Glibc
import Synchronization

/// UUIDv7 decision ids (RFC 9562): 48-bit Unix milliseconds, then a 12-bit counter in
/// `rand_a` (RFC 9562 section 6.2, method 1), then 62 bits that are unique per process.
///
/// Ids from one process are strictly increasing, even when many threads ask in the same
/// millisecond or the wall clock steps back: the (milliseconds, counter) pair never repeats.
/// The low 62 bits are a bijective mix of a per-process counter with a random key read once from
/// the kernel, so ids are unique without a system call per decision.
public enum DecisionID {
    /// (unix ms << 12) | counter of the last id handed out.
    private static let clockState = Atomic<UInt64>(0)
    private static let sequence = Atomic<UInt64>(0)
    private static let key: UInt64 = {
        var k: UInt64 = 0
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            _ = withUnsafeMutableBytes(of: &k) { read(fd, $0.baseAddress, 8) }
            close(fd)
        }
        if k == 0 {
            // No urandom: still distinct per process and per start.
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            k = UInt64(bitPattern: Int64(ts.tv_nsec)) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(getpid())
        }
        return k
    }()

    /// The length of an id's text, and a placeholder of that length for entries whose id the
    /// audit log's writer sets when the entry takes its place in the log.
    public static let textLength = 36
    public static let placeholder = "00000000-0000-7000-8000-000000000000"

    /// A new id as its 16 bytes.
    public static func next(now: WallTime = .now()) -> (UInt64, UInt64) {
        next(milliseconds: now.milliseconds)
    }

    /// A new id for the given Unix milliseconds as its 16 bytes.
    public static func next(milliseconds: Int64) -> (UInt64, UInt64) {
        let ms = UInt64(truncatingIfNeeded: max(0, milliseconds)) & 0xFFFF_FFFF_FFFF
        var old = clockState.load(ordering: .relaxed)
        var new: UInt64
        repeat {
            // Within one millisecond (or when the clock steps back) the counter moves on; when it
            // overflows 12 bits the timestamp field advances, which keeps ids ordered.
            new = max(ms << 12, old &+ 1)
            let (done, current) = clockState.compareExchange(expected: old, desired: new, ordering: .relaxed)
            if done { break }
            old = current
        } while true
        let hi = (new >> 12) << 16 | 0x7000 | (new & 0xFFF)
        let lo = (mix(sequence.add(1, ordering: .relaxed).oldValue ^ key) & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        return (hi, lo)
    }

    /// The canonical text form, `xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx`.
    public static func nextString(now: WallTime = .now()) -> String {
        let (hi, lo) = next(now: now)
        return format(hi: hi, lo: lo)
    }

    public static func format(hi: UInt64, lo: UInt64) -> String {
        String(unsafeUninitializedCapacity: textLength) { buf in
            write(hi: hi, lo: lo, into: UnsafeMutableRawBufferPointer(buf))
            return textLength
        }
    }

    /// Writes the text form into `out`, which holds `textLength` bytes.
    public static func write(hi: UInt64, lo: UInt64, into out: UnsafeMutableRawBufferPointer) {
        let hex: StaticString = "0123456789abcdef"
        var j = 0
        for i in 0..<32 {
            if i == 8 || i == 12 || i == 16 || i == 20 { out[j] = UInt8(ascii: "-"); j += 1 }
            let word = i < 16 ? hi : lo
            let shift = UInt64(60 - (i % 16) * 4)
            out[j] = hex.utf8Start[Int((word >> shift) & 0xF)]
            j += 1
        }
    }

    /// Makes every id handed out from now on sort after `text` when it is a UUIDv7, so ids keep
    /// increasing in log order across a restart even if the clock was set back meanwhile.
    public static func continueAfter(_ text: String) {
        let u = Array(text.utf8)
        guard u.count == textLength, u[8] == UInt8(ascii: "-"), u[13] == UInt8(ascii: "-"), u[14] == UInt8(ascii: "7") else { return }
        var hi: UInt64 = 0
        for c in u[0..<19] where c != UInt8(ascii: "-") {
            let v: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c - UInt8(ascii: "a") + 10
            default: return
            }
            hi = hi << 4 | UInt64(v)
        }
        let state = (hi >> 16) << 12 | (hi & 0xFFF)
        var old = clockState.load(ordering: .relaxed)
        while old < state {
            let (done, current) = clockState.compareExchange(expected: old, desired: state, ordering: .relaxed)
            if done { break }
            old = current
        }
    }

    /// SplitMix64's finaliser: a bijection on 64 bits, so distinct inputs give distinct outputs.
    @inline(__always) static func mix(_ x0: UInt64) -> UInt64 {
        var x = x0
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        return x ^ (x >> 31)
    }
}
