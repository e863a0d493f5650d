/// A direct reader for the plain JSON nearly every request line and entities file is written
/// in: ASCII strings without escapes, integers of at most 18 digits, objects without repeated
/// keys, little nesting. It builds Cedar values as it reads, with no parse tree in between
/// (jansson's tree and its conversion were a third of a whole-process batch, and most of the
/// memory and time of loading entities). It accepts only texts that jansson accepts, and reads
/// them to the same request or entities; anything else (an escape, a byte outside ASCII in a
/// string, a real number, `null`, a repeated key, deep nesting, any error) makes it give up,
/// and the caller takes the general path, which words every error.
package struct PlainJSONScanner {
    private let b: UnsafeRawBufferPointer
    private var i = 0
    private var depth = 0
    /// Records wider than this are read by the general path (see `members`).
    package static let maxScannedFields = 64
    /// Far below jansson's own limit (2048); deeper texts take the general path.
    private static let maxDepth = 32

    init(_ bytes: UnsafeRawBufferPointer) { b = bytes }

    package static func request(_ bytes: UnsafeRawBufferPointer) -> Request? {
        var s = PlainJSONScanner(bytes)
        return s.request()
    }

    /// An entities file: `[{"uid", "attrs", "parents", "tags"?}, ...]`, as `Entity(json:)`
    /// reads each element.
    package static func entities(_ bytes: UnsafeRawBufferPointer) -> [Entity]? {
        var s = PlainJSONScanner(bytes)
        guard let out = s.entities() else { return nil }
        s.skipSpace()
        return s.i == s.b.count ? out : nil
    }

    private mutating func entities() -> [Entity]? {
        guard take(0x5B) else { return nil }  // [
        var out: [Entity] = []
        if take(0x5D) { return out }
        repeat {
            guard let e = entity() else { return nil }
            out.append(e)
        } while take(0x2C)
        return take(0x5D) ? out : nil
    }

    private mutating func entity() -> Entity? {
        guard take(0x7B) else { return nil }
        var uid: EntityUID?, attrs: CedarRecord?, parents: [EntityUID]?, tags: CedarRecord?
        if !take(0x7D) {
            repeat {
                guard let key = string(), take(0x3A) else { return nil }
                switch key.count {
                case 3 where same(key, "uid"):
                    guard uid == nil, let v = self.uid() else { return nil }
                    uid = v
                case 4 where same(key, "tags"):
                    guard tags == nil, take(0x7B), let v = members() else { return nil }
                    tags = v
                case 5 where same(key, "attrs"):
                    guard attrs == nil, take(0x7B), let v = members() else { return nil }
                    attrs = v
                case 7 where same(key, "parents"):
                    guard parents == nil, take(0x5B) else { return nil }
                    var ps: [EntityUID] = []
                    if !take(0x5D) {
                        repeat {
                            guard let p = self.uid() else { return nil }
                            ps.append(p)
                        } while take(0x2C)
                        guard take(0x5D) else { return nil }
                    }
                    parents = ps
                default:
                    return nil
                }
            } while take(0x2C)
            guard take(0x7D) else { return nil }
        }
        guard let uid, let attrs, let parents else { return nil }
        return Entity(uid: uid, attrs: attrs, parents: parents, tags: tags ?? CedarRecord())
    }

    private mutating func request() -> Request? {
        guard take(0x7B) else { return nil }  // {
        var p: EntityUID?, a: EntityUID?, r: EntityUID?, ctx: CedarRecord?
        if !take(0x7D) {
            repeat {
                guard let key = string(), take(0x3A) else { return nil }
                switch key.count {
                case 6 where same(key, "action"):
                    guard a == nil, let v = uid() else { return nil }
                    a = v
                case 7 where same(key, "context"):
                    guard ctx == nil, take(0x7B), let v = members() else { return nil }
                    ctx = v
                case 8 where same(key, "resource"):
                    guard r == nil, let v = uid() else { return nil }
                    r = v
                case 9 where same(key, "principal"):
                    guard p == nil, let v = uid() else { return nil }
                    p = v
                default:
                    return nil
                }
            } while take(0x2C)
            guard take(0x7D) else { return nil }
        }
        skipSpace()
        guard i == b.count, let p, let a, let r else { return nil }
        return Request(principal: p, action: a, resource: r, context: ctx ?? CedarRecord())
    }

    // MARK: - Values

    private mutating func value() -> Value? {
        skipSpace()
        guard i < b.count else { return nil }
        switch b[i] {
        case 0x22: return string().map { .string(text($0)) }
        case 0x74: return literal("true") ? .bool(true) : nil
        case 0x66: return literal("false") ? .bool(false) : nil
        case 0x2D, 0x30...0x39: return long().map { .long($0) }
        case 0x5B:  // [
            i += 1
            guard enter() else { return nil }
            defer { depth -= 1 }
            var out: [Value] = []
            if take(0x5D) { return .set(CedarSet(out)) }
            repeat {
                guard let v = value() else { return nil }
                out.append(v)
            } while take(0x2C)
            guard take(0x5D) else { return nil }
            return .set(CedarSet(out))
        case 0x7B:  // {
            i += 1
            guard enter() else { return nil }
            defer { depth -= 1 }
            // `{"__entity": ...}` and `{"__extn": ...}` are escapes only as the sole key; with
            // other keys they would be records, which this reader leaves to the general path.
            let mark = i
            if let key = string(), take(0x3A) {
                if same(key, "__entity") {
                    guard let u = uid(), take(0x7D) else { return nil }
                    return .entity(u)
                }
                if same(key, "__extn") {
                    guard let v = extensionValue(), take(0x7D) else { return nil }
                    return v
                }
            }
            i = mark
            return members().map { .record($0) }
        default:
            return nil
        }
    }

    /// The members of an object whose `{` was read, up to its `}`.
    private mutating func members() -> CedarRecord? {
        var fields: [CedarRecord.Field] = []
        if take(0x7D) { return CedarRecord(fields: fields) }
        repeat {
            guard let key = string(), take(0x3A), let v = value() else { return nil }
            let f = CedarRecord.Field(key: text(key), value: v)
            // jansson refuses a repeated key; the general path says so. The search is linear,
            // so a record too wide for it to stay cheap goes to the general path as well (jansson
            // finds repeats by hashing), rather than costing quadratic time on a wide record.
            guard fields.count < Self.maxScannedFields else { return nil }
            for g in fields where g.name == f.name { return nil }
            fields.append(f)
        } while take(0x2C)
        guard take(0x7D) else { return nil }
        return CedarRecord(fields: fields)
    }

    /// `{"type": T, "id": I}` in either order.
    private mutating func uid() -> EntityUID? {
        guard take(0x7B) else { return nil }
        var type: Range<Int>?, id: Range<Int>?
        for n in 0..<2 {
            if n == 1 { guard take(0x2C) else { return nil } }
            guard let key = string(), take(0x3A), let v = string() else { return nil }
            if same(key, "type"), type == nil { type = v } else if same(key, "id"), id == nil { id = v } else { return nil }
        }
        guard take(0x7D), let type, let id else { return nil }
        let t = text(type)
        guard EntityUID.isValidTypeName(t) else { return nil }
        return EntityUID(type: EntityType(t), id: text(id))
    }

    /// `{"fn": F, "arg": A}` in either order, applied as the general path applies it.
    private mutating func extensionValue() -> Value? {
        guard take(0x7B) else { return nil }
        var fn: ExtensionFunction?, arg: Value?
        for n in 0..<2 {
            if n == 1 { guard take(0x2C) else { return nil } }
            guard let key = string(), take(0x3A) else { return nil }
            if same(key, "fn"), fn == nil {
                guard let f = string(), let e = ExtensionFunction(rawValue: text(f)) else { return nil }
                fn = e
            } else if same(key, "arg"), arg == nil {
                guard let v = value() else { return nil }
                arg = v
            } else {
                return nil
            }
        }
        guard take(0x7D), let fn, let arg, fn.arity == 1 else { return nil }
        return try? ExtensionFunction.apply(fn, [arg])
    }

    // MARK: - Tokens

    @inline(__always) private mutating func enter() -> Bool {
        depth += 1
        return depth <= Self.maxDepth
    }

    @inline(__always) mutating func skipSpace() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    @inline(__always) private mutating func take(_ c: UInt8) -> Bool {
        skipSpace()
        guard i < b.count, b[i] == c else { return false }
        i += 1
        return true
    }

    /// A string of printable ASCII without escapes: the range of its contents.
    private mutating func string() -> Range<Int>? {
        guard take(0x22) else { return nil }
        let start = i
        while i < b.count {
            let c = b[i]
            if c == 0x22 { i += 1; return start..<(i - 1) }
            guard c >= 0x20, c < 0x7F, c != 0x5C else { return nil }
            i += 1
        }
        return nil
    }

    /// An integer without sign tricks: `-`? then `0` or a digit run of at most 18 digits
    /// not starting with 0, not followed by a fraction or exponent.
    private mutating func long() -> Int64? {
        var negative = false
        if b[i] == 0x2D { negative = true; i += 1 }
        let start = i
        var v: Int64 = 0
        while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
            guard i - start < 18 else { return nil }  // so that v cannot overflow
            v = v * 10 + Int64(b[i] - 0x30)
            i += 1
        }
        let n = i - start
        guard n > 0, !(n > 1 && b[start] == 0x30), !(negative && v == 0) else { return nil }
        if i < b.count, b[i] == 0x2E || b[i] == 0x65 || b[i] == 0x45 { return nil }
        return negative ? -v : v
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard i + n <= b.count else { return false }
        let ok = word.withUTF8Buffer { w in (0..<n).allSatisfy { b[i + $0] == w[$0] } }
        if ok { i += n }
        return ok
    }

    @inline(__always) private func same(_ r: Range<Int>, _ word: StaticString) -> Bool {
        word.withUTF8Buffer { w in
            guard w.count == r.count else { return false }
            for k in 0..<w.count where b[r.lowerBound + k] != w[k] { return false }
            return true
        }
    }

    @inline(__always) private func text(_ r: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: b[r]), as: UTF8.self)
    }
}
