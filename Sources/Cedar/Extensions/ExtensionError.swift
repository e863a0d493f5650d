/// Why an extension constructor or method failed. The messages are Cedar 4.x's own wording
/// (the part after "error while evaluating `…` extension function: "), so a Custos error can be
/// compared with the reference engine's word for word.
public enum ExtensionError: Error, Sendable, Equatable {
    /// The string is not a valid literal for the extension type; the message says which rule failed.
    case invalidLiteral(String)
    /// The value does not fit the 64-bit representation Cedar uses.
    case overflow(String)

    public var message: String {
        switch self {
        case .invalidLiteral(let m), .overflow(let m): m
        }
    }
}
