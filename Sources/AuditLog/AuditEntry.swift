import CustosJSON

/// The operating-system identity of whoever asked (from SO_PEERCRED), so each entry is
/// attributable even when the principal in the request is wrong.
public struct AuditCaller: Sendable, Hashable {
    public var uid: UInt32
    public var gid: UInt32
    public var pid: Int32
    public var user: String

    public init(uid: UInt32, gid: UInt32, pid: Int32, user: String) {
        self.uid = uid; self.gid = gid; self.pid = pid; self.user = user
    }
}

public enum AuditDecision: String, Sendable, Hashable {
    case allow, deny
}

/// One audit record. It names who, what, when, why and under which policy revision, and never a
/// clinical payload (the log is itself personal data). Its canonical JSON bytes are the Merkle
/// leaf data, so their layout is part of the log format: members in the fixed order below,
/// optional members omitted when absent, context keys sorted by UTF-8 bytes.
public struct AuditEntry: Sendable, Equatable {
    /// The entry's position in the log (its Merkle leaf index). Set by `AuditWriter.append`.
    public var seq: UInt64
    public var time: AuditTimestamp
    public var decisionID: String
    public var caller: AuditCaller
    /// The RPC method or administrative operation (e.g. "authorize", "policy.update").
    public var method: String
    public var principal: String
    public var action: String
    public var resource: String
    public var purpose: String?
    /// The legal basis (GDPR Art 6/9) or transfer basis the request relied on.
    public var basis: String?
    public var decision: AuditDecision
    /// Why it was allowed or denied: determining policy ids and guardrail findings.
    public var reasons: [String]
    public var policyRevision: String
    /// Hex SHA-256 of the request as received: ties the entry to the request without storing it.
    public var requestSHA256: String
    /// Request context the daemon allow-listed for audit; nil or empty when none.
    public var context: JSONObject?
    /// The end caller an HTTP front door was told about (`caller` is then the front door's
    /// peer): `account:alice`, `header x-forwarded-user:alice`. Absent for direct callers.
    public var onBehalfOf: String? = nil
    /// With `audit.record_requests`: what is needed to decide again (`ReplayInput`), or why
    /// this decision cannot be (`{"method", "not_replayable", ...}`). Last member of the entry,
    /// so it is inside the Merkle leaf like every other: the replay input is tamper-evident.
    public var request: JSON? = nil

    public init(seq: UInt64 = 0, time: AuditTimestamp = .now(), decisionID: String, caller: AuditCaller,
                method: String, principal: String, action: String, resource: String,
                purpose: String? = nil, basis: String? = nil, decision: AuditDecision, reasons: [String] = [],
                policyRevision: String, requestSHA256: String, context: JSONObject? = nil) {
        self.seq = seq; self.time = time; self.decisionID = decisionID; self.caller = caller
        self.method = method; self.principal = principal; self.action = action; self.resource = resource
        self.purpose = purpose; self.basis = basis; self.decision = decision; self.reasons = reasons
        self.policyRevision = policyRevision; self.requestSHA256 = requestSHA256; self.context = context
    }

    /// An entry made for an end caller a front door named (see `onBehalfOf`).
    public init(onBehalfOf: String?, _ entry: AuditEntry) {
        self = entry
        self.onBehalfOf = onBehalfOf
    }

    /// The canonical JSON bytes (the Merkle leaf data).
    public func canonicalJSON() -> [UInt8] {
        var w = JSONWriter(capacity: 512)
        Self.assemble(seq: seq, tail: encodedTail(), into: &w)
        return w.bytes
    }

