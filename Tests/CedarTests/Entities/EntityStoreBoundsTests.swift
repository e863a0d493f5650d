import Cedar
import CustosJSON
import Testing

/// A request's entities are an overlay on the loaded store, and every hierarchy has bounds:
/// a parent chain costs quadratic memory as full ancestor sets, so its length is limited
/// before any set is built (docs/security.md, "Limits").
struct EntityStoreBoundsTests {
    static func uid(_ type: String, _ id: Int) -> EntityUID { EntityUID(type, "\(id)") }

    /// `T::"0"` child of `T::"1"` child of ... `T::"n-1"`, whose own parents are `top`.
    static func chain(_ type: String, _ n: Int, top: [EntityUID] = []) -> [Entity] {
        (0..<n).map { i in Entity(uid: uid(type, i), parents: i + 1 < n ? [uid(type, i + 1)] : top) }
    }

    static func chainJSON(_ n: Int) -> String {
        var s = "["
        for i in 0..<n {
            if i > 0 { s += "," }
            let parents = i + 1 < n ? #"[{"type":"G","id":"\#(i + 1)"}]"# : "[]"
            s += #"{"uid":{"type":"G","id":"\#(i)"},"attrs":{},"parents":\#(parents)}"#
        }
        return s + "]"
    }

    /// A small folder: alice in team, team in org.
    static func folder() throws -> EntityStore {
        try EntityStore([
            Entity(uid: EntityUID("User", "alice"), parents: [EntityUID("Team", "t")]),
            Entity(uid: EntityUID("Team", "t"), parents: [EntityUID("Org", "o")]),
            Entity(uid: EntityUID("Org", "o")),
            // Names a parent the folder does not define.
            Entity(uid: EntityUID("User", "bob"), parents: [EntityUID("Team", "ghost")]),
        ])
    }

