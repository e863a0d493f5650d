import Foundation

/// One ```sh or ```json block of README.md or docs/*.md, as `DocExamplesTests` runs it
/// (docs/contributing.md, "Examples in the documentation").
///
/// The fence's info string says how: ```` ```sh ```` and ```` ```json ```` alone run as
/// described there; after the language, `not-run: REASON` marks an example that cannot run
/// here (the test lists them with their reasons), and a json block may say `call=METHOD`,
/// `suite` or `file=PATH`, and `-> TEXT` for what the answer must contain.
struct DocExample: Sendable, CustomStringConvertible {
    var file: String
    /// Line of the opening fence, 1-based.
    var line: Int
    var language: String
    /// The info string after the language.
    var attributes: String
    var body: String

    var description: String { "\(file):\(line) (\(language))" }

    /// The reason given with `not-run:`, nil when the example runs ("" when the marker gives none).
    var notRun: String? {
        guard attributes.hasPrefix("not-run:") || attributes == "not-run" else { return nil }
        return attributes.dropFirst("not-run".count).drop { $0 == ":" || $0 == " " }.trimmingCharacters(in: .whitespaces)
    }

    /// Text the output must contain, in order of the lines that say it: `# -> TEXT` lines (or
    /// line ends) of a sh block, `-> TEXT` in a json block's info string. `...` matches anything.
    var expectations: [String] {
        if language == "json" {
            guard let r = attributes.range(of: "->") else { return [] }
            return [attributes[r.upperBound...].trimmingCharacters(in: .whitespaces)]
        }
        return body.split(separator: "\n").compactMap { line in
            guard let r = line.range(of: "# -> ") else { return nil }
            return line[r.upperBound...].trimmingCharacters(in: .whitespaces)
        }
    }

    /// `key=value` and bare words of a json block's info string, before any `->`.
    var options: [String: String] {
        let head = attributes.range(of: "->").map { String(attributes[..<$0.lowerBound]) } ?? attributes
        var out: [String: String] = [:]
        for word in head.split(separator: " ") {
            let parts = word.split(separator: "=", maxSplits: 1).map(String.init)
            out[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        return out
    }

    /// Whether `output` contains `pattern`, where `...` in the pattern matches any text.
    static func output(_ output: String, matches pattern: String) -> Bool {
        var rest = output[...]
        for piece in pattern.components(separatedBy: "...") where !piece.isEmpty {
            guard let r = rest.range(of: piece) else { return false }
            rest = rest[r.upperBound...]
        }
        return true
    }

    /// Every ```sh and ```json block of `text`. A fence may be indented (inside a list item);
    /// the block's lines lose that indentation.
    static func parse(_ text: String, file: String) -> [DocExample] {
        var out: [DocExample] = []
        var open: (line: Int, indent: Int, language: String, attributes: String, body: [String])? = nil
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let indent = raw.prefix { $0 == " " }.count
            let trimmed = raw.dropFirst(indent)
            if var block = open {
                if trimmed.trimmingCharacters(in: .whitespaces) == "```" {
                    if ["sh", "json"].contains(block.language) {
                        out.append(DocExample(file: file, line: block.line, language: block.language,
                                              attributes: block.attributes, body: block.body.joined(separator: "\n")))
                    }
                    open = nil
                } else {
                    let strip = min(block.indent, raw.prefix { $0 == " " }.count)
                    block.body.append(String(raw.dropFirst(strip)))
                    open = block
                }
            } else if trimmed.hasPrefix("```") {
                let info = trimmed.dropFirst(3).trimmingCharacters(in: .whitespaces)
                let language = info.prefix { $0 != " " }
                open = (i + 1, indent, String(language), info.dropFirst(language.count).trimmingCharacters(in: .whitespaces), [])
            }
        }
        return out
    }

    /// README.md and every docs/*.md of the repository, in that order.
    static let all: [DocExample] = {
        let root = Binary.repository.path
        let docs = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/docs")) ?? [])
            .filter { $0.hasSuffix(".md") }.sorted().map { "docs/" + $0 }
        return (["README.md"] + docs).flatMap { name -> [DocExample] in
            guard let text = try? String(contentsOfFile: root + "/" + name, encoding: .utf8) else { return [] }
            return parse(text, file: name)
        }
    }()
}
