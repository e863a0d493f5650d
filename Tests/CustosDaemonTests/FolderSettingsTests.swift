import CustosDaemon
import Testing

@Suite struct FolderSettingsTests {
    @Test func anAbsentOrEmptyFileMeansTheDefaults() throws {
        #expect(try FolderSettings.parse(Array("{}".utf8), path: "p/custos.json") == .default)
        #expect(FolderSettings.default.forbidErrors == .deny)
        #expect(FolderSettings.default.authoritativeTypes == nil && FolderSettings.default.dataTypes == nil)
    }

    @Test func everyMemberIsRead() throws {
        let s = try FolderSettings.parse(Array(#"{"description":"x","forbid_errors":"skip","authoritative_types":["User","Role"],"data_types":["Dataset"]}"#.utf8),
                                         path: "p/custos.json")
        #expect(s.forbidErrors == .skip)
        #expect(s.authoritativeTypes == ["User", "Role"])
        #expect(s.dataTypes == ["Dataset"])
    }

    @Test("a bad file is refused naming the file and the path", arguments: [
        (#"{"forbid_error":"skip"}"#, "p/custos.json: $.forbid_error: unknown key"),
        (#"{"forbid_errors":"ignore"}"#, "p/custos.json: $.forbid_errors: expected \"deny\" or \"skip\""),
        (#"{"data_types":"Dataset"}"#, "p/custos.json: $.data_types: expected an array"),
        (#"{"authoritative_types":["User",""]}"#, "p/custos.json: $.authoritative_types[1]: expected an entity type name"),
        (#"[]"#, "p/custos.json: $: expected an object"),
        (#"{"forbid_errors":"#, "p/custos.json:1:"),
    ])
    func badFilesAreRefused(_ text: String, _ message: String) {
        #expect {
            _ = try FolderSettings.parse(Array(text.utf8), path: "p/custos.json")
        } throws: { error in
            (error as? PolicyStoreError)?.message.hasPrefix(message) == true
        }
    }
}

/// `authoritative_types` and `data_types` replace their defaults: a type left out, or a
/// misspelt one, opens what the folder describes. The load says so (as `custos check` shows,
/// and `--strict` refuses), and an exact list says nothing.
@Suite struct FolderTrustWarningsTests {
    func warnings(_ custos: String?) throws -> [String] {
        let f = try GuardrailFixture { dir in
            if let custos { try custos.write(toFile: dir + "/custos.json", atomically: true, encoding: .utf8) }
        }
        return try #require(f.store.snapshot).warnings
    }

    @Test(arguments: [
        (#"{"authoritative_types":["Device"]}"#, "authoritative_types leaves out Dataset, Role, Study, User"),
        (#"{"authoritative_types":["User","Role","Study"]}"#, "authoritative_types leaves out Dataset,"),
        (#"{"data_types":["Datset"]}"#, "data_types leaves out Dataset,"),
        (#"{"data_types":["Datset","Dataset"]}"#, "data_types names Datset, of which entities.json has no entity"),
    ])
    func aListThatLeavesOutWhatTheFolderDescribesIsAWarning(custos: String, says: String) throws {
        let w = try warnings(custos)
        #expect(w.contains { $0.contains(says) }, "\(w)")
    }

    @Test func theDefaultsOrAnExactListWarnOfNothing() throws {
        #expect(try warnings(nil).isEmpty)
        #expect(try warnings(#"{"authoritative_types":["User","Role","Study","Dataset","Device"],"data_types":["Dataset"]}"#).isEmpty)
    }
}

/// An id `guardrails/actions.json` lists that nothing in the folder names is most likely
/// misspelt: the action meant then counts as a use, and a delete would skip the holds.
@Test func anActionsJSONIdThatNothingNamesIsAWarning() throws {
    let f = try GuardrailFixture { dir in
        let path = dir + "/guardrails/actions.json"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        try text.replacingOccurrences(of: #""delete": ["#, with: #""delete": ["purge_dat", "#).write(toFile: path, atomically: true, encoding: .utf8)
    }
    let w = try #require(f.store.snapshot).warnings
    #expect(w.contains { $0.hasPrefix("guardrails/actions.json lists purge_dat, which no policy") }, "\(w)")
    #expect(try #require(GuardrailFixture().store.snapshot).warnings.isEmpty, "the example folder names every id it lists")
}
