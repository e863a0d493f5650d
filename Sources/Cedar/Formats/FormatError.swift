import CustosJSON

/// A malformed entities, context or request document: the file, where inside it (a JSON path
/// such as `[3].attrs.level`, or line:col for syntax errors), and what is wrong.
public struct FormatError: Error, Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var path: String
    public var message: String

    public init(file: String = "", path: String = "", _ message: String) {
        self.file = file; self.path = path; self.message = message
    }

    init(file: String, _ e: JSONParseError) {
        self.file = file
        self.path = e.line > 0 ? "\(e.line):\(e.column)" : ""
        self.message = "invalid JSON: \(e.message)"
    }

    public var description: String {
        var s = file
        if !path.isEmpty { s += s.isEmpty ? path : ":\(path)" }
        return s.isEmpty ? message : "\(s): \(message)"
    }

    func within(_ outer: String) -> FormatError {
        var e = self
        e.path = path.isEmpty ? outer : (path.hasPrefix("[") ? outer + path : outer + "." + path)
        return e
    }
}
