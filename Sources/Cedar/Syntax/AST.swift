/// The Cedar abstract syntax tree, as the parser produces it and before compilation.
/// Names, literals and structure only: no evaluation state lives here.

/// A place in a source text. Lines and columns are 1-based; columns count Unicode scalars.
public struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var offset: Int  // 0-based UTF-8 byte offset

    public init(file: String, line: Int, column: Int, offset: Int) {
        self.file = file; self.line = line; self.column = column; self.offset = offset
    }

    public var description: String { "\(file):\(line):\(column)" }
}

public enum Effect: String, Sendable, Hashable {
    case permit, forbid
}

/// `?principal` or `?resource` in a template.
public enum SlotID: String, Sendable, Hashable {
    case principal = "?principal"
    case resource = "?resource"
}

/// The target of `==` or `in` in a principal or resource scope constraint.
public enum EntityOrSlot: Sendable, Hashable {
    case entity(EntityUID)
    case slot(SlotID)
}

/// `principal`, `principal == E`, `principal in E`, `principal is T`, `principal is T in E`.
public enum ScopeConstraint: Sendable, Hashable {
    case any
    case eq(EntityOrSlot)
    case `in`(EntityOrSlot)
    case `is`(EntityType)
    case isIn(EntityType, EntityOrSlot)
}

/// `action`, `action == E`, `action in E`, `action in [E, ...]`.
public enum ActionConstraint: Sendable, Hashable {
    case any
    case eq(EntityUID)
    case `in`(EntityUID)
    case inSet([EntityUID])
}

public struct Annotation: Sendable, Hashable {
    public var key: String
    /// `@key` without a value is allowed (Cedar 4) and reads as the empty string.
    public var value: String
    public var location: SourceLocation

    public init(key: String, value: String, location: SourceLocation) {
        self.key = key; self.value = value; self.location = location
    }
}

public struct Condition: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable { case when, unless }
    public var kind: Kind
    public var body: Expr

    public init(kind: Kind, body: Expr) { self.kind = kind; self.body = body }
}

/// One `permit(...)` or `forbid(...)` statement as written.
public struct PolicyAST: Sendable, Hashable {
    public var annotations: [Annotation]
    public var effect: Effect
    public var principal: ScopeConstraint
    public var action: ActionConstraint
    public var resource: ScopeConstraint
    public var conditions: [Condition]
    public var location: SourceLocation

    public init(annotations: [Annotation], effect: Effect, principal: ScopeConstraint,
                action: ActionConstraint, resource: ScopeConstraint, conditions: [Condition],
                location: SourceLocation) {
        self.annotations = annotations; self.effect = effect; self.principal = principal
        self.action = action; self.resource = resource; self.conditions = conditions
        self.location = location
    }

    /// True when a scope constraint mentions a slot: the policy is a template.
    public var isTemplate: Bool {
        func hasSlot(_ c: ScopeConstraint) -> Bool {
            switch c {
            case .eq(.slot), .in(.slot), .isIn(_, .slot): true
            default: false
            }
        }
        return hasSlot(principal) || hasSlot(resource)
    }
}

public enum Variable: String, Sendable, Hashable {
    case principal, action, resource, context
}

/// One element of a `like` pattern: a run of literal scalars or a `*` wildcard.
public enum PatternElement: Sendable, Hashable {
    case literal([Unicode.Scalar])
    case wildcard
}

public enum BinaryOp: String, Sendable, Hashable {
    case eq = "==", neq = "!=", lt = "<", le = "<=", gt = ">", ge = ">="
    case `in` = "in"
    case add = "+", sub = "-", mul = "*"
    case contains, containsAll, containsAny, getTag, hasTag
}

public struct RecordEntry: Sendable, Hashable {
    public var key: String
    public var value: Expr
    public init(key: String, value: Expr) { self.key = key; self.value = value }
}

/// An expression node. Equality ignores source locations.
public struct Expr: Sendable, Hashable {
    public indirect enum Kind: Sendable, Hashable {
        case bool(Bool)
        case long(Int64)
        case string(String)
        case entity(EntityUID)
        case variable(Variable)
        case slot(SlotID)
        case ifThenElse(Expr, Expr, Expr)
        case and(Expr, Expr)
        case or(Expr, Expr)
        case not(Expr)
        case negate(Expr)
        case binary(BinaryOp, Expr, Expr)
        /// `e.isEmpty()`
        case isEmpty(Expr)
        /// `e.attr` or `e["attr"]`
        case getAttr(Expr, String)
        /// `e has attr`; the parser expands `e has a.b` into `e has a && e.a has b`.
        case hasAttr(Expr, String)
        case like(Expr, [PatternElement])
        /// `e is T` and `e is T in e2`
        case isType(Expr, EntityType)
        case isTypeIn(Expr, EntityType, Expr)
        case set([Expr])
        /// Keys are unique (the parser rejects duplicates).
        case record([RecordEntry])
        /// An extension function (`ip("...")`, `decimal("...")`) or method (`a.lessThan(b)`:
        /// the receiver is the first argument). Names are checked by the parser.
        case call(String, [Expr])
    }

    public var kind: Kind
    public var location: SourceLocation

    public init(_ kind: Kind, at location: SourceLocation) {
        self.kind = kind; self.location = location
    }

    public static func == (a: Expr, b: Expr) -> Bool { a.kind == b.kind }
    public func hash(into hasher: inout Hasher) { hasher.combine(kind) }
}

/// A parse failure: where, and what was expected.
public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String
    /// The message without anything copied from the source (identifiers, strings, numbers,
    /// unexpected characters are named by their class instead); nil when `message` copies
    /// nothing. A daemon reports this form: the file it failed to parse may not be what its
    /// author thinks it is, and its bytes must not reach a log or another caller.
    public var redacted: String?

    public init(_ message: String, redacted: String? = nil, at location: SourceLocation) {
        self.message = message; self.redacted = redacted; self.location = location
    }

    public var description: String { "\(location): \(message)" }

    /// `file:line:col: message` with nothing of the source but its token classes.
    public var redactedDescription: String { "\(location): \(redacted ?? message)" }
}
