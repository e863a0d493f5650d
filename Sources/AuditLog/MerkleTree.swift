import COpenSSL

/// RFC 9162 section 2.1 hashing: domain-separated leaves and nodes so a leaf can never be passed
/// off as an interior node (second-preimage resistance).
public enum MerkleHash {
    /// SHA-256 of the empty string: the root of a tree with no leaves.
    public static let empty: SHA256Digest = SHA256Digest.hash([])

    public static func leaf(_ data: UnsafeRawBufferPointer) -> SHA256Digest {
        SHA256Digest.hash(prefix: 0x00, data)
    }

    public static func leaf(_ data: [UInt8]) -> SHA256Digest {
        data.withUnsafeBytes { leaf($0) }
    }

    public static func node(_ left: SHA256Digest, _ right: SHA256Digest) -> SHA256Digest {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 65) { tmp in
            tmp[0] = 0x01
            left.withBytes { l in for i in 0..<32 { tmp[1 + i] = l[i] } }
            right.withBytes { r in for i in 0..<32 { tmp[33 + i] = r[i] } }
            return SHA256Digest.hash(UnsafeRawBufferPointer(tmp))
        }
    }
}

/// An in-memory Merkle tree over leaf hashes that keeps every complete level, so the hash of any
/// aligned power-of-two subtree is a lookup and proofs cost O(log² n) hashes instead of O(n).
///
/// A tree can start from a `base`: the frontier of its first `base` leaves (an archived prefix
/// of the log, see `LogBase`), without those leaves. Every root, proof and leaf at or beyond the
/// base is then available: each perfect subtree that such a computation needs and that lies
/// wholly before the base is one of the frontier's nodes.
public struct MerkleTree: Sendable {
    /// levels[k][i - offsets[k]] is the hash of the perfect subtree of 2^k leaves starting at
    /// leaf i·2^k; offsets are 0 without a base.
    private var levels: [[SHA256Digest]] = [[]]
    private var offsets: [Int] = [0]
    /// Leaves before this are known only through the frontier.
    public let base: UInt64

    public init() { base = 0 }

    public init<S: Sequence>(leafHashes: S) where S.Element == SHA256Digest {
        base = 0
        for h in leafHashes { append(leafHash: h) }
    }

    /// A tree of `frontier.size` leaves known only by their frontier, to be extended.
    public init(base frontier: MerkleFrontier) {
        base = frontier.size
        let n = Int(frontier.size)
        guard n > 0 else { return }
        let height = Int.bitWidth - n.leadingZeroBitCount
        levels = Array(repeating: [], count: height)
        offsets = Array(repeating: 0, count: height)
        var nodes = frontier.nodes[...]
        for k in stride(from: height - 1, through: 0, by: -1) {
            if (n >> k) & 1 == 1 {
                offsets[k] = (n >> k) - 1
                levels[k].append(nodes.removeFirst().hash)
            } else {
                offsets[k] = n >> k
            }
        }
    }

    public var size: UInt64 { UInt64(offsets[0] + levels[0].count) }

    /// The hash of leaf `index` (at or beyond the base).
    public func leafHash(at index: UInt64) -> SHA256Digest { levels[0][Int(index) - offsets[0]] }

    public mutating func append(leafHash: SHA256Digest) {
        levels[0].append(leafHash)
        var k = 0
        while (offsets[k] + levels[k].count) % 2 == 0 {
            let n = levels[k].count
            let parent = MerkleHash.node(levels[k][n - 2], levels[k][n - 1])
            if levels.count == k + 1 {
                levels.append([])
                offsets.append((offsets[k] + n) / 2 - 1)
            }
            levels[k + 1].append(parent)
            k += 1
        }
    }

    /// The root of the first `size` leaves (the tree as it was at that size), `base` at least.
    public func root(size: UInt64) -> SHA256Digest {
        precondition(size <= self.size && size >= base, "root(size:) outside the tree")
        return hash(0, Int(size))
    }

    public var root: SHA256Digest { root(size: size) }

    /// RFC 9162 2.1.3.1 PATH(index, D[0:size]); nil for a leaf before the base.
    public func inclusionProof(index: UInt64, size: UInt64) -> [SHA256Digest]? {
        guard index < size, size <= self.size, index >= base else { return nil }
        var out: [SHA256Digest] = []
        path(Int(index), 0, Int(size), &out)
        return out
    }

    /// RFC 9162 2.1.4.1 PROOF(old, D[0:new]); empty when the sizes are equal; nil when `old`
    /// is before the base.
    public func consistencyProof(from old: UInt64, to new: UInt64) -> [SHA256Digest]? {
        guard old > 0, old <= new, new <= self.size, old >= base else { return nil }
        if old == new { return [] }
        var out: [SHA256Digest] = []
        subproof(Int(old), 0, Int(new), true, &out)
        return out
    }

    private func hash(_ lo: Int, _ hi: Int) -> SHA256Digest {
        let n = hi - lo
        if n == 0 { return MerkleHash.empty }
        if n & (n - 1) == 0, lo % n == 0 {
            let k = n.trailingZeroBitCount
            let i = lo / n - offsets[k]
            // Unreachable through the public methods, which keep sizes and indices at or beyond
            // the base; a wrong hash can only make a check fail, never pass.
            guard i >= 0 else { return SHA256Digest(bytes: [UInt8](repeating: 0, count: 32))! }
            return levels[k][i]
        }
        let k = largestPowerOfTwo(below: n)
        return MerkleHash.node(hash(lo, lo + k), hash(lo + k, hi))
    }

