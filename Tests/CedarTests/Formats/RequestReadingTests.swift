import Testing
import Cedar
import CustosJSON

/// `Request.read` (the batch reader of `custos authorize --requests`) has two fast tiers, a
/// direct scan of plain JSON and a decode from jansson's tree, before the general path through
/// the `JSON` tree. Each tier must read a text to exactly the request the general path reads,
/// or give up; never accept a text the general path refuses.
struct RequestReadingTests {
    static let p = #""principal":{"type":"User","id":"u1"}"#
    static let a = #""action":{"type":"Action","id":"read"}"#
    static let r = #""resource":{"type":"Ns::Dataset","id":"ds 7"}"#
    static func request(_ context: String) -> String { "{\(p),\(a),\(r),\"context\":\(context)}" }

    static func general(_ text: String) throws -> Request { try Request(json: try JSON.parse(text)) }
    static func scanned(_ text: String) -> Request? {
        var t = text
        return t.withUTF8 { PlainJSONScanner.request(UnsafeRawBufferPointer($0)) }
    }
    static func viewed(_ text: String) -> Request? {
        var t = text
        return t.withUTF8 { b in JSON.withView(UnsafeRawBufferPointer(b)) { Request(view: $0) } }
    }
    static func read(_ text: String) -> Request? {
        var t = text
        return t.withUTF8 { Request.read(UnsafeRawBufferPointer($0)) }
    }

