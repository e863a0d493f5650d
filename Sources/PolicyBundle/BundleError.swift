/// Why a bundle, its manifest, a signature or the approvers file was refused. Every message
/// names what to fix; none quotes a policy file (a bundle is attacker input until verified).
public enum BundleError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The archive is not one custos writes (structure, headers, order).
    case malformed(String)
    /// Beyond a size or count limit.
    case tooLarge(String)
    /// `manifest.json` or `signatures.json` is not what the format says.
    case manifest(String)
    /// A file is missing, extra, or differs from what the manifest says.
    case files(String)
    /// A signature does not verify, or the approvals do not meet `approvers.json`.
    case approval(String)
    /// `approvers.json` itself is unusable.
    case trust(String)
    /// A bundle older than, or conflicting with, the one in service.
    case sequence(String)
    /// Reading or writing a file failed.
    case io(String)
    /// A private key file is unusable.
    case key(String)

    public var description: String {
        switch self {
        case .malformed(let m): "not a custos policy bundle: \(m)"
        case .tooLarge(let m): "too large: \(m)"
        case .manifest(let m): "manifest: \(m)"
        case .files(let m): "files: \(m)"
        case .approval(let m): "not approved: \(m)"
        case .trust(let m): "approvers file: \(m)"
        case .sequence(let m): "sequence: \(m)"
        case .io(let m): m
        case .key(let m): "key: \(m)"
        }
    }
}