    // The proof lists siblings leaf-upwards, so the recursion appends after descending.
    private func path(_ m: Int, _ lo: Int, _ hi: Int, _ out: inout [SHA256Digest]) {
        let n = hi - lo
        if n <= 1 { return }
        let k = largestPowerOfTwo(below: n)
        if m < k {
            path(m, lo, lo + k, &out)
            out.append(hash(lo + k, hi))
        } else {
            path(m - k, lo + k, hi, &out)
            out.append(hash(lo, lo + k))
        }
    }

    private func subproof(_ m: Int, _ lo: Int, _ hi: Int, _ complete: Bool, _ out: inout [SHA256Digest]) {
        let n = hi - lo
        if m == n {
            if !complete { out.append(hash(lo, hi)) }
            return
        }
        let k = largestPowerOfTwo(below: n)
        if m <= k {
            subproof(m, lo, lo + k, complete, &out)
            out.append(hash(lo + k, hi))
        } else {
            subproof(m - k, lo + k, hi, false, &out)
            out.append(hash(lo, lo + k))
        }
    }
}

/// The right edge of a tree: one root per perfect subtree, largest first. Enough to extend the
/// tree and compute its root in O(log n) memory, which is all the writer needs.
public struct MerkleFrontier: Sendable {
    public private(set) var nodes: [(hash: SHA256Digest, height: Int)] = []
    public private(set) var size: UInt64 = 0

    public init() {}

    /// The frontier of a tree of `size` leaves from its nodes' hashes, largest subtree first:
    /// one per bit set in `size`. Nil when the count does not match.
    public init?(size: UInt64, hashes: [SHA256Digest]) {
        guard hashes.count == size.nonzeroBitCount else { return nil }
        var i = 0
        for k in stride(from: UInt64.bitWidth - 1, through: 0, by: -1) where (size >> UInt64(k)) & 1 == 1 {
            nodes.append((hashes[i], k))
            i += 1
        }
        self.size = size
    }

    public mutating func append(leafHash: SHA256Digest) {
        var h = leafHash
        var height = 0
        while let last = nodes.last, last.height == height {
            nodes.removeLast()
            h = MerkleHash.node(last.hash, h)
            height += 1
        }
        nodes.append((h, height))
        size += 1
    }

    public var root: SHA256Digest {
        guard var r = nodes.last?.hash else { return MerkleHash.empty }
        for i in stride(from: nodes.count - 2, through: 0, by: -1) { r = MerkleHash.node(nodes[i].hash, r) }
        return r
    }
}

/// Proof checks from RFC 9162 2.1.3.2 and 2.1.4.2, which need only hashes, never the log.
public enum MerkleVerify {
    public static func inclusion(leafIndex: UInt64, treeSize: UInt64, leafHash: [UInt8],
                                 proof: [[UInt8]], root: [UInt8]) -> Bool {
        guard let leaf = SHA256Digest(bytes: leafHash), let r = SHA256Digest(bytes: root) else { return false }
        var path: [SHA256Digest] = []
        for p in proof {
            guard let d = SHA256Digest(bytes: p) else { return false }
            path.append(d)
        }
        return inclusion(leafIndex: leafIndex, treeSize: treeSize, leafHash: leaf, proof: path, root: r)
    }

    public static func inclusion(leafIndex: UInt64, treeSize: UInt64, leafHash: SHA256Digest,
                                 proof: [SHA256Digest], root: SHA256Digest) -> Bool {
        guard leafIndex < treeSize else { return false }
        var fn = leafIndex, sn = treeSize - 1
        var r = leafHash
        for p in proof {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                r = MerkleHash.node(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 { fn >>= 1; sn >>= 1 }
                }
            } else {
                r = MerkleHash.node(r, p)
            }
            fn >>= 1; sn >>= 1
        }
        return sn == 0 && r == root
    }

    /// Roots are taken as raw bytes because equal sizes compare roots byte for byte (as the
    /// reference verifier does) and a checkpoint of size 0 proves nothing about a later tree.
    public static func consistency(size1: UInt64, size2: UInt64, root1: [UInt8], root2: [UInt8],
                                   proof: [[UInt8]]) -> Bool {
        guard size1 > 0, size1 <= size2 else { return false }
        if size1 == size2 { return proof.isEmpty && root1 == root2 }
        guard let r1 = SHA256Digest(bytes: root1), let r2 = SHA256Digest(bytes: root2) else { return false }
        var path: [SHA256Digest] = []
        for p in proof {
            guard let d = SHA256Digest(bytes: p) else { return false }
            path.append(d)
        }
        return consistency(size1: size1, size2: size2, root1: r1, root2: r2, proof: path)
    }

    public static func consistency(size1: UInt64, size2: UInt64, root1: SHA256Digest, root2: SHA256Digest,
                                   proof: [SHA256Digest]) -> Bool {
        guard size1 > 0, size1 <= size2 else { return false }
        if size1 == size2 { return proof.isEmpty && root1 == root2 }
        guard !proof.isEmpty else { return false }
        var path = proof
        if size1 & (size1 - 1) == 0 { path.insert(root1, at: 0) }
        var fn = size1 - 1, sn = size2 - 1
        while fn & 1 == 1 { fn >>= 1; sn >>= 1 }
        var fr = path[0], sr = path[0]
        for c in path.dropFirst() {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                fr = MerkleHash.node(c, fr)
                sr = MerkleHash.node(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 { fn >>= 1; sn >>= 1 }
                }
            } else {
                sr = MerkleHash.node(sr, c)
            }
            fn >>= 1; sn >>= 1
        }
        return fr == root1 && sr == root2 && sn == 0
    }
}

@inline(__always) func largestPowerOfTwo(below n: Int) -> Int {
    // n >= 2 here: the largest power of two strictly smaller than n.
    1 << (Int.bitWidth - 1 - (n - 1).leadingZeroBitCount)
}
