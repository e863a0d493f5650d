import CustosJSON

/// One template link as the Cedar CLI writes it in its links file (`cedar link
/// --template-linked FILE`): `{"template_id": "t", "link_id": "l", "args": {"?principal":
/// "User::\"alice\""}}`. A slot value may also be written `{"type": "User", "id": "alice"}`.
public struct TemplateLinkSpec: Sendable, Hashable {
    public var templateID: String
    public var linkID: String
    public var values: [SlotID: EntityUID]

    public init(templateID: String, linkID: String, values: [SlotID: EntityUID]) {
        self.templateID = templateID; self.linkID = linkID; self.values = values
    }

    /// A JSON array of links. Every key is required and no other is allowed, so a misspelt
    /// `"link-id"` cannot drop a link; errors name the JSON path (`[2].args.?principal`).
    public static func parse(_ json: JSON) throws(FormatError) -> [TemplateLinkSpec] {
        guard case .array(let items) = json else {
            throw FormatError("expected a JSON array of links {\"template_id\", \"link_id\", \"args\"}, got \(json.kindName)")
        }
        var out: [TemplateLinkSpec] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            do { out.append(try one(item)) } catch { throw error.within("[\(i)]") }
        }
        return out
    }

    private static func one(_ json: JSON) throws(FormatError) -> TemplateLinkSpec {
        guard case .object(let o) = json else {
            throw FormatError("expected a link {\"template_id\", \"link_id\", \"args\"}, got \(json.kindName)")
        }
        let keys = ["template_id", "link_id", "args"]
        for k in o.keys where !keys.contains(where: { $0.utf8.elementsEqual(k.utf8) }) {
            throw FormatError(path: k, "unknown key (a link has template_id, link_id and args)")
        }
        func text(_ key: String) throws(FormatError) -> String {
            guard let v = o[key] else { throw FormatError("missing \"\(key)\"") }
            guard case .string(let s) = v, !s.isEmpty else { throw FormatError(path: key, "expected a non-empty string, got \(v.kindName)") }
            return s
        }
        let template = try text("template_id"), link = try text("link_id")
        guard let argsJ = o["args"] else { throw FormatError("missing \"args\" (the slot values, {\"?principal\": \"User::\\\"alice\\\"\"})") }
        guard case .object(let args) = argsJ else { throw FormatError(path: "args", "expected an object of slot values, got \(argsJ.kindName)") }
        var values: [SlotID: EntityUID] = [:]
        for m in args.members {
            let slot: SlotID
            if m.key.utf8.elementsEqual(SlotID.principal.rawValue.utf8) {
                slot = .principal
            } else if m.key.utf8.elementsEqual(SlotID.resource.rawValue.utf8) {
                slot = .resource
            } else {
                throw FormatError(path: "args." + m.key, "not a slot; a template has ?principal and ?resource")
            }
            do { values[slot] = try entity(m.value) } catch { throw error.within("args." + m.key) }
        }
        return TemplateLinkSpec(templateID: template, linkID: link, values: values)
    }

    /// `"User::\"alice\""` (Cedar's syntax, as the Cedar CLI writes it) or `{"type", "id"}`.
    private static func entity(_ json: JSON) throws(FormatError) -> EntityUID {
        if case .string(let s) = json {
            do { return try CedarParser.parseEntityUID(s) } catch {
                throw FormatError("expected an entity such as User::\"alice\": \(error.redacted ?? error.message)")
            }
        }
        return try EntityUID(json: json)
    }
}