    /// Everything after the seq member, so the writer can encode outside its lock and only
    /// prepend the sequence number once the entry has its place in the log. Every string member
    /// and every context value is stored bounded (see `AuditBound`), so no caller can make an
    /// entry exceed the record limit.
    func encodedTail() -> [UInt8] {
        var w = JSONWriter(capacity: 512)
        w.raw(",\"time\":\"")
        time.append(to: &w.bytes)
        w.raw("\",\"decision_id\":"); AuditBound.string(decisionID, &w)
        w.raw(",\"caller\":{\"uid\":"); w.int(Int64(caller.uid))
        w.raw(",\"gid\":"); w.int(Int64(caller.gid))
        w.raw(",\"pid\":"); w.int(Int64(caller.pid))
        w.raw(",\"user\":"); AuditBound.string(caller.user, &w)
        w.byte(UInt8(ascii: "}"))
        // Bounded where it is set (at most 256 bytes, refused rather than cut; see the gateway).
        if let onBehalfOf { w.raw(",\"on_behalf_of\":"); w.string(onBehalfOf) }
        w.raw(",\"method\":"); AuditBound.string(method, &w)
        w.raw(",\"principal\":"); AuditBound.string(principal, &w)
        w.raw(",\"action\":"); AuditBound.string(action, &w)
        w.raw(",\"resource\":"); AuditBound.string(resource, &w)
        if let purpose { w.raw(",\"purpose\":"); AuditBound.string(purpose, &w) }
        if let basis { w.raw(",\"basis\":"); AuditBound.string(basis, &w) }
        w.raw(",\"decision\":"); w.string(decision.rawValue)
        w.raw(",\"reasons\":[")
        for (i, r) in reasons.enumerated() {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            AuditBound.string(r, &w)
        }
        w.raw("],\"policy_revision\":"); AuditBound.string(policyRevision, &w)
        w.raw(",\"request_sha256\":"); AuditBound.string(requestSHA256, &w)
        if let context, !context.isEmpty {
            w.raw(",\"context\":")
            w.value(AuditBound.context(context))
        }
        // Bounded where it is made (the recorder stores a request too big as not replayable,
        // never cut short), and written canonical so one request has one leaf.
        if let request {
            w.raw(",\"request\":")
            w.value(canonicalized(request))
        }
        w.byte(UInt8(ascii: "}"))
        return w.bytes
    }

    static func assemble(seq: UInt64, tail: [UInt8], into w: inout JSONWriter) {
        w.raw("{\"seq\":")
        w.int(Int64(bitPattern: seq))
        w.bytes += tail
    }

    /// Reads an entry back from its canonical JSON.
    public init(canonicalJSON bytes: UnsafeRawBufferPointer) throws(AuditError) {
        let v: JSON
        do { v = try JSON.parse(bytes) } catch { throw .malformedEntry("entry is not JSON: \(error)") }
        func str(_ k: String) throws(AuditError) -> String {
            guard let s = v[k]?.stringValue else { throw .malformedEntry("entry member \"\(k)\" is missing or not a string") }
            return s
        }
        func int(_ o: JSON?, _ k: String) throws(AuditError) -> Int64 {
            guard let i = o?[k]?.intValue else { throw .malformedEntry("entry member \"\(k)\" is missing or not an integer") }
            return i
        }
        guard let t = AuditTimestamp(rfc3339: try str("time")) else { throw .malformedEntry("entry time is not RFC 3339 UTC") }
        guard let d = AuditDecision(rawValue: try str("decision")) else { throw .malformedEntry("entry decision is neither allow nor deny") }
        let c = v["caller"]
        guard let uid = UInt32(exactly: try int(c, "uid")), let gid = UInt32(exactly: try int(c, "gid")),
              let pid = Int32(exactly: try int(c, "pid")), let user = c?["user"]?.stringValue else {
            throw .malformedEntry("entry caller is malformed")
        }
        let seq = try int(v, "seq")
        guard seq >= 0 else { throw .malformedEntry("entry seq is negative") }
        self.init(seq: UInt64(seq), time: t, decisionID: try str("decision_id"),
                  caller: AuditCaller(uid: uid, gid: gid, pid: pid, user: user),
                  method: try str("method"), principal: try str("principal"), action: try str("action"),
                  resource: try str("resource"), purpose: v["purpose"]?.stringValue, basis: v["basis"]?.stringValue,
                  decision: d, reasons: (v["reasons"]?.arrayValue ?? []).compactMap(\.stringValue),
                  policyRevision: try str("policy_revision"), requestSHA256: try str("request_sha256"),
                  context: v["context"]?.objectValue)
        self.onBehalfOf = v["on_behalf_of"]?.stringValue
        self.request = v["request"]
    }

