/// Who may call a method, by the kernel-reported uid and groups of the connecting process: its
/// effective gid (SO_PEERCRED) and its supplementary groups (SO_PEERGROUPS), as they were when
/// it connected.
public struct AccessRule: Sendable, Hashable {
    /// nil for both means "any caller not denied".
    public var allowedUIDs: [UInt32]?
    public var allowedGIDs: [UInt32]?
    /// Checked first: a denied caller is refused even when an allow list names it.
    public var deniedUIDs: [UInt32]
    public var deniedGIDs: [UInt32]

    public init(allowedUIDs: [UInt32]? = nil, allowedGIDs: [UInt32]? = nil,
                deniedUIDs: [UInt32] = [], deniedGIDs: [UInt32] = []) {
        self.allowedUIDs = allowedUIDs
        self.allowedGIDs = allowedGIDs
        self.deniedUIDs = deniedUIDs
        self.deniedGIDs = deniedGIDs
    }

    public static let anyone = AccessRule()
    public static let nobody = AccessRule(allowedUIDs: [], allowedGIDs: [])

    /// A deny on any of the caller's groups refuses; an allow on any of them admits.
    public func permits(uid: UInt32, gid: UInt32, groups: [UInt32] = []) -> Bool {
        if deniedUIDs.contains(uid) || deniedGIDs.contains(gid) || groups.contains(where: deniedGIDs.contains) { return false }
        if allowedUIDs == nil && allowedGIDs == nil { return true }
        if allowedUIDs?.contains(uid) ?? false { return true }
        guard let allowedGIDs else { return false }
        return allowedGIDs.contains(gid) || groups.contains(where: allowedGIDs.contains)
    }
}

/// The per-method access configuration. Methods without an entry fall back to `defaultRule`;
/// an entry may also name a privilege (see `Privilege`), which is granted only by its own entry.
public struct AccessPolicy: Sendable {
    public struct Entry: Sendable, Hashable {
        public var method: String
        public var rule: AccessRule
        public init(method: String, rule: AccessRule) { self.method = method; self.rule = rule }
    }

    public var defaultRule: AccessRule
    public var entries: [Entry]

    public init(defaultRule: AccessRule = .anyone, entries: [Entry] = []) {
        self.defaultRule = defaultRule
        self.entries = entries
    }

    public init(defaultRule: AccessRule = .anyone, _ rules: KeyValuePairs<String, AccessRule>) {
        self.init(defaultRule: defaultRule, entries: rules.map { Entry(method: $0.key, rule: $0.value) })
    }

    /// The rule that applies to `method`: its last entry (later entries override earlier ones,
    /// as the dispatcher resolves them), else the default. Names compare by bytes.
    public func rule(for method: String) -> AccessRule {
        entries.last { $0.method.utf8.elementsEqual(method.utf8) }?.rule ?? defaultRule
    }
}

/// An access configuration that cannot be applied; the message says what to change.
public struct AccessConfigError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
