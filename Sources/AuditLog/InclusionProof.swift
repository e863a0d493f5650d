/// Evidence that one entry is in the log: the entry's bytes, its Merkle audit path and the
/// signed checkpoint whose root the path leads to. Checkable with only the log's public key.
public struct AuditInclusionProof: Sendable, Equatable {
    public var index: UInt64
    /// The entry's canonical JSON (the leaf data).
    public var entry: [UInt8]
    public var path: [SHA256Digest]
    /// The signed checkpoint note the proof is against.
    public var checkpointNote: String

    public init(index: UInt64, entry: [UInt8], path: [SHA256Digest], checkpointNote: String) {
        self.index = index; self.entry = entry; self.path = path; self.checkpointNote = checkpointNote
    }

    /// Builds the proof for entry `index` against the newest checkpoint of the state folder.
    public static func generate(stateDirectory dir: String, index: UInt64) throws(AuditError) -> AuditInclusionProof {
        guard let (note, cp) = try LogReader.newestCheckpoint(dir) else {
            throw .checkpoint("the log has no checkpoint yet; close or wait for the writer to sign one")
        }
        guard index < cp.size else {
            throw .checkpoint("entry \(index) is not covered by the newest checkpoint (size \(cp.size)); retry after the next checkpoint")
        }
        let base = try LogBase.read(dir)
        if let base, index < base.size {
            throw .checkpoint("entry \(index) is archived (this folder starts at entry \(base.size)): prove it from the archive that holds it (custos audit prove --state ARCHIVE)")
        }
        var tree = base.map { MerkleTree(base: $0.frontier) } ?? MerkleTree()
        var entry: [UInt8] = []
        let summary = try LogReader.scan(dir, origin: base?.size ?? 0) { i, payload in
            if i == index { entry = Array(payload) }
            tree.append(leafHash: MerkleHash.leaf(payload))
            return tree.size < cp.size
        }
        guard tree.size >= cp.size else { throw .truncatedBelowCheckpoint(entries: summary.entries, checkpointSize: cp.size) }
        guard let path = tree.inclusionProof(index: index, size: cp.size) else { throw .checkpoint("no proof for entry \(index)") }
        return AuditInclusionProof(index: index, entry: entry, path: path, checkpointNote: note)
    }

    /// Checks the checkpoint's signature, then that the entry hashes up to its root. Returns the
    /// checkpoint the entry is proven against.
    public func verify(publicKey: NoteVerifierKey) throws(AuditError) -> Checkpoint {
        let cp = try Checkpoint(signedNote: checkpointNote, ofLog: publicKey)
        guard MerkleVerify.inclusion(leafIndex: index, treeSize: cp.size, leafHash: MerkleHash.leaf(entry),
                                     proof: path, root: cp.root) else {
            throw .checkpoint("entry \(index) is not included in the checkpoint at size \(cp.size): the entry or the proof was altered")
        }
        return cp
    }
}
