import Foundation

/// The rules every test in Tests/ follows so that `make test` passes on a busy machine
/// (docs/contributing.md, "Tests and time"):
///
/// - no assertion puts an upper bound on a measured time (a clock reading, or a value derived
///   from one such as `elapsed` or `p50`): how fast the machine is belongs in benchmarks;
/// - no fixed sleep: a test that waits for something polls for it with `eventually`
///   (Tests/TestSupport), which ends as soon as the condition holds;
/// - no scratch folder of its own under the system temp directory: `Scratch` (Tests/TestSupport)
///   makes them under one folder per test process that is removed at exit, so a failing test,
///   or one that forgets to clean up, leaves nothing in /tmp.
///
/// The scan is lexical and per line, which is enough for the way tests here are written; its
/// own behaviour is pinned by the tables in TestRulesTests.
enum TestRules {
    struct Violation: Equatable, CustomStringConvertible {
        var file: String
        var line: Int
        var rule: String
        var text: String
        var description: String { "\(file):\(line): \(rule): \(text)" }
    }

    static let upperBoundRule = "an assertion puts an upper bound on a measured time (move it to a benchmark)"
    static let sleepRule = "a fixed sleep (poll for the condition with `eventually`)"
    static let scratchRule = "a scratch folder outside `Scratch` (use Scratch.directory or Scratch.url, removed at exit)"

    /// Clock readings, and names that hold measured times by convention.
    static let clockReading = try! NSRegularExpression(pattern:
        #"ContinuousClock|SuspendingClock|DispatchTime|Date\(\)|\.now\b|timeIntervalSince|uptimeNanoseconds|clock_gettime|monotonicNanos|CFAbsoluteTime|\b(p\d{2,4}\w*|elapsed\w*|latenc\w*|took|t\d|\w*[Mm]icros|\w*[Nn]anos|\w*[Mm]illis)\b"#)
    static let sleepCall = try! NSRegularExpression(pattern: #"\b(usleep|nanosleep|sleep)\s*\(|Thread\.sleep|Task\.sleep"#)
    static let tempFolder = try! NSRegularExpression(pattern: #"\bNSTemporaryDirectory\s*\(|\.temporaryDirectory\b|\bmkdtemp\s*\("#)
    static let assignment = try! NSRegularExpression(pattern: #"\b(?:let|var)\s+([A-Za-z_]\w*)\s*(?::[^=]+)?=\s*(.+)$"#)
    static let comparison = try! NSRegularExpression(pattern: #"\s(<=|>=|<|>)\s"#)

    static func matches(_ re: NSRegularExpression, _ s: String) -> Bool {
        re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
    }

    /// Every violation in one file's text.
    static func check(file: String, text: String) -> [Violation] {
        let lines = codeLines(text)
        // Names bound to a measured time anywhere in the file count as measured too.
        var measured = Set<String>()
        for _ in 0..<2 {  // twice, so `let b = a * 2` after `let a = clock.now - t0` is caught
            for code in lines {
                let ns = code as NSString
                guard let m = assignment.firstMatch(in: code, range: NSRange(location: 0, length: ns.length)) else { continue }
                let name = ns.substring(with: m.range(at: 1)), value = ns.substring(with: m.range(at: 2))
                if isMeasured(value, measured) { measured.insert(name) }
            }
        }
        var out: [Violation] = []
        for (i, code) in lines.enumerated() {
            if matches(sleepCall, code) {
                out.append(Violation(file: file, line: i + 1, rule: sleepRule, text: code.trimmed))
            }
            if matches(tempFolder, code) {
                out.append(Violation(file: file, line: i + 1, rule: scratchRule, text: code.trimmed))
            }
            if let r = assertion(in: code), clauses(r).contains(where: { boundsTime($0, measured) }) {
                out.append(Violation(file: file, line: i + 1, rule: upperBoundRule, text: code.trimmed))
            }
        }
        return out
    }

    static func isMeasured(_ s: String, _ names: Set<String>) -> Bool {
        if matches(clockReading, s) { return true }
        return identifiers(s).contains { names.contains($0) }
    }

    /// `a < b` bounds `a` from above, `a > b` bounds `b`; it is a finding when the bounded side
    /// is a measured time and the other is not (`p50 <= p99` orders two measurements).
    static func boundsTime(_ clause: String, _ names: Set<String>) -> Bool {
        let ns = clause as NSString
        guard let m = comparison.firstMatch(in: clause, range: NSRange(location: 0, length: ns.length)) else { return false }
        let op = ns.substring(with: m.range(at: 1))
        let lhs = ns.substring(to: m.range.location), rhs = ns.substring(from: m.range.location + m.range.length)
        let (small, large) = op.hasPrefix("<") ? (lhs, rhs) : (rhs, lhs)
        return isMeasured(small, names) && !isMeasured(large, names)
    }

    /// The text after `#expect(`, `#require(` or `XCTAssert...(`, if the line has one.
    static func assertion(in code: String) -> String? {
        for marker in ["#expect(", "#require(", "XCTAssert"] {
            if let r = code.range(of: marker) { return String(code[r.upperBound...]) }
        }
        return nil
    }

    static func clauses(_ s: String) -> [String] {
        s.replacingOccurrences(of: "||", with: "&&").replacingOccurrences(of: ",", with: "&&")
            .components(separatedBy: "&&")
    }

    static func identifiers(_ s: String) -> [String] {
        s.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") }).map(String.init)
    }

    /// Each line with comments and the contents of string literals removed, so that messages
    /// and fixtures never count as code.
    static func codeLines(_ text: String) -> [String] {
        let tripleQuote = "\"\"\""
        var out: [String] = []
        var multilineClose: String? = nil  // the delimiter that ends the open multi-line string
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var code = ""
            var chars = Array(raw)[...]
            while let c = chars.first {
                if let close = multilineClose {
                    if chars.starts(with: close) { multilineClose = nil; chars = chars.dropFirst(close.count) } else { chars = chars.dropFirst() }
                    continue
                }
                if chars.starts(with: "//") { break }
                guard c == "#" || c == "\"" else { code.append(c); chars = chars.dropFirst(); continue }
                var hashes = 0
                while chars.first == "#" { hashes += 1; chars = chars.dropFirst() }
                guard chars.first == "\"" else { code += String(repeating: "#", count: hashes); continue }
                code += "\"\""
                if chars.starts(with: tripleQuote) {
                    multilineClose = tripleQuote + String(repeating: "#", count: hashes)
                    chars = chars.dropFirst(3)
                    continue
                }
                // A one-line literal, raw or not: skip to its end.
                chars = chars.dropFirst()
                let close = "\"" + String(repeating: "#", count: hashes)
                while !chars.isEmpty && !chars.starts(with: close) {
                    if hashes == 0 && chars.first == "\\" { chars = chars.dropFirst() }
                    chars = chars.dropFirst()
                }
                chars = chars.dropFirst(close.count)
            }
            out.append(code)
        }
        return out
    }
}

extension String {
    var trimmed: String { trimmingCharacters(in: .whitespaces) }
}