    @Test func requestEntitiesReachTheFolderHierarchyThroughTheirParents() throws {
        let base = try Self.folder()
        let store = try base.adding([
            Entity(uid: EntityUID("Session", "s1"), parents: [EntityUID("Session", "s2")]),
            Entity(uid: EntityUID("Session", "s2"), parents: [EntityUID("Team", "t")]),
        ])
        #expect(store.isDescendant(EntityUID("Session", "s1"), of: EntityUID("Org", "o")))
        #expect(store.isDescendant(EntityUID("Session", "s1"), of: EntityUID("Session", "s2")))
        #expect(store.entry(EntityUID("Session", "s1"))?.ancestors
                == [EntityUID("Session", "s2"), EntityUID("Team", "t"), EntityUID("Org", "o")])
        #expect(store.isDescendant(EntityUID("User", "alice"), of: EntityUID("Org", "o")))
        #expect(!store.isDescendant(EntityUID("User", "alice"), of: EntityUID("Session", "s2")))
        #expect(store.count == base.count + 2)
        // The loaded store is unchanged.
        #expect(base.entry(EntityUID("Session", "s1")) == nil)
    }

    /// The loaded entries are shared, not rebuilt: a request's cost does not depend on how many
    /// entities the folder has (on a 100,031-entity folder a rebuild made a decision 385 ms).
    @Test func addingRequestEntitiesSharesTheLoadedEntriesInsteadOfRebuildingThem() throws {
        let folder = try EntityStore(Self.chain("G", 50) + (0..<5_000).map {
            Entity(uid: Self.uid("User", $0), parents: [Self.uid("G", $0 % 50)])
        })
        let store = try folder.adding([Entity(uid: EntityUID("Session", "x"), parents: [Self.uid("User", 7)])])
        for probe in [Self.uid("User", 7), Self.uid("G", 0), Self.uid("G", 49), Self.uid("User", 4_999)] {
            #expect(store.entry(probe) === folder.entry(probe))
        }
        // User::"7" and its own ancestors: G 7 to 49.
        #expect(store.entry(EntityUID("Session", "x"))?.ancestors.count == 1 + (50 - 7))
    }

    @Test func aRequestEntityMayNotRedefineALoadedOneOrRepeatItself() throws {
        let base = try Self.folder()
        #expect(throws: EntityError.duplicate(EntityUID("Team", "t"))) {
            try base.adding([Entity(uid: EntityUID("Team", "t"))])
        }
        #expect(throws: EntityError.duplicate(EntityUID("S", "1"))) {
            try base.adding([Entity(uid: EntityUID("S", "1")), Entity(uid: EntityUID("S", "1"))])
        }
    }

    /// Defining it would change the loaded `User::"bob"`'s ancestors, which are computed once.
    @Test func aRequestMayNotDefineAnEntityThatALoadedEntityNamesAsItsParent() throws {
        let base = try Self.folder()
        #expect(throws: EntityError.namedByLoadedEntity(EntityUID("Team", "ghost"), child: EntityUID("User", "bob"))) {
            try base.adding([Entity(uid: EntityUID("Team", "ghost"), parents: [EntityUID("Org", "o")])])
        }
        let message = EntityError.namedByLoadedEntity(EntityUID("Team", "ghost"), child: EntityUID("User", "bob")).description
        #expect(message.contains(#"Team::"ghost""#) && message.contains(#"User::"bob""#))
    }

    @Test func aCycleAmongRequestEntitiesIsRefused() throws {
        let base = try Self.folder()
        do {
            _ = try base.adding([Entity(uid: EntityUID("S", "a"), parents: [EntityUID("S", "b")]),
                                 Entity(uid: EntityUID("S", "b"), parents: [EntityUID("S", "a")])])
            Issue.record("a cycle was accepted")
        } catch {
            guard case .cycle = error else { Issue.record("expected a cycle, got \(error)"); return }
        }
    }

    /// 12,850 entities in one chain took 5.9 GB and 30-46 s per request before the limits.
    @Test(arguments: [
        (12_850, EntityStore.RequestLimits(), EntityError.tooManyRequestEntities(count: 12_850, limit: 1_000)),
        (1_000, EntityStore.RequestLimits(), EntityError.tooDeep(EntityUID("U", "967"), limit: 32, request: true)),
        (33, EntityStore.RequestLimits(), EntityError.tooDeep(EntityUID("U", "0"), limit: 32, request: true)),
        // 32 deep is within the depth limit; its 496 links are not within 400.
        (32, EntityStore.RequestLimits(maxAncestorLinks: 400),
         EntityError.tooManyAncestorLinks(at: EntityUID("U", "3"), limit: 400, request: true)),
    ])
    func aRequestChainBeyondALimitIsRefusedNamingTheLimit(length: Int, limits: EntityStore.RequestLimits, expected: EntityError) throws {
        let base = try Self.folder()
        #expect(throws: expected) { try base.adding(Self.chain("U", length), limits: limits) }
    }

    @Test func aRequestChainAtTheDepthLimitIsAccepted() throws {
        let store = try Self.folder().adding(Self.chain("U", 32, top: [EntityUID("Team", "t")]))
        #expect(store.isDescendant(Self.uid("U", 0), of: EntityUID("Org", "o")))
        #expect(store.entry(Self.uid("U", 0))?.ancestors.count == 31 + 2)
    }

    /// Loaded ancestors count too: attaching to a deep folder entity is not free.
    @Test func theAncestorLinksOfARequestIncludeTheLoadedAncestorsItReaches() throws {
        let folder = try EntityStore(Self.chain("G", 100))
        let oneEach = (0..<10).map { Entity(uid: Self.uid("S", $0), parents: [Self.uid("G", 0)]) }
        #expect(throws: EntityError.tooManyAncestorLinks(at: Self.uid("S", 9), limit: 950, request: true)) {
            try folder.adding(oneEach, limits: EntityStore.RequestLimits(maxAncestorLinks: 950))
        }
        #expect(try folder.adding(oneEach, limits: EntityStore.RequestLimits(maxAncestorLinks: 1_000)).count == 110)
    }

    /// A 16,000-deep chain (1.3 MB) made SIGHUP kill the daemon and `check` abort.
    @Test func aFolderChainBeyondTheDepthLimitIsRefusedNamingTheEntityTheFileAndTheLimit() throws {
        do {
            _ = try EntityStore.load(text: Self.chainJSON(16_000), file: "policies/entities.json")
            Issue.record("a 16,000-deep chain was accepted")
        } catch {
            #expect(error.file == "policies/entities.json")
            #expect(error.message.contains(#"G::"14999""#), "\(error.message)")
            #expect(error.message.contains("the limit is 1000"), "\(error.message)")
        }
    }

    @Test func aFolderChainAtTheDepthLimitLoads() throws {
        let store = try EntityStore.load(text: Self.chainJSON(1_000), file: "e.json")
        #expect(store.isDescendant(EntityUID("G", "0"), of: EntityUID("G", "999")))
        #expect(store.entry(EntityUID("G", "0"))?.ancestors.count == 999)
    }

    /// Wide hierarchies are bounded by the links they hold, reported at the entity that
    /// crosses the limit, before its set is built.
    @Test func aFolderHierarchyBeyondTheAncestorLinkLimitIsRefused() throws {
        let limits = EntityStore.HierarchyLimits(maxDepth: 1_000, maxAncestorLinks: 1_000)
        // 50 deep: 1,225 links.
        #expect(throws: EntityError.tooManyAncestorLinks(at: Self.uid("G", 4), limit: 1_000, request: false)) {
            try EntityStore(Self.chain("G", 50), limits: limits)
        }
        #expect(try EntityStore(Self.chain("G", 45), limits: limits).count == 45)
    }

    @Test func everyLimitMessageNamesTheEntityAndTheLimit() {
        let cases: [(EntityError, [String])] = [
            (.tooDeep(EntityUID("G", "7"), limit: 1_000, request: false), [#"G::"7""#, "the limit is 1000", "levels deep"]),
            (.tooDeep(EntityUID("U", "7"), limit: 32, request: true), [#"U::"7""#, "the limit is 32", "request entities"]),
            (.tooManyAncestorLinks(at: EntityUID("G", "7"), limit: 10, request: false), [#"G::"7""#, "the limit is 10", "hierarchy"]),
            (.tooManyAncestorLinks(at: EntityUID("U", "7"), limit: 10, request: true), [#"U::"7""#, "the limit is 10", "request entities"]),
            (.tooManyRequestEntities(count: 12, limit: 10), ["12 entities", "the limit is 10"]),
        ]
        for (error, parts) in cases {
            for part in parts { #expect(error.description.contains(part), "\(error.description) lacks \(part)") }
        }
    }
}
