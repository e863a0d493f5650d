/// Cedar's template linking: a template (`?principal`, `?resource` in its scope) decides nothing
/// until it is linked, that is copied under a new id with every slot filled by an entity. The
/// copy is an ordinary policy; the template stays as it was and may be linked again.
///
/// As in the reference engine (cedarpy 4.12, `PolicySet.link`), a link must give a value for
/// every slot the template has and for no other; values may be of any entity type (the
/// validator, not linking, checks them against a schema: `Validator.validate(link:)`).
public struct TemplateLinkError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension Policy {
    /// Where a linked policy comes from: the template's id and the values of its slots.
    public struct Link: Sendable, Hashable {
        /// The template's id (`policyN`).
        public let template: String
        public let values: [SlotID: EntityUID]
    }

    /// The slots this policy's scope has, `?principal` first.
    public var slots: [SlotID] {
        func has(_ c: ScopeConstraint) -> Bool {
            switch c {
            case .eq(.slot), .in(.slot), .isIn(_, .slot): true
            default: false
            }
        }
        return (has(principal) ? [SlotID.principal] : []) + (has(resource) ? [SlotID.resource] : [])
    }

    /// This template linked under `id`: its scope with each slot replaced by its value, its
    /// annotations, conditions and location unchanged.
    public func linked(id: String, values: [SlotID: EntityUID]) throws(TemplateLinkError) -> Policy {
        guard isTemplate else { throw TemplateLinkError("\(self.id) is not a template (it has no ?principal or ?resource slot)") }
        let slots = self.slots
        for s in slots where values[s] == nil {
            throw TemplateLinkError("no value for \(s.rawValue): the template has \(slots.map(\.rawValue).joined(separator: " and "))")
        }
        for s in [SlotID.principal, .resource] where values[s] != nil && !slots.contains(s) {
            throw TemplateLinkError("a value for \(s.rawValue), which the template does not have (it has \(slots.map(\.rawValue).joined(separator: " and ")))")
        }
        func fill(_ c: ScopeConstraint, _ s: SlotID) -> ScopeConstraint {
            guard let v = values[s] else { return c }
            switch c {
            case .eq(.slot): return .eq(.entity(v))
            case .in(.slot): return .in(.entity(v))
            case .isIn(let t, .slot): return .isIn(t, .entity(v))
            default: return c
            }
        }
        return Policy(linking: self, id: id, principal: fill(principal, .principal), resource: fill(resource, .resource),
                      link: Link(template: self.id, values: values))
    }
}
