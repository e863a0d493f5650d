import CustosJSON

/// What a case expects. Every member is optional; each one given must hold.
public struct Expectation: Sendable {
    /// `allow` or `deny`.
    public var decision: String?
    /// Policy names (their `@id`, else `policyN`) that must be among the reasons.
    public var reasons: [String] = []
    /// Policy names that must NOT be among the reasons.
    public var notReasons: [String] = []
    /// Guardrail codes that must appear in the answer (e.g. `residency.cross_border`).
    public var codes: [String] = []
    /// Obligations that must appear: each given object must match an obligation of the answer
    /// on every member it names.
    public var obligations: [JSONObject] = []
    /// `place`: exactly these nodes allowed.
    public var allowed: [String]?
    /// `place`: these nodes rejected, each with at least these codes.
    public var rejected: [(node: String, codes: [String])]?
    /// The call must fail with this JSON-RPC error code.
    public var error: Int64?
    /// Any other result: each member given must be present in the result with an equal value.
    public var result: JSONObject?

    static let keys: Set<String> = ["decision", "reasons", "not_reasons", "codes", "obligations", "allowed", "rejected", "error", "result"]

    /// The expectations that can hold for a method's answer, in the order docs/conformance.md
    /// lists them. One that cannot (`allowed` on a `decide`, `decision` on a `place`) is a
    /// suite error rather than a check that silently never runs or always fails.
    public static func applicable(to method: String) -> [String] {
        switch method {
        case "decide", "transfer": ["decision", "reasons", "not_reasons", "codes", "obligations", "error", "result"]
        case "place": ["allowed", "rejected", "reasons", "not_reasons", "codes", "obligations", "error", "result"]
        case "decide.batch": ["codes", "error", "result"]
        default: ["error", "result"]
        }
    }

    static func why(_ key: String) -> String {
        switch key {
        case "decision": "the answer's allow or deny, which only decide and transfer answer"
        case "reasons", "not_reasons": "the policies named in a decide, transfer or place answer"
        case "codes": "guardrail codes, which decisions answer"
        case "obligations": "the obligations of a decide, transfer or place answer"
        case "allowed", "rejected": "the nodes of a place answer"
        default: "the answer of another method"
        }
    }

    init(json: JSON, file: String, path: String, method: String) throws(SuiteError) {
        guard case .object(let o) = json else { throw SuiteError(file: file, path: path, "expected an object") }
        try Suite.checkKeys(o, allowed: Self.keys, file: file, path: path)
        let applicable = Self.applicable(to: method)
        for k in o.keys where !applicable.contains(k) {
            throw SuiteError(file: file, path: "\(path).\(k)",
                             "\"\(k)\" does not apply to \(method) (it checks \(Self.why(k))); expectations for \(method): \(applicable.joined(separator: ", "))")
        }
        func strings(_ key: String) throws(SuiteError) -> [String] {
            guard let v = o[key] else { return [] }
            guard case .array(let xs) = v else { throw SuiteError(file: file, path: "\(path).\(key)", "expected an array of strings") }
            var out: [String] = []
            for x in xs {
                guard case .string(let s) = x else { throw SuiteError(file: file, path: "\(path).\(key)", "expected an array of strings") }
                out.append(s)
            }
            return out
        }
        if let d = o["decision"] {
            guard case .string(let s) = d, s == "allow" || s == "deny" else {
                throw SuiteError(file: file, path: "\(path).decision", "expected \"allow\" or \"deny\"")
            }
            decision = s
        }
        reasons = try strings("reasons")
        notReasons = try strings("not_reasons")
        codes = try strings("codes")
        if let v = o["obligations"] {
            guard case .array(let xs) = v else { throw SuiteError(file: file, path: "\(path).obligations", "expected an array of objects") }
            for x in xs {
                guard case .object(let ob) = x else { throw SuiteError(file: file, path: "\(path).obligations", "expected an array of objects") }
                obligations.append(ob)
            }
        }
        if o["allowed"] != nil { allowed = try strings("allowed") }
        if let v = o["rejected"] {
            guard case .object(let ro) = v else { throw SuiteError(file: file, path: "\(path).rejected", "expected {node: [codes]}") }
            var out: [(String, [String])] = []
            for m in ro.members {
                guard case .array(let xs) = m.value, xs.allSatisfy({ $0.stringValue != nil }) else {
                    throw SuiteError(file: file, path: "\(path).rejected.\(m.key)", "expected an array of guardrail codes")
                }
                out.append((m.key, xs.compactMap(\.stringValue)))
            }
            rejected = out
        }
        if let v = o["error"] {
            guard case .int(let c) = v else { throw SuiteError(file: file, path: "\(path).error", "expected a JSON-RPC error code, e.g. -32602") }
            error = c
        }
        if let v = o["result"] {
            guard case .object(let ro) = v else { throw SuiteError(file: file, path: "\(path).result", "expected an object") }
            result = ro
        }
        if decision == nil && reasons.isEmpty && notReasons.isEmpty && codes.isEmpty && obligations.isEmpty
            && allowed == nil && rejected == nil && error == nil && result == nil {
            throw SuiteError(file: file, path: path, "expects nothing; a case must check something")
        }
    }
}
