/// Keys that carry their own well-mixed hash.
protocol CachedHashKey: Equatable {
    var cachedHash: Int { get }
}

extension EntityUID: CachedHashKey {
    @inline(__always) var cachedHash: Int { hash }
}

/// A principal anchor and a resource anchor, for policies constrained on both.
struct UIDPair: CachedHashKey {
    let first: EntityUID
    let second: EntityUID
    let cachedHash: Int

    init(_ a: EntityUID, _ b: EntityUID) {
        first = a; second = b
        // Mix so that (a, b) and (b, a) land apart.
        cachedHash = (a.hash &* 0x1E37_79B9_7F4A_7C15) ^ (b.hash &+ 0x632B_E59B_D9B4_E019)
    }

    @inline(__always) static func == (x: UIDPair, y: UIDPair) -> Bool {
        x.cachedHash == y.cachedHash && x.first == y.first && x.second == y.second
    }
}

typealias UIDMap<Value> = CachedHashMap<EntityUID, Value>

/// A hash table keyed by entity references that probes with the hash `EntityUID` already
/// carries. `Dictionary` re-hashes that value through a seeded SipHash on every look-up, which
/// was a large share of a decision's cost; the cached hash is itself a SipHash output, so it
/// is already well spread. Linear probing, power-of-two capacity, at most half full, no removal.
struct CachedHashMap<Key: CachedHashKey, Value>: @unchecked Sendable {
    // @unchecked: the storage is only mutated before the map is shared (built once, then read).
    private var keys: [Key?]
    private var values: [Value?]
    private var mask: Int
    private(set) var count = 0

    init(capacity: Int = 8) {
        var cap = 8
        while cap < capacity * 2 { cap <<= 1 }
        keys = Array(repeating: nil, count: cap)
        values = Array(repeating: nil, count: cap)
        mask = cap - 1
    }

    var isEmpty: Bool { count == 0 }

    @inline(__always) subscript(key: Key) -> Value? {
        var i = key.cachedHash & mask
        while let k = keys[i] {
            if k == key { return values[i] }
            i = (i + 1) & mask
        }
        return nil
    }

    /// Inserts or replaces; returns the previous value.
    @discardableResult
    mutating func updateValue(_ value: Value, forKey key: Key) -> Value? {
        if (count + 1) * 2 > keys.count { grow() }
        var i = key.cachedHash & mask
        while let k = keys[i] {
            if k == key {
                let old = values[i]
                values[i] = value
                return old
            }
            i = (i + 1) & mask
        }
        keys[i] = key
        values[i] = value
        count += 1
        return nil
    }

    private mutating func grow() {
        var bigger = CachedHashMap(capacity: keys.count)
        for i in keys.indices { if let k = keys[i] { bigger.updateValue(values[i]!, forKey: k) } }
        self = bigger
    }

    /// Every entry, in table order.
    var entries: [(key: Key, value: Value)] {
        var out: [(key: Key, value: Value)] = []
        out.reserveCapacity(count)
        for i in keys.indices { if let k = keys[i] { out.append((k, values[i]!)) } }
        return out
    }
}
