import AuditLog

/// `custos audit pubkey`: what an operator hands to auditors and anchoring services.
enum AuditPubkeyCommand {
    static let spec = CommandSpec(
        name: "audit",
        summary: "Print the verifier key line (C2SP signed-note form) of the state folder's audit signing key.",
        usage: "custos audit pubkey [--state DIR]",
        options: [AuditOptions.state],
        details: """
        Prints 'name+keyid+base64(0x01 || Ed25519 public key)', derived from DIR/audit/signing.key
        (so it needs read access to that file, i.e. the daemon's user) and checked against
        DIR/audit/verifier.key. Give this line to auditors through a channel other than the state
        folder: 'custos audit verify --pubkey FILE' trusts whatever key it is given.
        Exit status: 0, or 2 when there is no key or it cannot be read.
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        guard AuditOptions.operands(args).isEmpty else { throw UsageError(message: "usage: \(spec.usage)") }
        let signer: NoteSigner
        do { signer = try AuditState.loadSigner(state: AuditOptions.stateDirectory(args)) } catch {
            throw UsageError(message: error.description)
        }
        print(signer.verifierKey.text)
        return 0
    }
}
