import AuditLog
import CustosJSON
import Foundation

/// `custos audit prove` and `custos audit verify-proof`: evidence for one entry that a third
/// party can check with the verifier key alone, without the log.
///
/// Proof file (JSON): {"index": N, "size": S, "leaf_hash": base64, "entry": "<the entry's
/// canonical JSON, as a string so its exact bytes survive>", "path": [base64, ...],
/// "checkpoint": "<the signed checkpoint note>"}.
enum AuditProveCommand {
    static let spec = CommandSpec(
        name: "audit",
        summary: "Print an inclusion proof for one entry against the latest signed checkpoint.",
        usage: "custos audit prove (--decision-id ID | --index N) [--state DIR] [--out FILE]",
        options: [
            OptionSpec(name: "decision-id", valueName: "ID", help: "The entry with this decision_id (the first, if several)."),
            OptionSpec(name: "index", valueName: "N", help: "The entry at this position (its seq)."),
            AuditOptions.state,
            OptionSpec(name: "out", valueName: "FILE", help: "Write the proof to FILE instead of standard output."),
        ],
        details: """
        The proof is JSON: index, size (of the checkpoint), leaf_hash (base64 SHA-256 of 0x00 ||
        entry), entry (the canonical entry as a JSON string), path (the RFC 9162 audit path,
        base64 hashes, leaf upwards) and checkpoint (the signed note). Check it anywhere with
        'custos audit verify-proof --pubkey FILE PROOF'.
        Exit status: 0 proof written, 1 no such entry or the entry is not yet covered by a
        checkpoint (retry after the next one), 2 usage error or unreadable log.
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        guard AuditOptions.operands(args).isEmpty else { throw UsageError(message: "usage: \(spec.usage)") }
        let dir = try AuditOptions.existingLogDirectory(args)
        let index: UInt64
        switch (args.value("decision-id"), args.value("index")) {
        case (let id?, nil):
            let found: [AuditEntry]
            do { found = try AuditQuery(decisionID: id, limit: 1).run(stateDirectory: dir) } catch {
                throw UsageError(message: error.description)
            }
            guard let e = found.first else {
                IO.printError("no entry with decision_id '\(id)' in \(dir)")
                return 1
            }
            index = e.seq
        case (nil, let n?):
            guard let i = UInt64(n) else { throw UsageError(message: "--index expects a non-negative whole number, got '\(n)'") }
            index = i
        default:
            throw UsageError(message: "give exactly one of --decision-id ID or --index N")
        }

        let proof: AuditInclusionProof
        do { proof = try AuditInclusionProof.generate(stateDirectory: dir, index: index) } catch {
            IO.printError(error.description)
            if case .checkpoint = error { return 1 }
            return 2
        }
        let size: UInt64
        do {
            guard let split = proof.checkpointNote.range(of: "\n\n") else { throw AuditError.checkpoint("no signature block") }
            size = try Checkpoint(body: String(proof.checkpointNote[..<split.lowerBound]) + "\n").size
        } catch {
            throw UsageError(message: "the latest checkpoint cannot be read: \(error)")
        }
        let text = AuditProofFile.encode(proof, size: size)
        if let path = args.value("out") {
            guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
                throw UsageError(message: "\(path): cannot be written")
            }
        } else {
            let out = StdoutBuffer()
            out.write(text)
            out.flush()
        }
        return 0
    }
}

enum AuditVerifyProofCommand {
    static let spec = CommandSpec(
        name: "audit",
        summary: "Check an inclusion proof from 'custos audit prove' with only the log's verifier key.",
        usage: "custos audit verify-proof --pubkey FILE [PROOF_FILE|-]",
        options: [
            OptionSpec(name: "pubkey", valueName: "FILE", help: "The log's verifier key line, obtained out of band (required)."),
        ],
        details: """
        Reads the proof from PROOF_FILE, or standard input when it is '-' or absent. Checks the
        checkpoint's signature, that the entry hashes to leaf_hash, that the entry's seq is the
        proof's index, and that the audit path leads from the leaf to the signed root.
        Exit status: 0 the proof is valid (prints the entry), 1 invalid (prints why), 2 usage
        error or unreadable key.
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        let operands = AuditOptions.operands(args)
        guard operands.count <= 1 else { throw UsageError(message: "usage: \(spec.usage)") }
        let key = try AuditOptions.publicKey(file: try args.required("pubkey"))
        let source = operands.first ?? "-"
        let text: String
        if source == "-" {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            text = try IO.readText(source)
        }
        let out = StdoutBuffer()
        defer { out.flush() }
        do {
            let (proof, size, leafHash) = try AuditProofFile.decode(text)
            guard MerkleHash.leaf(proof.entry) == leafHash else {
                throw AuditError.checkpoint("leaf_hash is not the hash of the entry: the entry or the proof was altered")
            }
            let entry = try AuditEntry(canonicalJSON: proof.entry)
            guard entry.seq == proof.index else {
                throw AuditError.checkpoint("the entry carries seq \(entry.seq) but the proof is for index \(proof.index)")
            }
            let cp = try proof.verify(publicKey: key)
            guard cp.size == size else {
                throw AuditError.checkpoint("the proof says size \(size) but its checkpoint is at size \(cp.size)")
            }
            out.write("OK: entry \(proof.index) (decision_id \(entry.decisionID)) is in log \(cp.origin) at size \(cp.size), root \(cp.root.base64)\n")
            out.write(proof.entry + [0x0A])
            return 0
        } catch {
            out.write("INVALID: \(error)\n")
            return 1
        }
    }
}

