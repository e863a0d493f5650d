import Cedar
import CustosJSON

/// Reads one configuration object, tracking the JSON path for error messages and rejecting keys
/// it was not asked about (a misspelt `"valid_untill"` must not silently disable a check).
struct ConfigReader {
    let file: String
    let path: String
    let object: JSONObject

    init(file: String, path: String, json: JSON) throws(GuardrailConfigError) {
        guard case .object(let o) = json else {
            throw GuardrailConfigError(file: file, path: path, message: "expected an object, got \(json.kindName)")
        }
        self.file = file; self.path = path; self.object = o
    }

    func error(_ key: String?, _ message: String) -> GuardrailConfigError {
        GuardrailConfigError(file: file, path: key.map { ConfigReader.child(path, $0) } ?? path, message: message)
    }

    static func child(_ path: String, _ key: String) -> String {
        let plain = !key.isEmpty && key.utf8.allSatisfy { b in
            (b >= 97 && b <= 122) || (b >= 65 && b <= 90) || (b >= 48 && b <= 57) || b == 95
        }
        if plain { return path + "." + key }
        var w = JSONWriter()
        w.string(key)
        return path + "[" + w.text + "]"
    }

    /// Fails on any key outside `allowed`; `description` is always allowed (JSON has no comments).
    func only(_ allowed: [String]) throws(GuardrailConfigError) {
        for k in object.keys where k != "description" && !allowed.contains(where: { $0.scalarEquals(k) }) {
            throw error(k, "unknown key; expected one of: \((allowed + ["description"]).joined(separator: ", "))")
        }
    }

    func string(_ key: String) throws(GuardrailConfigError) -> String {
        guard let v = object[key] else { throw error(key, "missing (required)") }
        guard case .string(let s) = v, !s.isEmpty else { throw error(key, "expected a non-empty string, got \(v.kindName)") }
        return s
    }

    func optionalString(_ key: String) throws(GuardrailConfigError) -> String? {
        guard let v = object[key] else { return nil }
        guard case .string(let s) = v, !s.isEmpty else { throw error(key, "expected a non-empty string, got \(v.kindName)") }
        return s
    }

    func bool(_ key: String, default d: Bool) throws(GuardrailConfigError) -> Bool {
        guard let v = object[key] else { return d }
        guard case .bool(let b) = v else { throw error(key, "expected true or false, got \(v.kindName)") }
        return b
    }

    func date(_ key: String) throws(GuardrailConfigError) -> CedarDatetime {
        let s = try string(key)
        guard let d = CivilTime.parseDate(s) else { throw error(key, "expected a date YYYY-MM-DD, got \"\(s)\"") }
        return d
    }

    func optionalDate(_ key: String) throws(GuardrailConfigError) -> CedarDatetime? {
        guard object[key] != nil else { return nil }
        return try date(key)
    }

    func strings(_ key: String, required: Bool = true) throws(GuardrailConfigError) -> [String] {
        guard let v = object[key] else {
            if required { throw error(key, "missing (required)") }
            return []
        }
        guard case .array(let a) = v else { throw error(key, "expected an array of strings, got \(v.kindName)") }
        var out: [String] = []
        for (i, e) in a.enumerated() {
            guard case .string(let s) = e, !s.isEmpty else {
                throw GuardrailConfigError(file: file, path: ConfigReader.child(path, key) + "[\(i)]",
                                           message: "expected a non-empty string, got \(e.kindName)")
            }
            if out.contains(where: { $0.scalarEquals(s) }) {
                throw GuardrailConfigError(file: file, path: ConfigReader.child(path, key) + "[\(i)]",
                                           message: "\"\(s)\" is listed twice")
            }
            out.append(s)
        }
        return out
    }

    func array(_ key: String, required: Bool = true) throws(GuardrailConfigError) -> [ConfigReader] {
        guard let v = object[key] else {
            if required { throw error(key, "missing (required)") }
            return []
        }
        guard case .array(let a) = v else { throw error(key, "expected an array, got \(v.kindName)") }
        var out: [ConfigReader] = []
        for (i, e) in a.enumerated() {
            out.append(try ConfigReader(file: file, path: ConfigReader.child(path, key) + "[\(i)]", json: e))
        }
        return out
    }

    /// The members of an object-valued field, each as a reader, in document order.
    func members(_ key: String, required: Bool = true) throws(GuardrailConfigError) -> [(String, ConfigReader)] {
        guard let v = object[key] else {
            if required { throw error(key, "missing (required)") }
            return []
        }
        guard case .object(let o) = v else { throw error(key, "expected an object, got \(v.kindName)") }
        let base = ConfigReader.child(path, key)
        var out: [(String, ConfigReader)] = []
        for m in o.members {
            out.append((m.key, try ConfigReader(file: file, path: ConfigReader.child(base, m.key), json: m.value)))
        }
        return out
    }

    /// The dated-list header facts.md asks for: `last_reviewed` is required on every dated list.
    func lastReviewed() throws(GuardrailConfigError) -> CedarDatetime { try date("last_reviewed") }
}
