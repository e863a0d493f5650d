import CustosJSON

/// Cedar's entities JSON read against a schema, as the reference engine reads it: attribute
/// and tag values by their declared types (see `Value(json:expected:schema:)`), every
/// entity's type declared, its required attributes present and no undeclared ones, its
/// parents of types it is declared `in`, enumerated ids declared. Action entities in the
/// data must match the schema's action hierarchy; the schema's actions are added to the store.
extension Entity {
    public init(json: JSON, schema: Schema) throws(FormatError) {
        guard case .object(let o) = json else { throw FormatError("expected an entity object, got \(json.kindName)") }
        for k in o.keys where !["uid", "attrs", "parents", "tags"].contains(k) {
            throw FormatError("unknown key \"\(k)\" (an entity has uid, attrs, parents and tags)")
        }
        guard let uidJ = o["uid"] else { throw FormatError("missing \"uid\"") }
        let uid: EntityUID
        do { uid = try EntityUID(json: uidJ) } catch { throw error.within("uid") }
        if uid.type.isAction {
            self = try Self.action(uid, o, schema)
            return
        }
        guard let def = schema.entityTypes[uid.type] else {
            let hint = Suggestion.nearest(uid.type.description, among: schema.entityTypeNames.map(\.description)).map { "; did you mean \($0)?" } ?? ""
            throw FormatError(path: "uid", "entity type \(uid.type) is not declared in the schema\(hint)")
        }
        do { try schema.checkReference(uid) } catch { throw error.within("uid") }
        guard let attrsJ = o["attrs"] else { throw FormatError("entity \(uid): missing \"attrs\"") }
        guard case .object(let attrsO) = attrsJ else { throw FormatError(path: "attrs", "expected an object, got \(attrsJ.kindName)") }
        let attrs: CedarRecord
        do { attrs = try CedarRecord(json: attrsO, expected: def.attributes, schema: schema) } catch { throw error.within("attrs") }
        guard let parentsJ = o["parents"] else { throw FormatError("entity \(uid): missing \"parents\"") }
        guard case .array(let ps) = parentsJ else { throw FormatError(path: "parents", "expected an array, got \(parentsJ.kindName)") }
        var parents: [EntityUID] = []
        for (i, p) in ps.enumerated() {
            do throws(FormatError) {
                let parent = try EntityUID(json: p)
                try schema.checkReference(parent)
                guard def.allowedParents.contains(parent.type) else {
                    let allowed = def.allowedParents.sorted().map(\.description)
                    throw FormatError("\(uid.type) entities cannot be members of \(parent.type) entities (the schema allows \(allowed.isEmpty ? "no parents" : allowed.joined(separator: ", ")))")
                }
                parents.append(parent)
            } catch { throw error.within("parents[\(i)]") }
        }
        var tags = CedarRecord()
        if let tagsJ = o["tags"] {
            guard case .object(let to) = tagsJ else { throw FormatError(path: "tags", "expected an object, got \(tagsJ.kindName)") }
            if let tagType = def.tags {
                var fields: [CedarRecord.Field] = []
                for m in to.members {
                    do { fields.append(CedarRecord.Field(key: m.key, value: try Value(json: m.value, expected: tagType, schema: schema))) }
                    catch { throw error.within(m.key).within("tags") }
                }
                tags = CedarRecord(fields: fields)
            } else if let first = to.keys.first {
                throw FormatError(path: "tags.\(first)", "entity type \(uid.type) has no tags in the schema")
            }
        }
        self.init(uid: uid, attrs: attrs, parents: parents, tags: tags)
    }

    /// An action entity in the data: declared, without attributes or tags, its parents actions.
    private static func action(_ uid: EntityUID, _ o: JSONObject, _ schema: Schema) throws(FormatError) -> Entity {
        guard schema.actions[uid] != nil else { throw FormatError(path: "uid", "action \(uid) is not declared in the schema") }
        if case .object(let a)? = o["attrs"], !a.isEmpty { throw FormatError(path: "attrs", "actions cannot have attributes") }
        if case .object(let t)? = o["tags"], !t.isEmpty { throw FormatError(path: "tags", "actions cannot have tags") }
        guard case .array(let ps)? = o["parents"] else { throw FormatError("entity \(uid): missing \"parents\" array") }
        var parents: [EntityUID] = []
        for (i, p) in ps.enumerated() {
            do throws(FormatError) {
                let parent = try EntityUID(json: p)
                guard parent.type.isAction else { throw FormatError("an action's parents must be actions, not \(parent)") }
                parents.append(parent)
            } catch { throw error.within("parents[\(i)]") }
        }
        return Entity(uid: uid, parents: parents)
    }
}

extension EntityStore {
    /// Reads a Cedar entities JSON array against a schema and builds the store, adding the
    /// schema's action entities.
    public static func load(json: JSON, file: String = "", schema: Schema) throws(FormatError) -> EntityStore {
        guard case .array(let items) = json else {
            throw FormatError(file: file, "expected a JSON array of entities, got \(json.kindName)")
        }
        var entities: [Entity] = []
        entities.reserveCapacity(items.count + schema.actions.count)
        for (i, item) in items.enumerated() {
            do { entities.append(try Entity(json: item, schema: schema)) } catch {
                var e = error.within("[\(i)]"); e.file = file; throw e
            }
        }
        // Actions in the data must have the schema's hierarchy; the schema supplies the rest.
        var dataParents: [EntityUID: [EntityUID]] = [:]
        for e in entities where e.uid.type.isAction {
            guard dataParents.updateValue(e.parents, forKey: e.uid) == nil else {
                throw FormatError(file: file, EntityError.duplicate(e.uid).description)
            }
        }
        for (uid, _) in dataParents {
            var seen = Set<EntityUID>()
            var stack = dataParents[uid]!
            while let p = stack.popLast() {
                if seen.insert(p).inserted { stack.append(contentsOf: dataParents[p] ?? []) }
            }
            if seen != schema.actions[uid]!.ancestors {
                throw FormatError(file: file, "action \(uid) is in different action groups in the data than in the schema")
            }
        }
        for a in schema.actionEntities where dataParents[a.uid] == nil { entities.append(a) }
        do { return try EntityStore(entities) } catch { throw FormatError(file: file, error.description) }
    }

    public static func load(text: String, file: String = "", schema: Schema) throws(FormatError) -> EntityStore {
        let json: JSON
        do { json = try JSON.parse(text) } catch { throw FormatError(file: file, error) }
        return try load(json: json, file: file, schema: schema)
    }
}