/// The JSON form of an inclusion proof.
enum AuditProofFile {
    static func encode(_ p: AuditInclusionProof, size: UInt64) -> String {
        var w = JSONWriter(capacity: 2048)
        w.raw("{\"index\":"); w.int(Int64(bitPattern: p.index))
        w.raw(",\"size\":"); w.int(Int64(bitPattern: size))
        w.raw(",\"leaf_hash\":"); w.string(MerkleHash.leaf(p.entry).base64)
        w.raw(",\"entry\":"); w.string(String(decoding: p.entry, as: UTF8.self))
        w.raw(",\"path\":[")
        for (i, h) in p.path.enumerated() {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            w.string(h.base64)
        }
        w.raw("],\"checkpoint\":"); w.string(p.checkpointNote)
        w.raw("}\n")
        return w.text
    }

    static func decode(_ text: String) throws(AuditError) -> (AuditInclusionProof, size: UInt64, leafHash: SHA256Digest) {
        let v: JSON
        do { v = try JSON.parse(text) } catch { throw .checkpoint("the proof is not JSON: \(error)") }
        func member(_ k: String) throws(AuditError) -> JSON {
            guard let m = v[k] else { throw .checkpoint("the proof has no \"\(k)\" member") }
            return m
        }
        func digest(_ j: JSON, _ what: String) throws(AuditError) -> SHA256Digest {
            guard let s = j.stringValue, let raw = Base64.decode(s), let d = SHA256Digest(bytes: raw) else {
                throw .checkpoint("\(what) is not the base64 of a 32-byte hash")
            }
            return d
        }
        guard let index = try member("index").intValue, index >= 0 else { throw .checkpoint("index is not a non-negative integer") }
        guard let size = try member("size").intValue, size >= 0 else { throw .checkpoint("size is not a non-negative integer") }
        let leaf = try digest(try member("leaf_hash"), "leaf_hash")
        guard let entry = try member("entry").stringValue else { throw .checkpoint("entry is not a string") }
        guard let pathItems = try member("path").arrayValue else { throw .checkpoint("path is not an array") }
        var path: [SHA256Digest] = []
        for (i, item) in pathItems.enumerated() { path.append(try digest(item, "path[\(i)]")) }
        guard let note = try member("checkpoint").stringValue else { throw .checkpoint("checkpoint is not a string") }
        let proof = AuditInclusionProof(index: UInt64(index), entry: Array(entry.utf8), path: path, checkpointNote: note)
        return (proof, UInt64(size), leaf)
    }
}