    public init(canonicalJSON bytes: [UInt8]) throws(AuditError) {
        let r = bytes.withUnsafeBytes { raw -> Result<AuditEntry, AuditError> in
            do throws(AuditError) { return .success(try AuditEntry(canonicalJSON: raw)) } catch { return .failure(error) }
        }
        self = try r.get()
    }
}

/// Objects with members sorted by UTF-8 bytes, recursively: one value, one byte string.
private func canonicalized(_ v: JSON) -> JSON {
    switch v {
    case .object(let o):
        let sorted = o.members
            .map { JSONObject.Member(key: $0.key, value: canonicalized($0.value)) }
            .sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        return .object(JSONObject(sorted))
    case .array(let a):
        return .array(a.map(canonicalized))
    default:
        return v
    }
}

/// How an entry keeps what a caller sent without letting the caller choose the entry's size.
///
/// A string member longer than `maxBytes` (UTF-8, before JSON escaping) is stored as its first
/// whole characters within `prefixBytes`, then `…[N bytes, sha256:HEX]`: N and HEX are the
/// length and SHA-256 of the whole value, so whoever holds the original can show it is the one
/// logged, and `request_sha256` still covers the full request. A context value whose canonical
/// JSON is longer than `maxBytes` becomes that form of its canonical JSON text (a string).
/// With every member bounded, an entry stays far below the 1 MiB record limit whatever the
/// caller sends; only the number of reasons (one per determining policy, set by the folder)
/// and of allow-listed context keys (set by the operator) can still add to it.
public enum AuditBound {
    public static let maxBytes = 1024
    public static let prefixBytes = 896

    /// The stored form of `s` (itself when short enough).
    public static func bounded(_ s: String) -> String {
        let n = s.utf8.count
        guard n > maxBytes else { return s }
        var w = JSONWriter(capacity: maxBytes)
        appendBounded(s, n, &w.bytes)
        return w.text
    }

    /// Writes `s` as a JSON string in its stored form.
    @inline(__always)
    static func string(_ s: String, _ w: inout JSONWriter) {
        let n = s.utf8.count
        if n <= maxBytes { w.string(s); return }
        var raw: [UInt8] = []
        raw.reserveCapacity(maxBytes)
        appendBounded(s, n, &raw)
        w.string(String(decoding: raw, as: UTF8.self))
    }

    private static func appendBounded(_ s: String, _ n: Int, _ out: inout [UInt8]) {
        let u = s.utf8
        var cut = prefixBytes
        // Back off to the start of a character: never store half of a UTF-8 sequence.
        while cut > 0, u[u.index(u.startIndex, offsetBy: cut)] & 0xC0 == 0x80 { cut -= 1 }
        out.append(contentsOf: u.prefix(cut))
        out.append(contentsOf: "\u{2026}[\(n) bytes, sha256:".utf8)
        out.append(contentsOf: SHA256Digest.hash(Array(u)).hex.utf8)
        out.append(UInt8(ascii: "]"))
    }

    /// The context as stored: canonical (members sorted by UTF-8 bytes at every depth), each
    /// top-level value bounded.
    static func context(_ o: JSONObject) -> JSON {
        guard case .object(let c) = canonicalized(.object(o)) else { return .object(o) }
        var members: [JSONObject.Member] = []
        members.reserveCapacity(c.count)
        for m in c.members {
            var vw = JSONWriter(capacity: 64)
            vw.value(m.value)
            // Keys are not bounded: only allow-listed keys (the operator's) and the fixed keys of
            // change details reach an entry's context.
            members.append(JSONObject.Member(key: m.key, value: vw.bytes.count > maxBytes ? .string(bounded(vw.text)) : m.value))
        }
        return .object(JSONObject(members))
    }
}
