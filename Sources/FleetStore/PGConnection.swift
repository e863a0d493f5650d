import CLibPQ
import Glibc

/// Why a PostgreSQL call failed: the server's message (with its SQLSTATE when it sent one), or
/// libpq's when the connection itself failed. Messages never quote the connection string,
/// which may name a password file.
public struct PGError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// The five-character SQLSTATE, when the server answered with an error.
    public var sqlState: String?
    /// True when the connection is unusable afterwards (lost, timed out, never made).
    public var connectionLost: Bool

    public init(_ message: String, sqlState: String? = nil, connectionLost: Bool = false) {
        self.message = message; self.sqlState = sqlState; self.connectionLost = connectionLost
    }

    public var description: String { sqlState.map { "\(message) (SQLSTATE \($0))" } ?? message }
}

/// One libpq connection. libpq is safe across threads only when each connection is used by one
/// thread at a time: the owner (the store's listener thread, or whoever holds the writer's lock)
/// is the only caller. Every call waits at most its deadline, so a server that stops answering
/// cannot hold the caller forever: the connection is then given up and reported lost.
final class PGConnection {
    private var conn: OpaquePointer?

    /// Opens a connection with libpq's own rules for `conninfo` (a `postgresql://` URI or
    /// `key=value` words; passwords from PGPASSFILE or `~/.pgpass`, never from the configuration).
    /// A `connect_timeout` of 10 s applies unless the URI sets its own.
    init(conninfo: String) throws(PGError) {
        var keys = ["dbname", "application_name"]
        var values = [conninfo, "custos"]
        if !PGConnInfo.has(conninfo, "connect_timeout") {
            keys.append("connect_timeout"); values.append("10")
        }
        let c: OpaquePointer? = withCStrings(keys) { k in
            withCStrings(values) { v in PQconnectdbParams(k, v, 1) }
        }
        guard let c else { throw PGError("out of memory opening a PostgreSQL connection", connectionLost: true) }
        guard PQstatus(c) == CONNECTION_OK else {
            let message = Self.trimmed(PQerrorMessage(c))
            PQfinish(c)
            throw PGError("cannot connect to the state store: \(message)", connectionLost: true)
        }
        // Non-blocking sends, so a full socket buffer never blocks past the deadline.
        _ = PQsetnonblocking(c, 1)
        conn = c
    }

    deinit { close() }

    func close() {
        if let c = conn { PQfinish(c); conn = nil }
    }

    var isOpen: Bool { conn.map { PQstatus($0) == CONNECTION_OK } ?? false }

    /// The socket, for waiting on notifications; -1 when closed.
    var socket: Int32 { conn.map { PQsocket($0) } ?? -1 }

