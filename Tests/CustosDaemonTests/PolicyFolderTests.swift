import CustosDaemon
import Foundation
import Glibc
import Testing

/// What a policies folder may hold (docs/operations.md, "The policies folder"): every entry is
/// read or explicitly ignored, links stay inside the folder, a byte-order mark gets one verdict,
/// and no error copies what a file holds.
@Suite struct PolicyFolderTests {
    static let forbid = "@id(\"no-export\") forbid(principal, action == Action::\"export\", resource);\n"

    /// The example deployment's purposes.json, so that a folder with one other guardrail file
    /// gets as far as parsing it.
    func examplePurposes(for name: String) throws -> String? {
        guard name.hasPrefix("guardrails/regions") else { return nil }
        return try String(contentsOfFile: examplePolicies + "/guardrails/purposes.json", encoding: .utf8)
    }

    func loadError(_ dir: String) -> String? {
        do { _ = try PolicyStore.load(directory: dir); return nil } catch { return error.message }
    }

    // MARK: unrecognised entries

    @Test("a file that looks like a policy but is not read fails the load, naming it", arguments: [
        "90-forbid.cedar.bak", "90-forbid.Cedar", "90-forbid.cedr", "90-forbid.cedar ", ".90-forbid.cedar",
        "notes.txt", "residency.json", "Entities.json", ".cedar",
    ])
    func unrecognisedFilesFailTheLoad(name: String) throws {
        let dir = try makeFolder(["10-permit.cedar": permitAll, name: Self.forbid])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let message = try #require(loadError(dir), "\(name) was silently not read")
        #expect(message.hasPrefix(dir + "/" + name + ": not a file the daemon reads"), "\(message)")
        #expect(message.contains(".custosignore"))
    }

    /// A sparse terabyte (`truncate -s 1T`) must be a failed load naming the file, not an
    /// allocation of its size that aborts the daemon.
    @Test(arguments: ["entities.json", "20-huge.cedar", "guardrails/regions.json"])
    func aFileOverTheSizeLimitFailsTheLoadNamingIt(name: String) throws {
        let dir = try makeFolder(["10-permit.cedar": permitAll, name: ""])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(truncate(dir + "/" + name, 1 << 40) == 0)
        let message = try #require(loadError(dir))
        #expect(message.hasPrefix(dir + "/" + name + ": 1099511627776 bytes, over the limit of \(PolicyFolder.maxFileBytes)"), "\(message)")
    }

    @Test func aNearMissOfAPolicyFileNameSaysWhatIsRead() throws {
        let dir = try makeFolder(["90-forbid.Cedar": Self.forbid])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(loadError(dir)?.contains("only names ending exactly in .cedar") == true)
    }

