/// Subtyping and least upper bounds in strict mode: only the boolean singletons are subtypes
/// of something else; sets and records are compared element by element and attribute by
/// attribute (records must have the same attributes, with the same optionality); two
/// different entity types never meet.
enum TypeLattice {
    /// Why two types have no upper bound, worded for the "not compatible" error.
    enum Conflict: Error {
        case recordWidth, attributeQualifier, entityType, entityRecord, different

        var hint: String {
            switch self {
            case .recordWidth: "compatible record types must have exactly the same attributes"
            case .attributeQualifier: "corresponding attributes of compatible record types must both be required or both be optional"
            case .entityType: "different entity types are never compatible"
            case .entityRecord: "entity and record types are never compatible"
            case .different: "types must be exactly equal to be compatible"
            }
        }
    }

    static func isSubtype(_ a: CedarType, _ b: CedarType) -> Bool {
        switch (a, b) {
        case (.bool(let x), .bool(let y)): return x == y || y == .anyBool
        case (.long, .long), (.string, .string): return true
        case (.set(let x), .set(let y)): return isSubtype(x, y)
        case (.record(let x), .record(let y)):
            guard !x.isOpen || y.isOpen, x.attributes.count == y.attributes.count else { return false }
            for (k, ya) in y.attributes {
                guard let xa = x.attributes[k], xa.required == ya.required, isSubtype(xa.type, ya.type) else { return false }
            }
            return true
        case (.entity(let x), .entity(let y)): return x == y
        case (.ext(let x), .ext(let y)): return x == y
        default: return false
        }
    }

    static func leastUpperBound(_ a: CedarType, _ b: CedarType) -> Result<CedarType, Conflict> {
        if isSubtype(a, b) { return .success(b) }
        if isSubtype(b, a) { return .success(a) }
        switch (a, b) {
        case (.bool, .bool): return .success(.anyBool)
        case (.set(let x), .set(let y)): return leastUpperBound(x, y).map { .set($0) }
        case (.record(let x), .record(let y)):
            guard Set(x.attributes.keys) == Set(y.attributes.keys) else { return .failure(.recordWidth) }
            var out: [ScalarString: AttributeType] = [:]
            for (k, xa) in x.attributes {
                let ya = y.attributes[k]!
                switch leastUpperBound(xa.type, ya.type) {
                case .failure(let c): return .failure(c)
                case .success(let t):
                    guard xa.required == ya.required else { return .failure(.attributeQualifier) }
                    out[k] = AttributeType(t, required: xa.required)
                }
            }
            return .success(.record(RecordType(out, isOpen: x.isOpen || y.isOpen)))
        case (.entity, .entity): return .failure(.entityType)
        case (.entity, .record), (.record, .entity): return .failure(.entityRecord)
        default: return .failure(.different)
        }
    }

    /// Types no value inhabits both of. Deliberately narrow, as Cedar's: only two different
    /// entity types (sets of different element types share the empty set, for instance).
    static func areDisjoint(_ a: CedarType, _ b: CedarType) -> Bool {
        if case .entity(let x) = a, case .entity(let y) = b { return x != y }
        return false
    }
}
