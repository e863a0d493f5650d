/// A small command-line parser: `--name value`, `--name=value`, boolean `--flag`, positionals.
/// Every command declares its options so that `--help` and error messages come from one place.
struct OptionSpec {
    let name: String
    let valueName: String?  // nil for a boolean flag
    let help: String
    var isFlag: Bool { valueName == nil }
}

struct CommandSpec {
    let name: String
    let summary: String
    let usage: String
    let options: [OptionSpec]
    let details: String

    init(name: String, summary: String, usage: String, options: [OptionSpec], details: String = "") {
        self.name = name; self.summary = summary; self.usage = usage; self.options = options; self.details = details
    }

    var help: String {
        var s = "\(summary)\n\nUsage: \(usage)\n\nOptions:\n"
        let all = options + [OptionSpec(name: "help", valueName: nil, help: "Show this help (also -h); nothing else is done.")]
        let width = all.map { "--\($0.name)" + ($0.valueName.map { " \($0)" } ?? "") }.map(\.count).max() ?? 0
        for o in all {
            let left = "--\(o.name)" + (o.valueName.map { " \($0)" } ?? "")
            s += "  " + left + String(repeating: " ", count: width - left.count + 2) + o.help + "\n"
        }
        if !details.isEmpty { s += "\n" + details + "\n" }
        return s
    }
}

struct UsageError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

struct ParsedArguments {
    var values: [String: [String]] = [:]
    var flags: Set<String> = []
    var positionals: [String] = []
    var wantsHelp = false

    func value(_ name: String) -> String? { values[name]?.last }
    func all(_ name: String) -> [String] { values[name] ?? [] }
    func flag(_ name: String) -> Bool { flags.contains(name) }

    func required(_ name: String) throws -> String {
        guard let v = value(name) else { throw UsageError(message: "missing required option --\(name)") }
        return v
    }

    func int(_ name: String, default d: Int) throws -> Int {
        guard let v = value(name) else { return d }
        guard let i = Int(v) else { throw UsageError(message: "--\(name) expects a whole number, got '\(v)'") }
        return i
    }

    /// `-h` and `--help` anywhere before `--` ask for help, and help wins over every mistake
    /// in the other arguments: a user asking what a command does must never make it run (a
    /// `serve -h` that started a daemon would create state and a signing key). So parsing does
    /// not stop at the first mistake; it is thrown only when no help was asked for.
    init(_ args: [String], spec: CommandSpec) throws {
        var firstError: UsageError? = nil
        var i = 0
        var onlyPositionals = false
        while i < args.count {
            let a = args[i]
            i += 1
            if !onlyPositionals && (a == "--help" || a == "-h") { wantsHelp = true; continue }
            if onlyPositionals || !a.hasPrefix("--") || a == "-" {
                positionals.append(a); continue
            }
            if a == "--" { onlyPositionals = true; continue }
            var name = String(a.dropFirst(2))
            var inline: String? = nil
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            guard let opt = spec.options.first(where: { $0.name == name }) else {
                firstError = firstError ?? UsageError(message: "unknown option --\(name) (see 'custos \(spec.name) --help')")
                continue
            }
            if opt.isFlag {
                if inline != nil { firstError = firstError ?? UsageError(message: "--\(name) takes no value") }
                flags.insert(name)
            } else if let v = inline {
                values[name, default: []].append(v)
            } else if i < args.count {
                values[name, default: []].append(args[i])
                i += 1
            } else {
                firstError = firstError ?? UsageError(message: "--\(name) needs a value (\(opt.valueName!))")
            }
        }
        if let firstError, !wantsHelp { throw firstError }
    }
}
