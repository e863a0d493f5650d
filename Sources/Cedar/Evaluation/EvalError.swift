/// Why an expression could not be evaluated. A policy whose condition raises one of these is
/// skipped and reported in `errors`; it never decides. Cases carry what a policy author needs
/// to find the fault; messages are rendered only when asked for.
public enum EvalError: Error, Sendable, Hashable, CustomStringConvertible {
    case typeMismatch(expected: String, got: String)
    case entityNotFound(EntityUID)
    case attributeNotFound(attribute: String, on: String)
    case tagNotFound(tag: String, on: EntityUID)
    case overflow(String)
    case extensionFailure(String)
    case unlinkedSlot(SlotID)

    public var description: String {
        switch self {
        case .typeMismatch(let expected, let got): "type error: expected \(expected), got \(got)"
        case .entityNotFound(let uid): "entity \(uid) does not exist"
        case .attributeNotFound(let a, let on): "\(on) does not have the attribute \(cedarQuoted(a))"
        case .tagNotFound(let t, let on): "entity \(on) does not have the tag \(cedarQuoted(t))"
        case .overflow(let what): "integer overflow: \(what)"
        case .extensionFailure(let m): m
        case .unlinkedSlot(let s): "template slot \(s.rawValue) is not linked"
        }
    }
}
