import Testing
import Cedar
import CustosJSON

/// Entities, context and request documents: what is refused, and that every refusal says where.
struct EntitiesFormatTests {
    static let valid = #"""
    [{"uid": {"type": "User", "id": "alice"}, "attrs": {"age": 30, "tags": ["a"]}, "parents": [{"type": "Group", "id": "g"}]},
     {"uid": {"type": "Group", "id": "g"}, "attrs": {}, "parents": [], "tags": {"site": "DE"}}]
    """#

    @Test func validEntitiesLoadWithAncestors() throws {
        let store = try EntityStore.load(text: Self.valid, file: "e.json")
        #expect(store.count == 2)
        #expect(store.isDescendant(EntityUID("User", "alice"), of: EntityUID("Group", "g")))
    }

    @Test(arguments: [
        (#"[{"uid":{"type":"A","id":"1"},"attrs":{},"parents":[]},{"uid":{"type":"A","id":"1"},"attrs":{},"parents":[]}]"#, "defined more than once"),
        (#"[{"uid":{"type":"A","id":"1"},"attrs":{},"parents":[{"type":"A","id":"1"}]}]"#, "cycle"),
        (#"[{"uid":{"type":"A","id":"1"},"attrs":{},"parents":[{"type":"A","id":"2"}]},{"uid":{"type":"A","id":"2"},"attrs":{},"parents":[{"type":"A","id":"3"}]},{"uid":{"type":"A","id":"3"},"attrs":{},"parents":[{"type":"A","id":"1"}]}]"#, "cycle"),
        (#"[{"uid":{"type":"A","id":"1"},"parents":[]}]"#, "missing \"attrs\""),
        (#"[{"uid":{"type":"A","id":"1"},"attrs":{}}]"#, "missing \"parents\""),
        (#"[{"uid":{"type":"A","id":"1"},"attrs":{},"parents":[],"parent":[]}]"#, "unknown key \"parent\""),
        (#"[{"uid":{"type":"A","id":"1"},"attrs":{"x":1.5},"parents":[]}]"#, "real number"),
        (#"[{"uid":{"type":"A","id":"1"},"attrs":{"x":null},"parents":[]}]"#, "null"),
        (#"[{"uid":{"type":"A","id":"1"},"attrs":{"x":{"__extn":{"fn":"decimal","arg":"nope"}}},"parents":[]}]"#, "decimal"),
        (#"[{"uid":{"type":"A","id":"1"},"attrs":{"x":{"__extn":{"fn":"rot13","arg":"x"}}},"parents":[]}]"#, "unknown extension function"),
        (#"[{"uid":{"type":"1A","id":"1"},"attrs":{},"parents":[]}]"#, "not a valid entity type name"),
        (#"[{"uid":{"type":"A","id":1},"attrs":{},"parents":[]}]"#, "string \"id\""),
        (#"{"uid":{"type":"A","id":"1"}}"#, "expected a JSON array"),
        (#"[{"uid":{"type":"A","id":"1"},"attrs":{"a":1,"a":2},"parents":[]}]"#, "duplicate"),
    ])
    func badEntitiesAreRefusedWithAReason(_ text: String, _ reason: String) {
        do {
            _ = try EntityStore.load(text: text, file: "entities.json")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.description.contains(reason), "\(error.description)")
            #expect(error.description.hasPrefix("entities.json"), "no file in \(error.description)")
        }
    }

    @Test func errorsNameTheJSONPathOfTheFault() {
        let text = #"[{"uid":{"type":"A","id":"1"},"attrs":{},"parents":[]},{"uid":{"type":"A","id":"2"},"attrs":{"deep":{"list":[1,2.5]}},"parents":[]}]"#
        #expect(throws: FormatError.self) { try EntityStore.load(text: text, file: "e.json") }
        do { _ = try EntityStore.load(text: text, file: "e.json") } catch {
            #expect(error.path == "[1].attrs.deep.list[1]")
        }
    }

    @Test func syntaxErrorsNameLineAndColumn() {
        do { _ = try EntityStore.load(text: "[\n  {\"uid\": }\n]", file: "e.json") } catch {
            #expect(error.description.hasPrefix("e.json:2:"), "\(error.description)")
        }
    }

    /// Every prefix of a valid document either loads or is refused with an error; none crashes.
    @Test func everyTruncationIsRefusedCleanly() {
        let bytes = Array(Self.valid.utf8)
        var refused = 0
        for n in 0..<bytes.count {
            do { _ = try EntityStore.load(text: String(decoding: bytes[..<n], as: UTF8.self)) } catch { refused += 1 }
        }
        #expect(refused == bytes.count)
    }

    @Test func garbageIsRefusedCleanly() {
        var rng = SystemRandomNumberGenerator()
        var refused = 0
        for _ in 0..<2_000 {
            let len = Int.random(in: 0..<64, using: &rng)
            let alphabet = Array(#"[]{}":,0123456789.-etruanfls\ _uid"#.utf8) + [0xC3, 0xFF, 0x00]
            let bytes = (0..<len).map { _ in alphabet.randomElement(using: &rng)! }
            do { _ = try EntityStore.load(text: String(decoding: bytes, as: UTF8.self)) } catch {
                refused += 1
                #expect(!error.message.isEmpty, "a refusal without a reason for \(bytes)")
            }
        }
        #expect(refused > 1_900, "random bytes should almost never be valid entities JSON")
    }

    @Test(arguments: [
        (#"{"principal":{"type":"U","id":"a"},"action":{"type":"Action","id":"v"}}"#, "missing \"resource\""),
        (#"{"principal":{"type":"U","id":"a"},"action":{"type":"Action","id":"v"},"resource":{"type":"R","id":"r"},"context":[]}"#, "context"),
        (#"{"principal":"U::\"a\"","action":{"type":"Action","id":"v"},"resource":{"type":"R","id":"r"}}"#, "principal"),
        (#"{"principal":{"type":"U","id":"a"},"action":{"type":"Action","id":"v"},"resource":{"type":"R","id":"r"},"contxt":{}}"#, "unknown key \"contxt\""),
    ])
    func badRequestsAreRefusedWithAReason(_ text: String, _ reason: String) throws {
        do {
            _ = try Request(json: JSON.parse(text))
            Issue.record("accepted: \(text)")
        } catch let e as FormatError {
            #expect(e.description.contains(reason), "\(e.description)")
        }
    }

    @Test func entityAndExtensionEscapesReadAndWriteBack() throws {
        let text = #"{"e":{"__entity":{"type":"A::B","id":"x"}},"d":{"__extn":{"fn":"decimal","arg":"1.5"}},"i":{"__extn":{"fn":"ip","arg":"10.0.0.0/8"}},"t":{"__extn":{"fn":"offset","args":[{"__extn":{"fn":"datetime","arg":"2024-01-01"}},{"__extn":{"fn":"duration","arg":"1h"}}]}},"r":{"type":"A","id":"y"}}"#
        let v = try Value(json: JSON.parse(text))
        guard case .record(let r) = v else { Issue.record("not a record"); return }
        #expect(r["e"] == .entity(EntityUID("A::B", "x")))
        #expect(r["t"] == .datetime(try CedarDatetime.parse("2024-01-01T01:00:00Z")))
        // `{"type","id"}` without the escape is a record (without a schema), as in Cedar.
        guard case .record? = r["r"] else { Issue.record("implicit form should be a record"); return }
        #expect(try Value(json: v.json) == v)
    }
}

@Test(arguments: [Int64.min, -62_167_219_200_001, 253_402_300_800_000, Int64.max, 0])
func datetimesOfAnyYearSurviveJSON(_ ms: Int64) throws {
    let v = Value.datetime(CedarDatetime(millisecondsSinceEpoch: ms))
    #expect(try Value(json: JSON.parse(v.json.serialized)) == v)
}
