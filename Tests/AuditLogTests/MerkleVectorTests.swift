import AuditLog
import CustosJSON
import Foundation
import Testing

/// The shared vectors live beside the repository (`<repo>/../shared`), never inside it.
enum SharedVectors {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared/merkle-test-vectors/testdata")

    static var isPresent: Bool { FileManager.default.fileExists(atPath: root.path) }

    /// Relative paths of every JSON vector under `kind` ("inclusion" or "consistency").
    static func files(_ kind: String) -> [String] {
        let dir = root.appendingPathComponent(kind)
        guard let e = FileManager.default.enumerator(atPath: dir.path) else { return [] }
        var out: [String] = []
        while let p = e.nextObject() as? String { if p.hasSuffix(".json") { out.append(kind + "/" + p) } }
        return out.sorted()
    }

    /// Sizes and indices are quoted before parsing because some vectors use 2^64-1, beyond
    /// jansson's signed integers; `uint` reads them back.
    static func load(_ rel: String) throws -> JSON {
        let text = try String(contentsOf: root.appendingPathComponent(rel), encoding: .utf8)
        let re = try NSRegularExpression(pattern: #""(leafIdx|treeSize|size1|size2)": *([0-9]+)"#)
        let quoted = re.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text),
                                                 withTemplate: #""$1": "$2""#)
        return try JSON.parse(quoted)
    }
}

func uint(_ v: JSON?) -> UInt64 { v?.stringValue.flatMap { UInt64($0) } ?? 0 }

func b64(_ v: JSON?) -> [UInt8] {
    guard let s = v?.stringValue else { return [] }
    return Base64.decode(s) ?? [0xFF]  // undecodable text must not look like a valid hash
}

func b64List(_ v: JSON?) -> [[UInt8]] { (v?.arrayValue ?? []).map { b64($0) } }

@Suite struct MerkleVectorTests {
    static let inclusionFiles = SharedVectors.files("inclusion")
    static let consistencyFiles = SharedVectors.files("consistency")

    @Test func sharedVectorsArePresentOrTheSuiteSaysWhy() {
        if !SharedVectors.isPresent {
            print("skipping Merkle vectors: \(SharedVectors.root.path) is absent (../shared not checked out)")
            return
        }
        #expect(Self.inclusionFiles.count > 50)
        #expect(Self.consistencyFiles.count > 50)
    }

    @Test(arguments: inclusionFiles)
    func inclusionVectorIsAcceptedExactlyWhenValid(_ rel: String) throws {
        let v = try SharedVectors.load(rel)
        let ok = MerkleVerify.inclusion(
            leafIndex: uint(v["leafIdx"]), treeSize: uint(v["treeSize"]),
            leafHash: b64(v["leafHash"]), proof: b64List(v["proof"]), root: b64(v["root"]))
        #expect(ok == !(v["wantErr"]?.boolValue ?? true), "\(rel): \(v["desc"]?.stringValue ?? "")")
    }

    @Test(arguments: consistencyFiles)
    func consistencyVectorIsAcceptedExactlyWhenValid(_ rel: String) throws {
        let v = try SharedVectors.load(rel)
        let ok = MerkleVerify.consistency(
            size1: uint(v["size1"]), size2: uint(v["size2"]),
            root1: b64(v["root1"]), root2: b64(v["root2"]), proof: b64List(v["proof"]))
        #expect(ok == !(v["wantErr"]?.boolValue ?? true), "\(rel): \(v["desc"]?.stringValue ?? "")")
    }

    static let eightLeaves: [[UInt8]] = ["", "00", "10", "2021", "3031", "40414243",
        "5051525354555657", "606162636465666768696a6b6c6d6e6f"].map { Hex.decode($0)! }

    @Test func eightLeafTreeHasTheRFCRoot() {
        let tree = MerkleTree(leafHashes: Self.eightLeaves.map { MerkleHash.leaf($0) })
        #expect(tree.root.hex == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
        var frontier = MerkleFrontier()
        for l in Self.eightLeaves { frontier.append(leafHash: MerkleHash.leaf(l)) }
        #expect(frontier.root == tree.root)
    }

    @Test func emptyTreeRootIsHashOfEmptyString() {
        #expect(MerkleTree().root.hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    /// Every generated proof for every index and size pair up to 40 leaves verifies, and the
    /// frontier's root agrees with the full tree at every size.
    @Test func generatedProofsVerifyForAllSmallTrees() {
        var tree = MerkleTree()
        var frontier = MerkleFrontier()
        for i in 0..<40 {
            let h = MerkleHash.leaf([UInt8(i), 7])
            tree.append(leafHash: h)
            frontier.append(leafHash: h)
            #expect(frontier.root == tree.root)
        }
        for n in UInt64(1)...40 {
            let root = tree.root(size: n)
            for m in UInt64(0)..<n {
                let p = tree.inclusionProof(index: m, size: n)!
                #expect(MerkleVerify.inclusion(leafIndex: m, treeSize: n, leafHash: tree.leafHash(at: m), proof: p, root: root))
                #expect(!MerkleVerify.inclusion(leafIndex: m, treeSize: n, leafHash: MerkleHash.leaf([0xEE]), proof: p, root: root))
            }
            for m in UInt64(1)...n {
                let p = tree.consistencyProof(from: m, to: n)!
                #expect(MerkleVerify.consistency(size1: m, size2: n, root1: tree.root(size: m), root2: root, proof: p))
                if m < n {
                    #expect(!MerkleVerify.consistency(size1: m, size2: n, root1: MerkleHash.leaf([1]), root2: root, proof: p))
                }
            }
        }
    }
}
