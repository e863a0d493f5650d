import CustosJSON

/// The three renderings of a run: human text, JUnit XML for CI systems, JSON for tools.
extension RunReport {
    /// One block per failing case (what was expected, the whole answer that came back, what
    /// fired), then the closing `N passed, N failed` line (printed by the caller).
    public func text(verbose: Bool = false) -> String {
        var s = ""
        for e in suiteErrors { s += "FAIL \(e)\n" }
        for c in cases where !c.passed || verbose {
            s += "\(c.passed ? "ok  " : "FAIL") \(c.suite) / \(c.name)  (\(c.file))\n"
            if !c.passed {
                for f in c.failures { s += "       - \(f)\n" }
                s += c.answersText(indent: "       ")
                s += "       fired: policies \(c.firedPolicies.isEmpty ? "none" : c.firedPolicies.joined(separator: ", "))"
                s += "; guardrails \(c.codes.isEmpty ? "none" : c.codes.joined(separator: ", "))\n"
            }
        }
        return s
    }

    public func coverageText() -> String {
        let pct = (coveragePercent * 10).rounded() / 10
        var s = "coverage: \(pct)% of policies and guardrail codes exercised\n"
        for (folder, p) in uncoveredPolicies { s += "  policy not exercised: \(p) (\(folder))\n" }
        for c in uncoveredCodes { s += "  guardrail code not exercised: \(c)\n" }
        return s
    }

    public var summaryLine: String { "\(passed) passed, \(failed) failed" }

    public func junitXML() -> String {
        var bySuite: [(String, [CaseResult])] = []
        for c in cases {
            if let i = bySuite.firstIndex(where: { $0.0 == c.suite }) { bySuite[i].1.append(c) } else { bySuite.append((c.suite, [c])) }
        }
        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        s += "<testsuites name=\"custos\" tests=\"\(cases.count + suiteErrors.count)\" failures=\"\(failed)\">\n"
        for e in suiteErrors {
            s += "  <testsuite name=\"\(xml(e.file))\" tests=\"1\" failures=\"1\">\n"
            s += "    <testcase classname=\"\(xml(e.file))\" name=\"(suite)\"><failure message=\"\(xml(e.description))\"/></testcase>\n"
            s += "  </testsuite>\n"
        }
        for (name, cs) in bySuite {
            let failures = cs.filter { !$0.passed }.count
            let time = cs.reduce(0) { $0 + $1.seconds }
            s += "  <testsuite name=\"\(xml(name))\" tests=\"\(cs.count)\" failures=\"\(failures)\" time=\"\(time)\">\n"
            for c in cs {
                s += "    <testcase classname=\"\(xml(name))\" name=\"\(xml(c.name))\" time=\"\(c.seconds)\""
                if c.passed { s += "/>\n"; continue }
                s += ">\n      <failure message=\"\(xml(c.failures.first ?? ""))\">\(xml(c.failures.joined(separator: "\n") + "\n" + c.answersText(indent: "")))</failure>\n    </testcase>\n"
            }
            s += "  </testsuite>\n"
        }
        return s + "</testsuites>\n"
    }

    public func json(coverage: Bool) -> JSON {
        var o = JSONObject()
        o.append("passed", .int(Int64(passed)))
        o.append("failed", .int(Int64(failed)))
        o.append("suite_errors", .array(suiteErrors.map { .string($0.description) }))
        o.append("cases", .array(cases.map { c in
            .object(JSONObject([
                .init(key: "suite", value: .string(c.suite)), .init(key: "case", value: .string(c.name)),
                .init(key: "file", value: .string(c.file)), .init(key: "method", value: .string(c.method)),
                .init(key: "passed", value: .bool(c.passed)),
                .init(key: "failures", value: .array(c.failures.map { .string($0) })),
                .init(key: "got", value: .string(c.got)),
                .init(key: "policies", value: .array(c.firedPolicies.map { .string($0) })),
                .init(key: "codes", value: .array(c.codes.map { .string($0) })),
                .init(key: "answer", value: c.hasSteps ? .null : (c.steps.first?.answer ?? .null)),
                .init(key: "steps", value: .array(c.steps.map { st in
                    .object(JSONObject([
                        "method": .string(st.method), "at": .string(st.at), "passed": .bool(st.passed),
                        "failures": .array(st.failures.map { .string($0) }), "answer": st.answer,
                    ]))
                })),
            ]))
        }))
        if coverage {
            o.append("coverage", .object(JSONObject([
                .init(key: "percent", value: .double(coveragePercent)),
                .init(key: "uncovered_policies", value: .array(uncoveredPolicies.map { .string($0.policy) })),
                .init(key: "uncovered_codes", value: .array(uncoveredCodes.map { .string($0) })),
            ])))
        }
        return .object(o)
    }
}

extension CaseResult {
    /// Every answer of the case in full: `answer (decide at T):` and one member per line; in a
    /// case with steps, every step, so a failure reads in the order the calls were made.
    func answersText(indent: String) -> String {
        var s = ""
        for (i, st) in steps.enumerated() {
            let label = hasSteps ? "step \(i + 1) (\(st.method) at \(st.at)): \(st.passed ? "ok" : "FAILED"), answer" : "answer (\(st.method) at \(st.at))"
            s += "\(indent)\(label):\n"
            s += st.answerLines.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { "\(indent)  \($0)\n" }.joined()
        }
        return s
    }
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 cannot hold.
func xml(_ s: String) -> String {
    var out = ""
    for u in s.unicodeScalars {
        switch u {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        case "\n", "\t", "\r": out.unicodeScalars.append(u)
        default:
            if u.value < 0x20 || u.value == 0xFFFE || u.value == 0xFFFF { out += "?" } else { out.unicodeScalars.append(u) }
        }
    }
    return out
}