    @Test("an unknown folder, or a recognised name of the wrong kind, fails the load", arguments: [
        ("drafts/a.cedar", "drafts: not a file the daemon reads"),
        ("entities.json/x", "entities.json: is not a regular file"),
        ("requests", "requests: is not a folder"),
        ("guardrails/notes.md", "guardrails/notes.md: unknown guardrail file"),
        ("guardrails/.regions.json.swp", "guardrails/.regions.json.swp: unknown guardrail file"),
        ("guardrails/old/regions.json", "guardrails/old: unknown guardrail file"),
    ])
    func wrongEntriesFailTheLoad(path: String, expected: String) throws {
        let dir = try makeFolder(["a.cedar": permitAll, path: "{}"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let message = try #require(loadError(dir))
        #expect(message.hasPrefix(dir + "/" + expected), "\(message)")
    }

    @Test func custosignoreListsWhatIsMeantToBeThere() throws {
        let ignore = """
            # editor and version-control files
            .git
            *.bak
              notes-?.txt
            guardrails/README.md

            """
        let dir = try makeFolder(["a.cedar": permitAll, ".custosignore": ignore, ".git/HEAD": "ref",
                                  "90-forbid.cedar.bak": Self.forbid, "notes-1.txt": "x", "guardrails/README.md": "x",
                                  "requests/x.json": "{}"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try PolicyStore.load(directory: dir)
        #expect(s.policyCount == 1)
        #expect(s.files == [".custosignore", "a.cedar"])
        #expect(s.guardrails.status == .inactive)
    }

    @Test("an ignore pattern matches by bytes, one level, and never hides what is read", arguments: [
        ("*.bak", "X.BAK", false), ("*.bak", "a.bak", true), ("notes-?.txt", "notes-10.txt", false),
        ("*", "guardrails/x", false), ("guardrails/*", "guardrails/x", true), ("*.txt", "a.txt ", false),
        ("g*/x", "guardrails/x", true), ("a*b*c", "abxbyc", true), ("a*b*c", "abxbyd", false),
    ])
    func ignorePatterns(pattern: String, path: String, matches: Bool) throws {
        let dir = try makeFolder(["a.cedar": permitAll, ".custosignore": pattern + "\n", path: "x"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect((loadError(dir) == nil) == matches, "\(pattern) vs \(path): \(loadError(dir) ?? "loaded")")
    }

    @Test func anIgnorePatternCannotHideAPolicyFile() throws {
        let dir = try makeFolder(["a.cedar": permitAll, "b.cedar": Self.forbid, ".custosignore": "*.cedar\n*\n"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try PolicyStore.load(directory: dir).policyCount == 2)
    }

    // MARK: symbolic links

    /// A folder with a secret outside the policies folder, like the audit signing key or
    /// /etc/shadow would be.
    static let secret = "root:$6$S3CR3TSALT$ZmFrZWhhc2hmb3J0ZXN0:19000:0:99999:7:::"

    func withOutsideSecret(_ body: (_ dir: String, _ secretFile: String) throws -> Void) throws {
        let outside = try makeFolder(["shadow": Self.secret + "\n", "keys/key.pem": Self.secret])
        defer { try? FileManager.default.removeItem(atPath: outside) }
        let dir = try makeFolder(["a.cedar": permitAll])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try body(dir, outside + "/shadow")
    }

    @Test("a link leading outside the folder is refused, naming the link, without its target's bytes", arguments: [
        "entities.json", "custos.json", "z.cedar", "guardrails/regions.json", ".custosignore",
    ])
    func linksOutsideAreRefused(name: String) throws {
        try withOutsideSecret { dir, secretFile in
            try FileManager.default.createDirectory(atPath: dir + "/guardrails", withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: dir + "/" + name, withDestinationPath: secretFile)
            let message = try #require(loadError(dir))
            #expect(message.hasPrefix(dir + "/" + name + ": is a symbolic link that leads outside the policies folder"), "\(message)")
            #expect(!message.contains("S3CR3T") && !message.contains("root"))
        }
    }

    @Test func aFolderLinkLeadingOutsideIsRefused() throws {
        try withOutsideSecret { dir, secretFile in
            let keys = (secretFile as NSString).deletingLastPathComponent + "/keys"
            try FileManager.default.createSymbolicLink(atPath: dir + "/guardrails", withDestinationPath: keys)
            #expect(loadError(dir)?.hasPrefix(dir + "/guardrails: is a symbolic link that leads outside") == true)
        }
    }

    @Test func linksInsideTheFolderAreFollowed() throws {
        let dir = try makeFolder(["a.cedar": permitAll, "data/entities-v3.json": oneUser, ".custosignore": "data\n"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createSymbolicLink(atPath: dir + "/entities.json", withDestinationPath: "data/entities-v3.json")
        #expect(try PolicyStore.load(directory: dir).entityCount == 1)
    }

    @Test func aDanglingLinkIsRefused() throws {
        let dir = try makeFolder(["a.cedar": permitAll])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createSymbolicLink(atPath: dir + "/guardrails", withDestinationPath: dir + "/gone")
        #expect(loadError(dir)?.hasPrefix(dir + "/guardrails: is a symbolic link that leads nowhere") == true)
    }

    @Test func aFIFOIsRefusedWithoutBlocking() throws {
        let dir = try makeFolder(["a.cedar": permitAll])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(mkfifo(dir + "/entities.json", 0o600) == 0)
        #expect(loadError(dir)?.hasPrefix(dir + "/entities.json: is not a regular file") == true)
    }

    // MARK: no content in errors

    @Test("a file that fails to parse is reported by line:col and token class (or JSON path), never by its content", arguments: [
        ("entities.json", PolicyFolderTests.secret),
        ("entities.json", "[{\"uid\": S3CR3TWORD}]"),
        ("entities.json", "[\"S3CR3T\u{1}\"]"),
        ("custos.json", "{\"forbid_errors\": S3CR3TWORD}"),
        ("custos.json", "{\"forbid_errors\": \"S3CR3T\"}"),
        ("guardrails/regions.json", PolicyFolderTests.secret),
        ("z.cedar", PolicyFolderTests.secret),
        ("z.cedar", "permit(principal, action, resource) when { S3CR3T };"),
        ("z.cedar", "permit(principal, action, resource) when { principal.S3CR3T(1) };"),
        ("z.cedar", "permit(principal, action, resource) when { \"S3CR3T\\q\" };"),
        ("z.cedar", "permit(principal, action, resource) when { S3CR3T(1) };"),
        ("z.cedar", "permit(principal, action, resource) when { 99999999999999999999 };"),
        ("z.cedar", "@S3CR3T(\"a\") @S3CR3T(\"b\") permit(principal, action, resource);"),
        ("z.cedar", "permit(principal, action == S3CR3T::\"x\", resource);"),
        ("z.cedar", "permit(principal, action, resource) when { \"S3CR3T\" S3CR3T };"),
        ("z.cedar", "€S3CR3T"),
        ("z.cedar", "permit(principal, action, resource) when { { S3CR3T: 1, S3CR3T: 2 } };"),
    ])
    func parseErrorsNeverQuoteTheFile(name: String, text: String) throws {
        var files = [name: text, "a.cedar": permitAll]
        files["guardrails/purposes.json"] = try examplePurposes(for: name)
        let dir = try makeFolder(files)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let message = try #require(loadError(dir))
        #expect(message.hasPrefix(dir + "/" + name), "\(message)")
        #expect(message.contains("1:") || message.contains(": $."), "no line:col or JSON path in \(message)")
        #expect(!message.contains("S3CR3T") && !message.contains("root") && !message.contains("9999999"), "\(message)")
    }

    // MARK: byte-order mark

    @Test("a file starting with a UTF-8 byte-order mark is refused, naming it", arguments: [
        "z.cedar", "entities.json", "custos.json", "guardrails/regions.json", ".custosignore", "guardrails/DISABLED",
    ])
    func aByteOrderMarkIsRefused(name: String) throws {
        var files = ["a.cedar": permitAll]
        files["guardrails/purposes.json"] = try examplePurposes(for: name)
        let dir = try makeFolder(files)
        try FileManager.default.createDirectory(atPath: dir + "/guardrails", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let body = name.hasSuffix(".cedar") ? permitAll : name.hasSuffix(".json") ? "[]" : "x"
        try Data([0xEF, 0xBB, 0xBF] + Array(body.utf8)).write(to: URL(fileURLWithPath: dir + "/" + name))
        let message = try #require(loadError(dir))
        #expect(message.hasPrefix(dir + "/" + name + ":"), "\(message)")
        #expect(message.contains("1:1:"), "\(message)")
        #expect(message.contains("byte-order mark"), "\(message)")
    }
}
