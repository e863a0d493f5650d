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
        // A plain text by a direct scan, else from jansson's tree when every entity reads that
        // way; otherwise (errors included) through the JSON tree, which words the error. Either
        // way the same entities reach the same store, whose own refusals (duplicates, cycles,
        // limits) are the same.
        var copy = text
        if let entities = copy.withUTF8({ b in
            PlainJSONScanner.entities(UnsafeRawBufferPointer(b)) ?? JSON.withView(UnsafeRawBufferPointer(b), Self.entities(view:))
        }) {
            do { return try EntityStore(entities) } catch { throw FormatError(file: file, error.description) }
        }
        let json: JSON
        do { json = try JSON.parse(text) } catch { throw FormatError(file: file, error) }
        return try load(json: json, file: file)
    }
}

extension EntityStore {
    /// `load(json:)`'s entities from a jansson view; nil where it would throw.
    static func entities(view: JSONView) -> [Entity]? {
        guard view.kind == .array else { return nil }
        var out: [Entity] = []
        out.reserveCapacity(view.count)
        for i in 0..<view.count {
            guard let e = Entity(view: view[index: i]) else { return nil }
            out.append(e)
        }
        return out
    }
}

extension Entity {
    /// `init(json:)` from a jansson view; nil where that would throw.
    init?(view o: JSONView) {
        guard o.kind == .object else { return nil }
        var uid: EntityUID?, attrs: CedarRecord?, parents: [EntityUID]?, tags = CedarRecord()
        let ok = o.forEachMember { key, v in
            switch key.count {
            case 3 where key.elementsEqual("uid".utf8):
                uid = EntityUID(view: v)
                return uid != nil
            case 4 where key.elementsEqual("tags".utf8):
                guard v.kind == .object, let t = CedarRecord(view: v) else { return false }
                tags = t
                return true
            case 5 where key.elementsEqual("attrs".utf8):
                guard v.kind == .object else { return false }
                attrs = CedarRecord(view: v)
                return attrs != nil
            case 7 where key.elementsEqual("parents".utf8):
                guard v.kind == .array else { return false }
                var ps: [EntityUID] = []
                ps.reserveCapacity(v.count)
                for i in 0..<v.count {
                    guard let p = EntityUID(view: v[index: i]) else { return false }
                    ps.append(p)
                }
                parents = ps
                return true
            default:
                return false
            }
        }
        guard ok, let uid, let attrs, let parents else { return nil }
        self.init(uid: uid, attrs: attrs, parents: parents, tags: tags)
    }
}