    /// Plain texts: the scan reads them, to the general path's request.
    @Test(arguments: [
        request("{}"),
        request(#"{"region":"eu-central-1","purpose":"quality","day":20524,"mfa":true,"ok":false}"#),
        request(#"{"study":{"__entity":{"type":"Study","id":"s13"}},"n":-42,"z":0}"#),
        request(#"{"ip":{"__extn":{"fn":"ip","arg":"10.1.2.3"}},"d":{"__extn":{"arg":"1.5","fn":"decimal"}}}"#),
        request(#"{"tags":["a","b","a"],"empty":[],"nested":{"x":{"y":[1,[2,[3]]]}},"rec":{}}"#),
        request(#"{"b":1,"a":2,"c":{"z":1,"y":2}}"#),
        request(#"{"big":999999999999999999,"small":-999999999999999999}"#),
        request(#"{"one":{"__entity":{"id":"x","type":"T"}}}"#),
        " \t{ \"context\" : { \"k\" : [ 1 , 2 ] } , \(a) , \(r) ,\n \(p) } \r\n",
        "{\(p),\(a),\(r)}",
    ])
    func plainTextsAreScannedToTheGeneralPathsRequest(_ text: String) throws {
        let expected = try Self.general(text)
        #expect(Self.scanned(text) == expected)
        #expect(Self.viewed(text) == expected)
        #expect(Self.read(text) == expected)
    }

    /// Valid texts outside the plain shape: the scan gives up, the view or the general path
    /// reads them, and `read` agrees with the general path.
    @Test(arguments: [
        request(#"{"name":"caf\u00e9"}"#),
        request(#"{"name":"café"}"#),
        request(#"{"q":"say \"hi\""}"#),
        request(#"{"big":1234567890123456789}"#),
        request(#"{"minus_zero":-0}"#),
        request(#"{"e":{"__entity":{"type":"T","id":"x"}},"rec":{"__entity":{"type":"T","id":"x"},"other":1}}"#),
        request(#"{"args":{"__extn":{"fn":"decimal","args":["1.5"]}}}"#),
        request(String(repeating: #"{"k":"#, count: 40) + "1" + String(repeating: "}", count: 40)),
        request(#"{"del":"a\#u{7F}b"}"#),
    ])
    func otherValidTextsGiveUpTheScanButReadTheSame(_ text: String) throws {
        let expected = try Self.general(text)
        #expect(Self.scanned(text) == nil)
        #expect(Self.read(text) == expected)
    }

    /// Texts the general path refuses: every fast tier gives up, so the error is the general
    /// path's (with its location) and nothing is decided.
    @Test(arguments: [
        "{\(p),\(p),\(a),\(r)}",
        request(#"{"a":1,"a":2}"#),
        request(#"{"a":{"x":1,"x":1}}"#),
        request(#"{"r":1.5}"#),
        request(#"{"r":1e3}"#),
        request(#"{"n":null}"#),
        request(#"{"n":01}"#),
        request(#"{"n":-}"#),
        request(#"{"n":tru}"#),
        request(#"{"n":truex}"#),
        request(#"{"ip":{"__extn":{"fn":"ip","arg":"not an address"}}}"#),
        request(#"{"ip":{"__extn":{"fn":"nosuch","arg":"1"}}}"#),
        request(#"{"ip":{"__extn":{"fn":"lessThan","arg":"1"}}}"#),
        request(#"{"e":{"__entity":{"type":"Bad Type","id":"x"}}}"#),
        request(#"{"e":{"__entity":{"type":"T","id":"x","z":1}}}"#),
        request(#"{"ctl":"a\#u{09}b"}"#),
        request("[]"),
        request(#"{"k":1,}"#),
        "{\(p),\(a),\(r),\"extra\":1}",
        "{\(p),\(a)}",
        "{\(p),\(a),\(r)} x",
        "{\(p),\(a),\(r)}{}",
        "{\"principal\":{\"type\":\"User\",\"id\":\"u1\"},\(a),\(r),\"context\":[]}",
        "{\"principal\":{\"type\":\"User\"},\(a),\(r)}",
        "{\"principal\":{\"type\":\"User\",\"id\":7},\(a),\(r)}",
    ])
    func textsTheGeneralPathRefusesAreRefusedByEveryTier(_ text: String) {
        #expect(throws: (any Error).self) { try Self.general(text) }
        #expect(Self.scanned(text) == nil)
        #expect(Self.viewed(text) == nil)
        #expect(Self.read(text) == nil)
    }

    /// A record wider than the scan's linear repeat search is cheap for goes to the general
    /// path, which reads it to the same request, and still refuses a repeat in it.
    @Test func aRecordWiderThanTheScanIsReadByTheGeneralPathAndAlsoRefusesARepeat() throws {
        let width = PlainJSONScanner.maxScannedFields + 1
        let members = (0..<width).map { "\"k\($0)\":\($0)" }
        let wide = Self.request("{" + members.joined(separator: ",") + "}")
        #expect(Self.scanned(wide) == nil)
        #expect(Self.read(wide) == (try Self.general(wide)))
        let repeated = Self.request("{" + (members + [#""k0":1"#]).joined(separator: ",") + "}")
        #expect(throws: (any Error).self) { try Self.general(repeated) }
        #expect(Self.read(repeated) == nil)
        let narrow = Self.request("{" + members.dropLast(2).joined(separator: ",") + "}")
        #expect(Self.scanned(narrow) == (try Self.general(narrow)))
    }

    /// Every prefix of a plain request: the scan reads it only if the general path reads it to
    /// the same request (only the whole text does).
    @Test func everyTruncationIsReadAsTheGeneralPathReadsItOrGivenUp() {
        let text = Self.request(#"{"region":"eu-west-1","n":[1,{"x":true}],"s":{"__entity":{"type":"S","id":"s1"}},"ip":{"__extn":{"fn":"ip","arg":"10.0.0.1"}}}"#)
        let bytes = Array(text.utf8)
        for n in 0...bytes.count {
            let prefix = String(decoding: bytes[..<n], as: UTF8.self)
            let fast = Self.read(prefix)
            if let fast { #expect(fast == (try? Self.general(prefix)), "cut at \(n)") }
            #expect((fast != nil) == (n == bytes.count), "cut at \(n)")
        }
    }
}

/// `EntityStore.load(text:)` reads from jansson's tree when it can: the same entities, and
/// the same refusal with the same message, as through the `JSON` tree.
struct EntitiesReadingTests {
    static func general(_ text: String) throws -> EntityStore {
        try EntityStore.load(json: try JSON.parse(text), file: "e.json")
    }

    static let cases = [
        #"[{"uid":{"type":"User","id":"a"},"attrs":{"n":1,"s":"x","set":[1,2],"r":{"k":true},"e":{"__entity":{"type":"G","id":"g"}},"ip":{"__extn":{"fn":"ip","arg":"10.0.0.1"}}},"parents":[{"type":"G","id":"g"}]},{"uid":{"type":"G","id":"g"},"attrs":{},"parents":[],"tags":{"site":"DE"}}]"#,
        #"[{"uid":{"__entity":{"type":"User","id":"caf\u00e9"}},"attrs":{"b":"a","a":"b"},"parents":[]}]"#,
        "[]",
        " [ ] ",
    ]

    @Test(arguments: cases)
    func entitiesReadTheSameEitherWay(_ text: String) throws {
        let fast = try EntityStore.load(text: text, file: "e.json"), slow = try Self.general(text)
        #expect(Set(fast.all) == Set(slow.all))
        for e in slow.all { #expect(fast.entry(e.uid)?.ancestors == slow.entry(e.uid)?.ancestors) }
    }

    /// The first text above is plain and scanned directly, to the general path's entities; the
    /// second (an escape) gives the scan up.
    @Test func plainEntitiesAreScannedAndOthersGiveTheScanUp() throws {
        func scanned(_ text: String) -> [Entity]? {
            var t = text
            return t.withUTF8 { PlainJSONScanner.entities(UnsafeRawBufferPointer($0)) }
        }
        let plain = Self.cases[0], escaped = Self.cases[1]
        #expect(try scanned(plain).map(Set.init) == Set(Self.general(plain).all))
        #expect(scanned(escaped) == nil)
        #expect(scanned(plain + "]") == nil)
        #expect(scanned(#"[{"uid":{"type":"U","id":"a"},"uid":{"type":"U","id":"b"},"attrs":{},"parents":[]}]"#) == nil)
    }

    @Test(arguments: [
        #"[{"uid":{"type":"User","id":"a"},"attrs":{},"parents":[],"extra":1}]"#,
        #"[{"uid":{"type":"User","id":"a"},"attrs":{"x":1.5},"parents":[]}]"#,
        #"[{"uid":{"type":"User","id":"a"},"attrs":[],"parents":[]}]"#,
        #"[{"uid":{"type":"User","id":"a"},"attrs":{},"parents":{}}]"#,
        #"[{"uid":{"type":"User","id":"a"},"parents":[]}]"#,
        #"[{"uid":{"type":"User","id":"a"},"attrs":{},"parents":[],"tags":[]}]"#,
        #"[{"uid":{"type":"User","id":"a"},"attrs":{},"parents":[]},{"uid":{"type":"User","id":"a"},"attrs":{},"parents":[]}]"#,
        #"[{"uid":{"type":"User","id":"a"},"attrs":{},"parents":[{"type":"User","id":"a"}]}]"#,
        #"{"uid":{"type":"User","id":"a"}}"#,
    ])
    func refusalsAreWordedAsThroughTheJSONTree(_ text: String) {
        var fast = "", slow = ""
        do { _ = try EntityStore.load(text: text, file: "e.json") } catch { fast = "\(error)" }
        do { _ = try Self.general(text) } catch { slow = "\(error)" }
        #expect(!fast.isEmpty)
        #expect(fast == slow)
    }
}
