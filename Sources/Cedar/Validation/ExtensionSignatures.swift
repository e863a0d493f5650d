/// The type of every extension function, and the check the validator makes of constructor
/// arguments (a literal string that must parse, as evaluation would parse it).
extension ExtensionFunction {
    var argumentTypes: [CedarType] {
        switch self {
        case .decimal, .ip, .datetime, .duration: [.string]
        case .lessThan, .lessThanOrEqual, .greaterThan, .greaterThanOrEqual: [.ext(.decimal), .ext(.decimal)]
        case .isIpv4, .isIpv6, .isLoopback, .isMulticast: [.ext(.ipaddr)]
        case .isInRange: [.ext(.ipaddr), .ext(.ipaddr)]
        case .offset: [.ext(.datetime), .ext(.duration)]
        case .durationSince: [.ext(.datetime), .ext(.datetime)]
        case .toDate, .toTime: [.ext(.datetime)]
        case .toMilliseconds, .toSeconds, .toMinutes, .toHours, .toDays: [.ext(.duration)]
        }
    }

    var returnType: CedarType {
        switch self {
        case .decimal: .ext(.decimal)
        case .ip: .ext(.ipaddr)
        case .datetime, .offset, .toDate: .ext(.datetime)
        case .duration, .durationSince, .toTime: .ext(.duration)
        case .lessThan, .lessThanOrEqual, .greaterThan, .greaterThanOrEqual,
             .isIpv4, .isIpv6, .isLoopback, .isMulticast, .isInRange: .anyBool
        case .toMilliseconds, .toSeconds, .toMinutes, .toHours, .toDays: .long
        }
    }

    /// For a constructor applied to one string literal: the reason it would fail, if it would.
    func literalArgumentProblem(_ args: [Expr]) -> String? {
        guard isConstructor, args.count == 1, case .string(let s) = args[0].kind else { return nil }
        do {
            _ = try ExtensionFunction.apply(self, [.string(s)])
            return nil
        } catch {
            let what = switch self {
            case .ip: "an IP address"
            case .decimal: "a decimal value"
            case .datetime: "a datetime"
            default: "a duration"
            }
            return "\(cedarQuoted(s)) does not parse as \(what): \(error)"
        }
    }
}
