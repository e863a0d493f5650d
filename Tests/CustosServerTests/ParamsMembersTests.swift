import CustosJSON
import CustosServer
import Testing

/// `Params.only` and `Params.none`, which every method reads its params through.
@Suite struct ParamsMembersTests {
    static func error(_ text: String?, _ read: (Params) throws(RPCError) -> Void) throws -> String? {
        let p = Params(try text.map { try JSON.parse($0) })
        do { try read(p); return nil } catch { return error.code == RPCError.invalidParamsCode ? error.message : "code \(error.code)" }
    }

    /// (params, the field of the -32602, or nil when accepted)
    @Test(arguments: [
        (nil, nil), ("{}", nil), ("[]", nil), (#"{"dataset":"d"}"#, nil), (#"{"dataset":"d","matter":"m"}"#, nil),
        (#"{"datset":"d"}"#, "params.datset"),
        (#"{"dataset":"d","Dataset":"e"}"#, "params.Dataset"),
        (#"["d"]"#, "params"),
    ] as [(String?, String?)])
    func onlyRefusesMembersNotListedNamingThem(_ text: String?, _ field: String?) throws {
        let message = try Self.error(text) { p throws(RPCError) in try p.only(["dataset", "matter"], method: "hold.set") }
        if let field {
            #expect(message?.hasPrefix("invalid params: \(field): ") == true, "\(message ?? "accepted")")
        } else {
            #expect(message == nil)
        }
    }

    @Test(arguments: [
        (nil, nil), ("{}", nil), ("[]", nil),
        (#"{"unknown":1}"#, "params.unknown"),
        ("[1]", "params"),
    ] as [(String?, String?)])
    func noneAcceptsOnlyNothing(_ text: String?, _ field: String?) throws {
        let message = try Self.error(text) { p throws(RPCError) in try p.none(method: "health") }
        if let field {
            #expect(message?.hasPrefix("invalid params: \(field): ") == true, "\(message ?? "accepted")")
        } else {
            #expect(message == nil)
        }
    }

    /// Keys compare by bytes, as on the wire: a key canonically equivalent to a known one
    /// ("e" + U+0301 for "é") is still unknown.
    @Test func keysCompareByBytesNotCanonicalEquivalence() throws {
        let o = try #require(try JSON.parse(#"{"caf\u00e9":1}"#).objectValue)
        #expect(o.firstUnknownMember(allowed: ["caf\u{E9}"]) == nil)
        #expect(o.firstUnknownMember(allowed: ["cafe\u{301}"])?.key == "caf\u{E9}")
    }
}
