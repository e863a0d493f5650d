import Cedar
import CustosJSON

/// `custos.json` at the top of a policies folder: how the daemon treats this folder's policies
/// and entities. It lives with the policies (and counts in their revision) because it changes
/// what they mean, so it goes through the same review. Every member is optional; unknown keys
/// are errors, as everywhere in configuration.
///
///     {
///       "forbid_errors": "deny",
///       "authoritative_types": ["User", "Role", "Dataset", "Cohort", "Study"],
///       "data_types": ["Dataset", "Cohort"],
///       "validate_requests": true
///     }
///
/// See docs/security.md for what each member protects.
public struct FolderSettings: Sendable, Equatable {
    public static let fileName = "custos.json"

    /// What the daemon does with a `forbid` whose evaluation errors.
    public enum ForbidErrors: String, Sendable, Equatable {
        /// The decision is deny, naming the policy (`policy.forbid_error`): an erroring forbid
        /// would otherwise stop protecting anything without a sound.
        case deny
        /// Cedar's own behaviour: a policy that errors is skipped.
        case skip
    }

    public var forbidErrors: ForbidErrors = .deny
    /// Entity types that only the folder may define (request entities of these types are
    /// refused); nil means every type present in `entities.json`.
    public var authoritativeTypes: [String]? = nil
    /// Entity types that are data (a `decide` on an id of one of these types that the folder
    /// does not hold is denied); nil means every type of which some folder entity carries data
    /// attributes.
    public var dataTypes: [String]? = nil
    /// Every `decide` request is checked against the folder's schema before it is decided
    /// (its principal, action and resource as the action's `appliesTo` allows, its context and
    /// entities as declared); one that does not conform is -32602 naming the field. Needs a
    /// schema in the folder.
    public var validateRequests = false

    public init() {}

    public static let `default` = FolderSettings()

    /// Reads the file's bytes; errors name the file and the JSON path.
    public static func parse(_ bytes: [UInt8], path: String) throws(PolicyStoreError) -> FolderSettings {
        let json: JSON
        do { json = try JSON.parse(bytes) } catch {
            throw PolicyStoreError("\(path):\(error.line):\(error.column): invalid JSON: \(error.redactedMessage)")
        }
        guard case .object(let o) = json else { throw PolicyStoreError("\(path): $: expected an object, got \(json.kindName)") }
        var s = FolderSettings()
        let known = ["description", "forbid_errors", "authoritative_types", "data_types", "validate_requests"]
        for m in o.members {
            let k = m.key
            guard known.contains(where: { $0.utf8.elementsEqual(k.utf8) }) else {
                throw PolicyStoreError("\(path): $.\(k): unknown key; expected one of: \(known.joined(separator: ", "))")
            }
            switch k {
            case "forbid_errors":
                guard case .string(let v) = m.value, let f = ForbidErrors(rawValue: v) else {
                    throw PolicyStoreError("\(path): $.forbid_errors: expected \"deny\" or \"skip\" (lower case), got \(m.value.kindName == "a string" ? "another string" : m.value.kindName)")
                }
                s.forbidErrors = f
            case "authoritative_types": s.authoritativeTypes = try typeList(m.value, path: path, key: k)
            case "data_types": s.dataTypes = try typeList(m.value, path: path, key: k)
            case "validate_requests":
                guard case .bool(let b) = m.value else {
                    throw PolicyStoreError("\(path): $.validate_requests: expected true or false, got \(m.value.kindName)")
                }
                s.validateRequests = b
            default: break  // description
            }
        }
        return s
    }

    private static func typeList(_ v: JSON, path: String, key: String) throws(PolicyStoreError) -> [String] {
        guard case .array(let items) = v else { throw PolicyStoreError("\(path): $.\(key): expected an array of entity type names, got \(v.kindName)") }
        var out: [String] = []
        for (i, item) in items.enumerated() {
            guard case .string(let t) = item, !t.isEmpty else {
                throw PolicyStoreError("\(path): $.\(key)[\(i)]: expected an entity type name such as \"User\" or \"Clinic::Dataset\", got \(item.kindName)")
            }
            out.append(t)
        }
        return out
    }
}
