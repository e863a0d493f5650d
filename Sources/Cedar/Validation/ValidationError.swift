/// A reason a policy does not validate against a schema. The kinds are Cedar 4.x's validation
/// errors; `Validator` reports the same kinds the reference validator reports for a policy.
public struct ValidationError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case unrecognizedEntityType
        case unrecognizedActionId
        case invalidActionApplication
        case invalidEnumEntity
        case unexpectedType
        case incompatibleTypes
        case unsafeAttributeAccess
        case unsafeOptionalAttributeAccess
        case unsafeTagAccess
        case noTagsAllowed
        case wrongNumberArguments
        case functionArgumentValidation
        case emptySetForbidden
        case nonLitExtConstructor
    }

    public var kind: Kind
    /// `policy0`, `policy1`, ... as in `PolicySet`.
    public var policyID: String
    /// The policy's `@id` annotation, when it has one.
    public var policyName: String?
    public var location: SourceLocation
    public var message: String
    /// A suggestion ("did you mean `data_state`?"), when there is one.
    public var help: String?

    /// `file:line:col: policy "name" (policy3): message; help`.
    public var description: String {
        var s = "\(location): \(ValidationError.policyLabel(policyID, policyName)): \(message)"
        if let help { s += "; \(help)" }
        return s
    }

    static func policyLabel(_ id: String, _ name: String?) -> String {
        if let name { return "policy \(cedarQuoted(name)) (\(id))" }
        return "policy \(id)"
    }
}

/// Something legal but almost certainly not meant: today only a policy that can never apply.
public struct ValidationWarning: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        case impossiblePolicy
    }

    public var kind: Kind
    public var policyID: String
    public var policyName: String?
    public var location: SourceLocation
    public var message: String

    public var description: String {
        "\(location): \(ValidationError.policyLabel(policyID, policyName)): \(message)"
    }
}

/// What validating a policy set found. `errors` empty means the set validates.
public struct ValidationReport: Sendable {
    public var errors: [ValidationError] = []
    public var warnings: [ValidationWarning] = []
    public var passed: Bool { errors.isEmpty }
    public init() {}
}
