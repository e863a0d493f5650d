import Cedar
import CustosJSON

/// What an action does with the data it names, which decides the guardrails it meets
/// (docs/guardrails.md, "What a decision checks").
public enum ActionKind: String, Sendable, Hashable, CaseIterable {
    /// Processes the data's content: every guardrail applies.
    case use
    /// Reads only what describes the data (its catalogue entry, retention class, study), none of
    /// the personal data in it: residency, purpose, consent and retention expiry do not apply,
    /// since nothing of the content is processed (facts.md §1 and §2 govern processing of
    /// personal data); study isolation still does.
    case metadata
    /// Deletes the data: governed by retention and legal holds (facts.md §3) and isolation.
    case delete
}

/// `guardrails/actions.json`: which Cedar actions (by id, `Action::"<id>"`) only read metadata
/// and which delete. Every action not listed uses the data; without the file, only the
/// built-in delete actions delete and every other action uses the data.
///
///     {"last_reviewed": "2026-06-30",
///      "use": ["read", "analyze", "train_model", "export"],
///      "metadata": ["read_metadata"],
///      "delete": ["delete"]}
///
/// Declaring an action `metadata` is the folder's statement that it touches no content; it is
/// reviewed with the policies (the file counts in the revision). The built-in delete actions
/// are deletes whatever the file says, so a file can never turn a disposal into a use or a
/// metadata read that skips retention and legal holds.
public struct ActionsConfig: Sendable {
    /// Action id -> kind, for the ids the file lists (plus the built-in deletes).
    var kinds: [String: ActionKind]
    /// The ids the file lists, in its order (without the built-in deletes it does not list).
    public private(set) var listed: [String] = []

    static let file = "guardrails/actions.json"

    /// Deletes whatever the configuration says.
    public static let builtInDeletes = ["delete", "erase", "dispose", "purge"]

    /// The kind of `actionID` (compared by Unicode scalars, as Cedar compares ids).
    @inline(__always) public func kind(of actionID: String) -> ActionKind {
        kinds.scalarLookup(actionID) ?? .use
    }

    static func parse(_ json: JSON) throws(GuardrailConfigError) -> ActionsConfig {
        let r = try ConfigReader(file: file, path: "$", json: json)
        try r.only(["last_reviewed", "use", "metadata", "delete"])
        if r.object["last_reviewed"] != nil { _ = try r.lastReviewed() }
        var kinds: [String: ActionKind] = [:]
        var listedUnder: [String: String] = [:]
        for d in builtInDeletes { kinds[d] = .delete }
        for key in ["use", "metadata", "delete"] {
            let kind = ActionKind(rawValue: key)!
            for (i, id) in try r.strings(key, required: false).enumerated() {
                let path = ConfigReader.child("$", key) + "[\(i)]"
                if let other = listedUnder.first(where: { $0.key.scalarEquals(id) })?.value {
                    throw GuardrailConfigError(file: file, path: path, message: "\"\(id)\" is also listed under \(other); an action has one kind")
                }
                if kind != .delete, builtInDeletes.contains(where: { $0.scalarEquals(id) }) {
                    throw GuardrailConfigError(file: file, path: path,
                        message: "\"\(id)\" always deletes (retention and legal holds apply to it); it cannot be a \(key == "use" ? "use" : "metadata read")")
                }
                if kinds[id] != nil, !builtInDeletes.contains(where: { $0.scalarEquals(id) }) {
                    throw GuardrailConfigError(file: file, path: path, message: "action id is canonically equivalent to an earlier one; use distinct ids")
                }
                listedUnder[id] = key
                kinds[id] = kind
            }
        }
        var config = ActionsConfig(kinds: kinds)
        config.listed = Array(listedUnder.keys).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        return config
    }
}
