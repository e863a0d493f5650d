import CustosJSON
import Glibc

/// Filters the log's entries. All given conditions must hold; strings match exactly, by
/// Unicode scalars (UTF-8 bytes), never by canonical equivalence.
///
/// How it stays fast at a million entries without an index: segments are memory-mapped and
/// scanned sequentially (the page cache and readahead do the I/O), and each record is first
/// tested with byte searches on its canonical JSON: the fixed-width UTC time sits at a fixed
/// place and compares as text, and every string condition must occur as the exact bytes
/// `"member":"value"` (canonical JSON has one spelling per value). Only records that pass the
/// prefilter, typically a handful, are parsed with jansson and checked exactly, which removes
/// false positives such as a context key that happens to share a member name.
public struct AuditQuery: Sendable {
    public var principal: String?
    public var resource: String?
    public var action: String?
    public var method: String?
    public var decisionID: String?
    public var decision: AuditDecision?
    /// Entries at or after this instant.
    public var since: AuditTimestamp?
    /// Entries strictly before this instant.
    public var until: AuditTimestamp?
    /// Stop after this many matches (oldest first).
    public var limit: Int?

    public init(principal: String? = nil, resource: String? = nil, action: String? = nil, method: String? = nil,
                decisionID: String? = nil, decision: AuditDecision? = nil, since: AuditTimestamp? = nil,
                until: AuditTimestamp? = nil, limit: Int? = nil) {
        self.principal = principal; self.resource = resource; self.action = action; self.method = method
        self.decisionID = decisionID; self.decision = decision; self.since = since; self.until = until
        self.limit = limit
    }

    /// The matching entries in log order. Reads the segments as they are; run the verifier to
    /// know whether they can be trusted.
    public func run(stateDirectory: String) throws(AuditError) -> [AuditEntry] {
        var out: [AuditEntry] = []
        try forEachMatch(stateDirectory: stateDirectory) { e, _ in out.append(e) }
        return out
    }

    /// Calls `body` with the canonical bytes of each matching entry, in log order, parsing only
    /// the entries the byte tests cannot settle. In canonical JSON a `"member":"value"` needle
    /// can only match real structure (a quote inside a string is escaped), and the top-level
    /// members have no namesakes except inside the allow-listed `context` and a recorded `request`; so for an entry
    /// without a context, passing the byte tests is matching. `jsonl` output needs no more.
    public func forEachMatchingRecord(stateDirectory: String,
                                      _ body: (UnsafeRawBufferPointer) -> Void) throws(AuditError) {
        let contextMember = Array(",\"context\":".utf8)
        // A recorded request (audit.record_requests) holds members of the same names too.
        let requestMember = Array(",\"request\":".utf8)
        try forEachMatch(stateDirectory: stateDirectory, exactWithoutParsing: { payload in
            !Self.contains(payload, contextMember) && !Self.contains(payload, requestMember)
        }) { _, payload in body(payload) }
    }

    /// Calls `body` with each matching entry and its canonical bytes, in log order, holding
    /// none of them: a broad query over a large log runs in constant memory.
    public func forEachMatch(stateDirectory: String,
                             _ body: (AuditEntry, UnsafeRawBufferPointer) -> Void) throws(AuditError) {
        try forEachMatch(stateDirectory: stateDirectory, exactWithoutParsing: nil) { e, payload in body(e!, payload) }
    }

    /// With `exactWithoutParsing`, entries it accepts after the byte tests are passed on
    /// unparsed (entry nil).
    private func forEachMatch(stateDirectory: String, exactWithoutParsing: ((UnsafeRawBufferPointer) -> Bool)?,
                              _ body: (AuditEntry?, UnsafeRawBufferPointer) -> Void) throws(AuditError) {
        let needles = prefilterNeedles()
        let sinceText = since.map { Array($0.rfc3339.utf8) }
        let untilText = until.map { Array($0.rfc3339.utf8) }
        var found = 0
        var parseError: AuditError? = nil
        let summary = try LogReader.scan(stateDirectory) { _, payload in
            if let limit, found >= limit { return false }
            if sinceText != nil || untilText != nil {
                guard let t = Self.timeField(payload) else { return true }
                if let s = sinceText, t.lexicographicallyPrecedes(s) { return true }
                if let u = untilText, !t.lexicographicallyPrecedes(u) { return true }
            }
            for n in needles where !Self.contains(payload, n) { return true }
            if let exact = exactWithoutParsing, exact(payload) {
                found += 1
                body(nil, payload)
                return true
            }
            do throws(AuditError) {
                let e = try AuditEntry(canonicalJSON: payload)
                if matches(e) {
                    found += 1
                    body(e, payload)
                }
                return true
            } catch {
                parseError = error
                return false
            }
        }
        if let parseError { throw parseError }
        if case .corrupt(let name, let offset, _, let reason)? = summary.issue {
            throw .corruptLog(path: stateDirectory + "/" + name, offset: offset, reason: reason)
        }
    }

    /// Exact check on a parsed entry.
    public func matches(_ e: AuditEntry) -> Bool {
        func eq(_ want: String?, _ have: String) -> Bool { want.map { $0.utf8.elementsEqual(have.utf8) } ?? true }
        return eq(principal, e.principal) && eq(resource, e.resource) && eq(action, e.action)
            && eq(method, e.method) && eq(decisionID, e.decisionID)
            && (decision.map { $0 == e.decision } ?? true)
            && (since.map { e.time >= $0 } ?? true) && (until.map { e.time < $0 } ?? true)
    }

    private func prefilterNeedles() -> [[UInt8]] {
        var out: [[UInt8]] = []
        func add(_ member: String, _ value: String?) {
            guard let value else { return }
            var w = JSONWriterShim()
            w.member(member, value)
            out.append(w.bytes)
        }
        add("principal", principal); add("resource", resource); add("action", action)
        add("method", method); add("decision_id", decisionID); add("decision", decision?.rawValue)
        return out
    }

    /// The 24 bytes of the time member. Canonical entries begin `{"seq":N,"time":"`.
    private static func timeField(_ p: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        let key = Array(",\"time\":\"".utf8)
        var i = 7
        while i < p.count, p[i] >= 0x30, p[i] <= 0x39 { i += 1 }
        guard i + key.count + 24 <= p.count else { return nil }
        for (j, c) in key.enumerated() where p[i + j] != c { return nil }
        let start = i + key.count
        return UnsafeRawBufferPointer(rebasing: p[start..<(start + 24)])
    }

    static func contains(_ hay: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
        // memchr for the first byte, memcmp for the rest (glibc's memmem needs _GNU_SOURCE).
        guard let base = hay.baseAddress, !needle.isEmpty else { return needle.isEmpty }
        return needle.withUnsafeBytes { n -> Bool in
            let first = Int32(n[0])
            var from = 0
            while hay.count - from >= n.count {
                guard let hit = memchr(base + from, first, hay.count - from - n.count + 1) else { return false }
                if memcmp(hit, n.baseAddress!, n.count) == 0 { return true }
                from = base.distance(to: UnsafeRawPointer(hit)) + 1
            }
            return false
        }
    }
}

/// `"member":"value"` exactly as `AuditEntry.canonicalJSON` writes it.
private struct JSONWriterShim {
    var bytes: [UInt8] = []
    mutating func member(_ key: String, _ value: String) {
        var w = JSONWriter()
        w.string(key)
        w.byte(UInt8(ascii: ":"))
        w.string(value)
        bytes = w.bytes
    }
}
