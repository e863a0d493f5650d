/// A configuration file the guardrails cannot use, with the place to fix it.
public struct GuardrailConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file, relative to the policies folder (e.g. `guardrails/transfers.json`).
    public var file: String
    /// JSONPath-style location of the offending field (`$.bases[2].reference`); `$` for the file.
    public var path: String
    public var message: String

    public init(file: String, path: String, message: String) {
        self.file = file; self.path = path; self.message = message
    }

    public var description: String { "\(file): \(path): \(message)" }
}
