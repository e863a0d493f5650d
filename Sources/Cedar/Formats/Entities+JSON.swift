import CustosJSON

extension Entity {
    /// One element of Cedar's entities JSON: `uid`, `attrs` and `parents` are required (as the
    /// reference engine requires them), `tags` is optional, and any other key is refused so a
    /// misspelt key cannot silently drop data.
    public init(json: JSON) throws(FormatError) {
        guard case .object(let o) = json else { throw FormatError("expected an entity object, got \(json.kindName)") }
        for k in o.keys where !["uid", "attrs", "parents", "tags"].contains(k) {
            throw FormatError("unknown key \"\(k)\" (an entity has uid, attrs, parents and tags)")
        }
        guard let uidJ = o["uid"] else { throw FormatError("missing \"uid\"") }
        let uid: EntityUID
        do { uid = try EntityUID(json: uidJ) } catch { throw error.within("uid") }
        guard let attrsJ = o["attrs"] else { throw FormatError("entity \(uid): missing \"attrs\"") }
        guard case .object(let attrsO) = attrsJ else { throw FormatError(path: "attrs", "expected an object, got \(attrsJ.kindName)") }
        let attrs: CedarRecord
        do { attrs = try CedarRecord(json: attrsO) } catch { throw error.within("attrs") }
        guard let parentsJ = o["parents"] else { throw FormatError("entity \(uid): missing \"parents\"") }
        guard case .array(let ps) = parentsJ else { throw FormatError(path: "parents", "expected an array, got \(parentsJ.kindName)") }
        var parents: [EntityUID] = []
        for (i, p) in ps.enumerated() {
            do { parents.append(try EntityUID(json: p)) } catch { throw error.within("parents[\(i)]") }
        }
        var tags = CedarRecord()
        if let tagsJ = o["tags"] {
            guard case .object(let to) = tagsJ else { throw FormatError(path: "tags", "expected an object, got \(tagsJ.kindName)") }
            do { tags = try CedarRecord(json: to) } catch { throw error.within("tags") }
        }
        self.init(uid: uid, attrs: attrs, parents: parents, tags: tags)
    }
}

extension EntityStore {
    /// Reads a Cedar entities JSON array and builds the store (duplicates and cycles refused).
    public static func load(json: JSON, file: String = "") throws(FormatError) -> EntityStore {
        guard case .array(let items) = json else {
            throw FormatError(file: file, "expected a JSON array of entities, got \(json.kindName)")
        }
        var entities: [Entity] = []
        entities.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            do { entities.append(try Entity(json: item)) } catch {
                var e = error.within("[\(i)]"); e.file = file; throw e
            }
        }
        do { return try EntityStore(entities) } catch { throw FormatError(file: file, error.description) }
    }

    public static func load(text: String, file: String = "") throws(FormatError) -> EntityStore {
        let json: JSON
        do { json = try JSON.parse(text) } catch { throw FormatError(file: file, error) }
        return try load(json: json, file: file)
    }
}
