/// The words and names the Cedar grammar treats specially.
enum CedarNames {
    /// Never valid as an identifier, attribute name or name component (strings still may hold them).
    static let reserved: Set<String> = ["true", "false", "if", "then", "else", "in", "is", "like", "has"]

    /// Words of the grammar itself: a redacted parse error may show them (they say nothing
    /// about the file's content), while any other identifier is shown only as "an identifier".
    static let grammarWords: Set<String> = reserved.union(variables.keys).union(functions)
        .union(extensionMethods).union(builtinMethods.keys)
        .union(["permit", "forbid", "when", "unless", "Action"])

    /// Reserved for Cedar's own use as a name component or attribute identifier.
    static let cedarNamespace = "__cedar"

    static let variables: [String: Variable] = [
        "principal": .principal, "action": .action, "resource": .resource, "context": .context,
    ]

    /// Extension functions, called as `name(args)`. The reference parser checks names, not arity.
    static let functions: Set<String> = ["ip", "decimal", "datetime", "duration"]

    /// Extension methods, called as `receiver.name(args)`; arity is checked during evaluation.
    static let extensionMethods: Set<String> = [
        "lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual",
        "isIpv4", "isIpv6", "isLoopback", "isMulticast", "isInRange",
        "offset", "durationSince", "toDate", "toTime",
        "toMilliseconds", "toSeconds", "toMinutes", "toHours", "toDays",
    ]

    /// Built-in methods with their operator and exact argument count (beyond the receiver).
    static let builtinMethods: [String: (op: BinaryOp?, arity: Int)] = [
        "contains": (.contains, 1), "containsAll": (.containsAll, 1), "containsAny": (.containsAny, 1),
        "getTag": (.getTag, 1), "hasTag": (.hasTag, 1), "isEmpty": (nil, 0),
    ]
}
