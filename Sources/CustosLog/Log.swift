import CivilCalendar
import CustosJSON
import Glibc
import Synchronization

/// How serious a line is. The names are the ones log collectors (journald's JSON, Loki,
/// Elasticsearch) map to their own levels without configuration.
public enum LogLevel: String, Sendable, CaseIterable {
    case debug, info, warning, error
}

/// `json`: one JSON object per line, for collectors. `text`: one readable line, for a person at
/// a terminal. `auto` picks `text` when the output is a terminal and `json` otherwise, so
/// `make run` reads well and a unit or a container gets machine-readable lines.
public enum LogFormat: String, Sendable, CaseIterable {
    case auto, json, text
}

/// A field's value: the few kinds a lifecycle line carries.
public enum LogValue: Sendable, Equatable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    case string(String)
    case int(Int64)
    case bool(Bool)

    public init(stringLiteral s: String) { self = .string(s) }
    public init(integerLiteral i: Int64) { self = .int(i) }
    public static func uint(_ v: some BinaryInteger) -> LogValue { .int(Int64(clamping: v)) }
}

/// The daemon's log: one line per event, written with a single `write(2)` so that lines from
/// different threads never interleave.
///
/// A JSON line is `{"time":"2026-03-01T09:00:00.123Z","level":"info","event":"policy.loaded",
/// "message":"...", ...fields}`: time in RFC 3339 UTC with milliseconds, then the level, a
/// stable dotted event name to filter on, the human message, and the event's fields (which
/// never repeat those four names). A text line is `TIME LEVEL EVENT: MESSAGE`.
public final class Logger: Sendable {
    public let format: LogFormat
    private let fd: Int32
    private let clock: @Sendable () -> Int64
    private let lines: Mutex<[String]?>

    /// `format` `.auto` is resolved here against `fd`. `clock` gives milliseconds since the
    /// epoch (tests fix it). With `capture`, lines are kept in memory instead of written.
    public init(format: LogFormat = .auto, fd: Int32 = 2, capture: Bool = false,
                clock: @escaping @Sendable () -> Int64 = Logger.wallClockMilliseconds) {
        self.format = format == .auto ? (isatty(fd) == 1 ? .text : .json) : format
        self.fd = fd
        self.clock = clock
        self.lines = Mutex(capture ? [] : nil)
    }

    /// Writes nothing: for daemons embedded in tests and tools.
    public static let discarding = Logger(format: .json, fd: -1)

    /// Lines written so far, when built with `capture`.
    public var captured: [String] { lines.withLock { $0 ?? [] } }

    public func debug(_ event: String, _ message: String, _ fields: KeyValuePairs<String, LogValue> = [:]) { log(.debug, event, message, fields) }
    public func info(_ event: String, _ message: String, _ fields: KeyValuePairs<String, LogValue> = [:]) { log(.info, event, message, fields) }
    public func warning(_ event: String, _ message: String, _ fields: KeyValuePairs<String, LogValue> = [:]) { log(.warning, event, message, fields) }
    public func error(_ event: String, _ message: String, _ fields: KeyValuePairs<String, LogValue> = [:]) { log(.error, event, message, fields) }

    public func log(_ level: LogLevel, _ event: String, _ message: String, _ fields: KeyValuePairs<String, LogValue> = [:]) {
        log(level, event, message, fields: Array(fields.map { ($0.key, $0.value) }))
    }

    public func log(_ level: LogLevel, _ event: String, _ message: String, fields: [(String, LogValue)]) {
        let line = render(level, event, message, fields)
        let kept = lines.withLock { l -> Bool in
            guard l != nil else { return false }
            l!.append(line)
            return true
        }
        if kept { return }
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        bytes.withUnsafeBytes { p in
            var off = 0
            while off < p.count {
                let n = write(fd, p.baseAddress! + off, p.count - off)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }  // a closed stderr must never stop the daemon
                off += n
            }
        }
    }

    /// The line without its LF.
    public func render(_ level: LogLevel, _ event: String, _ message: String, _ fields: [(String, LogValue)]) -> String {
        let time = Logger.rfc3339(milliseconds: clock())
        switch format {
        case .text, .auto:
            var s = "\(time) \(level.rawValue) \(event): "
            // One line whatever the message holds: a load error can quote a path with a newline.
            for u in message.unicodeScalars {
                switch u {
                case "\n": s += "\\n"
                case "\r": s += "\\r"
                default: s.unicodeScalars.append(u)
                }
            }
            return s
        case .json:
            var w = JSONWriter(capacity: 256)
            w.raw("{\"time\":")
            w.string(time)
            w.raw(",\"level\":")
            w.string(level.rawValue)
            w.raw(",\"event\":")
            w.string(event)
            w.raw(",\"message\":")
            w.string(message)
            for (key, value) in fields where !Logger.reserved.contains(key) {
                w.byte(UInt8(ascii: ","))
                w.string(key)
                w.byte(UInt8(ascii: ":"))
                switch value {
                case .string(let s): w.string(s)
                case .int(let i): w.int(i)
                case .bool(let b): w.bool(b)
                }
            }
            w.byte(UInt8(ascii: "}"))
            return String(decoding: w.bytes, as: UTF8.self)
        }
    }

    private static let reserved: Set<String> = ["time", "level", "event", "message"]

    @Sendable public static func wallClockMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// `2026-03-01T09:00:00.123Z`: fixed width, UTC, milliseconds.
    public static func rfc3339(milliseconds ms: Int64) -> String {
        let (daysPart, msOfDay) = ms >= 0 ? (ms / 86_400_000, ms % 86_400_000)
                                         : ((ms - 86_399_999) / 86_400_000, ((ms % 86_400_000) + 86_400_000) % 86_400_000)
        let d = CivilCalendar.date(days: daysPart)
        func pad(_ v: Int64, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        let h = msOfDay / 3_600_000, m = (msOfDay / 60_000) % 60, s = (msOfDay / 1000) % 60, f = msOfDay % 1000
        return "\(pad(d.year, 4))-\(pad(d.month, 2))-\(pad(d.day, 2))T\(pad(h, 2)):\(pad(m, 2)):\(pad(s, 2)).\(pad(f, 3))Z"
    }
}
