import Cedar
import Testing

// Row types of the generated Reference*.swift tables (scripts/probe_extensions.py).

/// An input string and what Cedar made of it: a value or the error it reported.
struct ExtParseCase<Value: Equatable & Sendable>: Sendable, CustomTestStringConvertible {
    let input: String
    let expected: Result<Value, ExtensionError>
    init(_ input: String, _ expected: Result<Value, ExtensionError>) {
        self.input = input
        self.expected = expected
    }
    var testDescription: String { "\(input.debugDescription) -> \(expected)" }
}

/// A literal and the canonical text our `description` gives for it.
struct ExtRenderCase: Sendable, CustomTestStringConvertible {
    let input: String
    let rendering: String
    init(_ input: String, _ rendering: String) {
        self.input = input
        self.rendering = rendering
    }
    var testDescription: String { "\(input.debugDescription) -> \(rendering.debugDescription)" }
}

/// A millisecond count (an instant or a duration) and its expected rendering.
struct ExtInstantRenderCase: Sendable, CustomTestStringConvertible {
    let milliseconds: Int64
    let rendering: String
    init(_ milliseconds: Int64, _ rendering: String) {
        self.milliseconds = milliseconds
        self.rendering = rendering
    }
    var testDescription: String { "\(milliseconds)ms -> \(rendering.debugDescription)" }
}

/// Two literals and a yes/no answer (equality, range membership).
struct ExtPairCase: Sendable, CustomTestStringConvertible {
    let left: String
    let right: String
    let expected: Bool
    init(_ left: String, _ right: String, _ expected: Bool) {
        self.left = left
        self.right = right
        self.expected = expected
    }
    var testDescription: String { "\(left.debugDescription), \(right.debugDescription) -> \(expected)" }
}

/// Two literals and Cedar's `<` and `==` answers.
struct ExtOrderCase: Sendable, CustomTestStringConvertible {
    let left: String
    let right: String
    let less: Bool
    let equal: Bool
    init(_ left: String, _ right: String, less: Bool, equal: Bool) {
        self.left = left
        self.right = right
        self.less = less
        self.equal = equal
    }
    var testDescription: String { "\(left.debugDescription) vs \(right.debugDescription)" }
}

struct DecimalComparisonCase: Sendable, CustomTestStringConvertible {
    let left: String
    let right: String
    let lessThan: Bool
    let lessThanOrEqual: Bool
    let greaterThan: Bool
    let greaterThanOrEqual: Bool
    let equal: Bool
    init(
        _ left: String, _ right: String, lessThan: Bool, lessThanOrEqual: Bool, greaterThan: Bool,
        greaterThanOrEqual: Bool, equal: Bool
    ) {
        self.left = left
        self.right = right
        self.lessThan = lessThan
        self.lessThanOrEqual = lessThanOrEqual
        self.greaterThan = greaterThan
        self.greaterThanOrEqual = greaterThanOrEqual
        self.equal = equal
    }
    var testDescription: String { "\(left.debugDescription) vs \(right.debugDescription)" }
}

/// The four `ipaddr` predicates Cedar answered for one address.
struct IPFacts: Equatable, Sendable, CustomStringConvertible {
    let isIPv4: Bool
    let isIPv6: Bool
    let isLoopback: Bool
    let isMulticast: Bool
    init(isIPv4: Bool, isIPv6: Bool, isLoopback: Bool, isMulticast: Bool) {
        self.isIPv4 = isIPv4
        self.isIPv6 = isIPv6
        self.isLoopback = isLoopback
        self.isMulticast = isMulticast
    }
    init(_ a: CedarIPAddr) {
        self.init(isIPv4: a.isIPv4, isIPv6: a.isIPv6, isLoopback: a.isLoopback, isMulticast: a.isMulticast)
    }
    var description: String { "v4=\(isIPv4) v6=\(isIPv6) loopback=\(isLoopback) multicast=\(isMulticast)" }
}

struct DurationConversionCase: Sendable, CustomTestStringConvertible {
    let input: String
    let milliseconds: Int64
    let seconds: Int64
    let minutes: Int64
    let hours: Int64
    let days: Int64
    init(_ input: String, milliseconds: Int64, seconds: Int64, minutes: Int64, hours: Int64, days: Int64) {
        self.input = input
        self.milliseconds = milliseconds
        self.seconds = seconds
        self.minutes = minutes
        self.hours = hours
        self.days = days
    }
    var testDescription: String { input.debugDescription }
}

/// An instant and Cedar's `toDate()` (an instant or an error) and `toTime()` answers.
struct DatetimeDayCase: Sendable, CustomTestStringConvertible {
    let instant: Int64
    let toDate: Result<Int64, ExtensionError>
    let toTime: Int64
    init(_ instant: Int64, toDate: Result<Int64, ExtensionError>, toTime: Int64) {
        self.instant = instant
        self.toDate = toDate
        self.toTime = toTime
    }
    var testDescription: String { "\(instant)ms" }
}

/// Two millisecond operands and the result (or error) of one datetime operation.
struct DatetimeArithmeticCase: Sendable, CustomTestStringConvertible {
    let left: Int64
    let right: Int64
    let expected: Result<Int64, ExtensionError>
    init(_ left: Int64, _ right: Int64, _ expected: Result<Int64, ExtensionError>) {
        self.left = left
        self.right = right
        self.expected = expected
    }
    var testDescription: String { "\(left)ms, \(right)ms -> \(expected)" }
}

/// Runs a typed-throwing body and captures its outcome, so a table row compares in one `#expect`.
func extensionOutcome<T>(_ body: () throws(ExtensionError) -> T) -> Result<T, ExtensionError> {
    do { return .success(try body()) } catch { return .failure(error) }
}