    /// Runs one statement with text parameters (nil is SQL NULL) and returns its rows as text.
    /// Waits at most `timeoutMs`; on a timeout or a lost connection the connection is closed.
    @discardableResult
    func query(_ sql: String, _ params: [String?] = [], timeoutMs: Int) throws(PGError) -> [[String?]] {
        guard let c = conn, PQstatus(c) == CONNECTION_OK else {
            close()
            throw PGError("the connection to the state store is closed", connectionLost: true)
        }
        let deadline = Self.monotonicMs() + Int64(timeoutMs)
        let sent: Int32 = withOptionalCStrings(params) { p in
            PQsendQueryParams(c, sql, Int32(params.count), nil, p, nil, nil, 0)
        }
        guard sent == 1 else { throw lost("cannot send a query") }
        // Flush what the non-blocking send left queued.
        while true {
            let f = PQflush(c)
            if f == 0 { break }
            if f < 0 { throw lost("cannot send a query") }
            guard try wait(c, events: Int16(POLLIN | POLLOUT), deadline: deadline) else { throw lost("the state store did not take the query in time") }
            if PQconsumeInput(c) == 0 { throw lost("the connection to the state store failed") }
        }
        var rows: [[String?]] = []
        var failure: PGError? = nil
        while true {
            while PQisBusy(c) == 1 {
                guard try wait(c, events: Int16(POLLIN), deadline: deadline) else { throw lost("the state store did not answer in time") }
                if PQconsumeInput(c) == 0 { throw lost("the connection to the state store failed") }
            }
            guard let r = PQgetResult(c) else { break }
            defer { PQclear(r) }
            switch PQresultStatus(r) {
            case PGRES_TUPLES_OK:
                if failure == nil { rows = Self.rows(r) }
            case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                break
            default:
                if failure == nil {
                    let state = PQresultErrorField(r, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
                    failure = PGError(Self.trimmed(PQresultErrorMessage(r)), sqlState: state)
                }
            }
        }
        if PQstatus(c) != CONNECTION_OK {
            let e = failure?.message ?? "the connection to the state store failed"
            close()
            throw PGError(e, sqlState: failure?.sqlState, connectionLost: true)
        }
        if let failure { throw failure }
        return rows
    }

    /// Reads what arrived on the socket and returns the notification channels received.
    func drainNotifications() throws(PGError) -> Int {
        guard let c = conn else { throw PGError("the connection to the state store is closed", connectionLost: true) }
        if PQconsumeInput(c) == 0 { throw lost("the connection to the state store failed") }
        var n = 0
        while let note = PQnotifies(c) {
            n += 1
            PQfreemem(note)
        }
        return n
    }

    private func lost(_ what: String) -> PGError {
        let detail = conn.map { Self.trimmed(PQerrorMessage($0)) } ?? ""
        close()
        return PGError(detail.isEmpty ? what : "\(what): \(detail)", connectionLost: true)
    }

    /// Waits for the socket; false at the deadline.
    private func wait(_ c: OpaquePointer, events: Int16, deadline: Int64) throws(PGError) -> Bool {
        let fd = PQsocket(c)
        guard fd >= 0 else { throw lost("the connection to the state store has no socket") }
        while true {
            let left = deadline - Self.monotonicMs()
            if left <= 0 { return false }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let r = poll(&p, 1, Int32(min(left, 60_000)))
            if r > 0 { return true }
            if r < 0 && errno != EINTR { throw lost("poll failed") }
        }
    }

    private static func rows(_ r: OpaquePointer) -> [[String?]] {
        let n = PQntuples(r), m = PQnfields(r)
        var out: [[String?]] = []
        out.reserveCapacity(Int(n))
        for i in 0..<n {
            var row: [String?] = []
            row.reserveCapacity(Int(m))
            for j in 0..<m {
                row.append(PQgetisnull(r, i, j) == 1 ? nil : String(cString: PQgetvalue(r, i, j)))
            }
            out.append(row)
        }
        return out
    }

    /// libpq's message on one line: it breaks long ones with a newline and a tab.
    static func trimmed(_ p: UnsafePointer<CChar>?) -> String {
        guard let p else { return "" }
        var out = ""
        var blank = false
        for u in String(cString: p).unicodeScalars {
            if u == "\n" || u == "\t" || u == " " {
                blank = true
                continue
            }
            if blank && !out.isEmpty { out += " " }
            blank = false
            out.unicodeScalars.append(u)
        }
        return out
    }

    static func monotonicMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// What a connection string says, read with libpq's own parser (so the daemon and libpq agree).
public enum PGConnInfo {
    /// Whether `conninfo` sets `keyword` to a non-empty value; false when it does not parse.
    public static func has(_ conninfo: String, _ keyword: String) -> Bool {
        (try? options(conninfo))?[keyword].map { !$0.isEmpty } ?? false
    }

    /// The options `conninfo` sets, or libpq's reason for refusing it.
    public static func options(_ conninfo: String) throws(PGError) -> [String: String] {
        var err: UnsafeMutablePointer<CChar>? = nil
        guard let opts = PQconninfoParse(conninfo, &err) else {
            let m = err.map { PGConnection.trimmed($0) } ?? "cannot be parsed"
            if let err { PQfreemem(err) }
            throw PGError(m)
        }
        defer { PQconninfoFree(opts) }
        var out: [String: String] = [:]
        var p = opts
        while let k = p.pointee.keyword {
            if let v = p.pointee.val { out[String(cString: k)] = String(cString: v) }
            p += 1
        }
        return out
    }
}

private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers: [UnsafePointer<CChar>?] = copies.map { UnsafePointer($0) } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

private func withOptionalCStrings<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    let copies = strings.map { $0.map { strdup($0) } ?? nil }
    defer { copies.forEach { free($0) } }
    let pointers: [UnsafePointer<CChar>?] = copies.map { $0.map { UnsafePointer($0) } } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
